// lb4 on several worker threads against shared maps (src/ebpf/lanes.ts, as `tcbox bench --workers` runs it):
// the same connections split over two workers leave the same conntrack entries, counters and map lookup counts
// as one worker running them all.
import { expect, it } from "vitest";
import { runOnWorker } from "../../src/ebpf/lanes.js";
import { CT_MAP, ctMap, growTo, loadLb4 } from "../../src/perf/lb4.js";
import { ACK, CONN_FRAME, SYN, writeConn } from "../../src/perf/workload.js";

const CONNS = 8192;
const SERVICES = 10;
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

function packets(from: number, to: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const flags of [SYN, ACK]) {
    for (let c = from; c < to; c++) {
      const p = new Uint8Array(CONN_FRAME);
      writeConn(p, 0, c, SERVICES, flags);
      out.push(p);
    }
  }
  return out;
}

async function run(workers: number) {
  // One endpoint per Service: lb4 picks backends at random (Cilium's LB_SELECTION_RANDOM, per-CPU prandom state),
  // so with one backend the choice, and every CT entry, does not depend on the CPU.
  const b = await loadLb4(1, SERVICES, { shared: true, nrCpus: 3 });
  growTo(b, SERVICES);
  const obj = [...b.kernel.objects][0]!;
  const per = CONNS / workers;
  const lanes = await Promise.all(Array.from({ length: workers }, (_, w) => b.kernel.laneProgram(obj, w + 1)));
  const barrier = { cell: new Int32Array(new SharedArrayBuffer(4)), parties: workers }; // start together
  const results = await Promise.all(lanes.map((program, w) => runOnWorker({ program, packets: packets(w * per, (w + 1) * per), rounds: 1, barrier })));
  for (const r of results) {
    expect(r.retvals).toEqual([[0, 2 * per]]);
    expect(Object.values(r.traps).reduce((a, x) => a + x, 0)).toBe(0);
  }
  const ct = ctMap(b);
  return {
    count: ct.count,
    entries: [...ct.entries()].map(([k, v]) => `${hex(k)} ${hex(v)}`).sort(),
    lookups: Object.fromEntries(b.kernel.maps().map((m) => [m.name, m.lookups])),
  };
}

it("two workers running lb4 on halves of the connections leave what one worker leaves: CT entries, counters, lookups", async () => {
  const one = await run(1);
  const two = await run(2);
  expect(one.count).toBe(2 * CONNS);
  expect(two.count).toBe(one.count);
  expect(two.entries).toEqual(one.entries);
  expect(one.lookups[CT_MAP]).toBeGreaterThan(0);
  expect(two.lookups).toEqual(one.lookups);
}, 120_000);

it("two workers accounting packets of the same connections at once lose no count (ct_update's __sync_fetch_and_add)", async () => {
  const conns = 1024;
  const rounds = 40;
  const b = await loadLb4(1, SERVICES, { shared: true, nrCpus: 3 });
  growTo(b, SERVICES);
  const obj = [...b.kernel.objects][0]!;
  const lanes = await Promise.all([1, 2].map((cpu) => b.kernel.laneProgram(obj, cpu)));
  const packetsCounted = (): bigint => {
    let n = 0n;
    for (const [, v] of ctMap(b).entries()) n += new DataView(v.buffer, v.byteOffset).getBigUint64(0, true);
    return n;
  };
  const syns = packets(0, conns).slice(0, conns);
  const acks = packets(0, conns).slice(conns);
  await runOnWorker({ program: lanes[0]!, packets: syns, rounds: 1 });
  const afterSyn = packetsCounted();
  await runOnWorker({ program: lanes[0]!, packets: acks, rounds: 1 });
  const perRound = packetsCounted() - afterSyn; // what one round of the ACKs adds
  expect(perRound).toBeGreaterThanOrEqual(BigInt(conns));
  const before = packetsCounted();
  const barrier = { cell: new Int32Array(new SharedArrayBuffer(4)), parties: 2 };
  const results = await Promise.all(lanes.map((program) => runOnWorker({ program, packets: acks, rounds, barrier })));
  for (const r of results) expect(r.retvals).toEqual([[0, rounds * conns]]);
  expect(packetsCounted() - before).toBe(2n * BigInt(rounds) * perRound);
}, 120_000);
