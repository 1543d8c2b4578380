// One worker thread of `tcbox bench --workers N` (lb4-workers.ts): lb4 built for this worker's lane (its CPU) on
// the kernel's shared memory, the same packet path as the main thread's Gen 4 measurement (src/perf/lb4.ts) on
// connections no other worker uses. It warms up, says "ready", then runs the rounds the parent asks for: all
// workers of a round start together (a barrier in shared memory) and each times its runBatch calls (wall clock;
// packet bytes written and a new-connection batch's CT entries removed off the clock, as on the main thread).
import { parentPort, workerData } from "node:worker_threads";
import { awaitBarrier, openLane } from "../ebpf/lanes.js";
import { BpfMap } from "../ebpf/maps/map.js";
import { connBatch, Lb4Path } from "./lb4.js";
import { BACKGROUND, BATCH } from "./workload.js";
import type { Lb4WorkerInit, Lb4Round, Lb4RoundResult } from "./lb4-workers.js";

const init = workerData as Lb4WorkerInit;
const lane = openLane(init.program);
const ct = new BpfMap(lane.mem, init.ct.base, init.ct.spec, init.ct.ncpus, init.ct.id);
const path = new Lb4Path(lane.program("cls_main"), connBatch(lane.mem, init.program.lane), ct, init.services);
// Worker w of N: new-connection batches g = w, w + N, w + 2N, ... (disjoint connection numbers); established:
// the ACKs of background connections [w * BATCH, (w + 1) * BATCH).
const estBase = (init.index * BATCH) % BACKGROUND;
let g = init.index;
path.warm(g, init.stride, estBase);
g += 20 * init.stride;
parentPort!.postMessage("ready");

parentPort!.on("message", (r: Lb4Round) => {
  awaitBarrier(r.barrier, r.parties); // the round starts when every worker taking part has arrived
  let busy = 0;
  for (let k = 0; k < r.batches; k++) {
    if (r.phase === "new") path.prepareNew(g);
    else path.prepareEst(estBase);
    const t0 = performance.now();
    path.prog.runBatch(path.batch);
    busy += performance.now() - t0;
    if (r.phase === "new") {
      path.cleanupNew();
      g += init.stride;
    } else path.check("established");
  }
  const out: Lb4RoundResult = { packets: r.batches * BATCH, busyMs: busy, traps: Object.values(path.prog.stats.traps).reduce((a, b) => a + b, 0) };
  parentPort!.postMessage(out);
});
