// A worker thread running one lane's build of a program on packets (lanes.ts runOnWorker): the packets in
// batches, `rounds` times, then its statistics back to the parent. With a `status` word it says when it starts
// (1) and ends (2), so the parent can overlap work of its own with the run (tests do host map updates).
import { parentPort, workerData } from "node:worker_threads";
import { awaitBarrier, openLane, type LaneRunRequest, type LaneRunResult } from "./lanes.js";

const req = workerData as LaneRunRequest;
const lane = openLane(req.program);
const prog = lane.program(req.entry);
const batch = lane.batch();
if (req.barrier) awaitBarrier(req.barrier.cell, req.barrier.parties);
if (req.status) Atomics.store(req.status, 0, 1);
for (let r = 0; r < req.rounds; r++) {
  for (const p of req.packets) {
    if (batch.full || batch.room < p.length) {
      prog.runBatch(batch);
      batch.reset();
    }
    batch.add(p);
  }
  if (batch.length > 0) prog.runBatch(batch);
  batch.reset();
}
if (req.status) Atomics.store(req.status, 0, 2);
const s = prog.stats;
const result: LaneRunResult = { runs: s.runs, retvals: [...s.retvals], traps: { ...s.traps }, lastTrap: s.lastTrap, trace: lane.trace };
parentPort!.postMessage(result);
