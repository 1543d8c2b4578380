// Several CPUs on one shared memory (src/ebpf/lanes.ts): programs built per lane run on worker threads against
// the same maps; per-CPU maps have a slot per lane; map updates from programs and from the host take the map's
// lock; a program stopped while holding it releases it; a trap in a worker is counted there.
import { describe, expect, it } from "vitest";
import { BpfKernel } from "../../src/ebpf/kernel.js";
import { openLane, runOnWorker } from "../../src/ebpf/lanes.js";
import { E_NEXT, M_LOCK } from "../../src/ebpf/maps/layout.js";
import { elemAddr, htabHash, lruOrder } from "../../src/ebpf/maps/htab.js";
import { compileProgram } from "../../src/ebpf/compile.js";
import { PREBUILT_BASE } from "../../src/ebpf/abi.js";

// Packet: u32 key (little-endian), u8 op (1 update, 2 delete, 3 abort, 4 count on this CPU, 5 LRU lookup, else
// update), padded.
const OPS = `
import { __sk_buff, map_def, map_lookup_elem, map_update_elem, map_delete_elem, BPF_ANY, BPF_MAP_TYPE_HASH,
  BPF_MAP_TYPE_PERCPU_ARRAY, BPF_MAP_TYPE_LRU_HASH, TC_ACT_OK, TC_ACT_SHOT } from "tcbox";
const TABLE = map_def<u32, u64>(BPF_MAP_TYPE_HASH, 16384, "table");
const PERCPU = map_def<u32, u64>(BPF_MAP_TYPE_PERCPU_ARRAY, 1, "percpu");
const LRU = map_def<u32, u64>(BPF_MAP_TYPE_LRU_HASH, 1024, "lru");
const key = memory.data(8);
const val = memory.data(8);
export function cls_main(skb: __sk_buff): i32 {
  const d = <usize>skb.data;
  if (d + 8 > <usize>skb.data_end) return TC_ACT_SHOT;
  const k = load<u32>(d);
  const op = load<u8>(d, 4);
  store<u32>(key, k);
  if (op == 1) {
    store<u64>(val, <u64>k * 3);
    return map_update_elem(TABLE, key, val, BPF_ANY) == 0 ? TC_ACT_OK : TC_ACT_SHOT;
  }
  if (op == 2) return map_delete_elem(TABLE, key) == 0 ? TC_ACT_OK : TC_ACT_SHOT;
  if (op == 3) abort("op 3");
  if (op == 5) {
    store<u64>(val, <u64>k * 3);
    if (map_lookup_elem(LRU, key) != 0) return TC_ACT_OK; // sets the reference bit
    return map_update_elem(LRU, key, val, BPF_ANY) == 0 ? TC_ACT_OK : TC_ACT_SHOT;
  }
  if (op == 4) {
    store<u32>(key, 0);
    const v = map_lookup_elem(PERCPU, key);
    if (v != 0) store<u64>(v, load<u64>(v) + 1);
  }
  return TC_ACT_OK;
}`;

function pkt(key: number, op: number): Uint8Array {
  const p = new Uint8Array(60);
  new DataView(p.buffer).setUint32(0, key, true);
  p[4] = op;
  return p;
}
const u32key = (k: number) => new Uint8Array(new Uint32Array([k]).buffer);
const u64val = (v: number) => new Uint8Array(new BigUint64Array([BigInt(v)]).buffer);

async function setup(cpus: number) {
  const kernel = new BpfKernel({ shared: true, nrCpus: cpus, seed: 7 });
  const obj = await kernel.load("ops.ts", { source: OPS });
  return { kernel, obj, table: obj.map("table"), percpu: obj.map("percpu") };
}

/** Elements reachable from the buckets, and the free list's length: together they must be max_entries. */
function audit(kernel: BpfKernel, table: ReturnType<BpfKernel["maps"]>[number]) {
  const keys = [...table.entries()].map(([k]) => new DataView(k.buffer).getUint32(0, true));
  let free = 0;
  for (let idx = table.freeHead; idx !== 0; idx = kernel.mem.u32[(elemAddr(kernel.mem, table.base, idx) + E_NEXT) >>> 2]!) free++;
  return { keys: keys.sort((a, b) => a - b), free };
}

describe("lanes: worker threads on one shared memory", () => {
  it("per-CPU maps: each worker counts in its own slot; bpf_get_smp_processor_id() is the worker's CPU", async () => {
    const { kernel, obj, percpu } = await setup(3);
    const [l1, l2] = await Promise.all([kernel.laneProgram(obj, 1), kernel.laneProgram(obj, 2)]);
    const packets = Array.from({ length: 100 }, () => pkt(0, 4));
    const [r1, r2] = await Promise.all([runOnWorker({ program: l1, packets, rounds: 3 }), runOnWorker({ program: l2, packets, rounds: 5 })]);
    expect([r1.runs, r2.runs]).toEqual([300, 500]);
    obj.program().run(pkt(0, 4));
    const v = new BigUint64Array(percpu.lookup(u32key(0))!.slice().buffer);
    expect([...v]).toEqual([1n, 300n, 500n]);
    // The lane builds' static data goes with the object.
    expect(kernel.mem.list().filter((r) => r.owner.includes("(CPU")).length).toBe(2);
    obj.close();
    expect(kernel.mem.list().filter((r) => r.owner.includes("(CPU")).length).toBe(0);
  });

  it("program updates on two workers and host updates at the same time keep a hash map whole", async () => {
    const { kernel, obj, table } = await setup(3);
    const [l1, l2] = await Promise.all([kernel.laneProgram(obj, 1), kernel.laneProgram(obj, 2)]);
    // Worker w inserts its 3000 keys and deletes the even ones, 40 times; the host does the same with its own
    // keys while the workers run. Bucket chains are shared (16384 buckets, 9000 keys in flight).
    const program = (w: number) => [...Array.from({ length: 3000 }, (_, i) => pkt(w * 100_000 + i, 1)), ...Array.from({ length: 1500 }, (_, i) => pkt(w * 100_000 + 2 * i, 2))];
    const status = new Int32Array(new SharedArrayBuffer(8));
    const runs = [runOnWorker({ program: l1, packets: program(1), rounds: 40, status: status.subarray(0, 1) }), runOnWorker({ program: l2, packets: program(2), rounds: 40, status: status.subarray(1, 2) })];
    const t0 = Date.now();
    while (Atomics.load(status, 0) === 0 && Atomics.load(status, 1) === 0) {
      if (Date.now() - t0 > 60_000) throw new Error("workers did not start"); // (their error is in `runs`)
      Atomics.wait(status, 0, 0, 5);
    }
    let hostRounds = 0;
    do {
      for (let i = 0; i < 3000; i++) table.update(u32key(i), u64val(i * 3));
      for (let i = 0; i < 3000; i += 2) table.delete(u32key(i));
      hostRounds++;
    } while ((Atomics.load(status, 0) !== 2 || Atomics.load(status, 1) !== 2) && Date.now() - t0 < 120_000);
    const [r1, r2] = await Promise.all(runs);
    expect(hostRounds).toBeGreaterThan(0);
    // Every update succeeded (no -E2BIG from a corrupted free list), every delete found its key.
    expect([r1.retvals, r2.retvals]).toEqual([[[0, 4500 * 40]], [[0, 4500 * 40]]]);
    const odd = (w: number) => Array.from({ length: 1500 }, (_, i) => w * 100_000 + 2 * i + 1);
    const want = [...odd(0), ...odd(1), ...odd(2)];
    const { keys, free } = audit(kernel, table);
    expect(keys).toEqual(want);
    expect(table.count).toBe(want.length);
    expect(free + table.count).toBe(16384);
    for (const k of want) expect(new BigUint64Array(table.lookup(u32key(k))!.slice().buffer)[0]).toBe(BigInt(k * 3));
    expect(kernel.mem.u32[(table.base + M_LOCK) >>> 2]).toBe(0);
  });

  it("LRU updates and lookups on two workers and from the host, evicting all along, keep the list and chains whole", async () => {
    const { kernel, obj } = await setup(3);
    const lru = obj.map("lru");
    const [l1, l2] = await Promise.all([kernel.laneProgram(obj, 1), kernel.laneProgram(obj, 2)]);
    // 3000 keys per worker through a 1024-entry LRU map: nearly every update evicts; repeats set reference bits.
    const program = (w: number) => Array.from({ length: 6000 }, (_, i) => pkt(w * 100_000 + ((i * 7919) % 3000), 5));
    const status = new Int32Array(new SharedArrayBuffer(8));
    const runs = [runOnWorker({ program: l1, packets: program(1), rounds: 10, status: status.subarray(0, 1) }), runOnWorker({ program: l2, packets: program(2), rounds: 10, status: status.subarray(1, 2) })];
    const t0 = Date.now();
    while (Atomics.load(status, 0) === 0 && Atomics.load(status, 1) === 0 && Date.now() - t0 < 60_000) Atomics.wait(status, 0, 0, 5);
    let k = 0;
    do {
      for (let i = 0; i < 500; i++, k++) {
        lru.update(u32key(k % 3000), u64val(1));
        lru.touch(u32key((k * 13) % 3000));
      }
    } while ((Atomics.load(status, 0) !== 2 || Atomics.load(status, 1) !== 2) && Date.now() - t0 < 120_000);
    const [r1, r2] = await Promise.all(runs);
    expect([r1.retvals, r2.retvals]).toEqual([[[0, 60_000]], [[0, 60_000]]]);
    const order = lruOrder(kernel.mem, lru.base);
    const { keys, free } = audit(kernel, lru);
    expect(lru.count).toBe(1024);
    expect(free).toBe(0);
    expect(keys.length).toBe(1024);
    expect(new Set(keys).size).toBe(1024);
    expect(order.length).toBe(1024);
    expect(new Set(order).size).toBe(1024);
    expect(kernel.mem.u32[(lru.base + M_LOCK) >>> 2]).toBe(0);
  });

  it("a trap in a worker's program is counted there; the other packets run and the host goes on", async () => {
    const { kernel, obj, table } = await setup(2);
    const l1 = await kernel.laneProgram(obj, 1);
    const packets = [pkt(5, 1), pkt(6, 3), pkt(7, 1), pkt(8, 3), pkt(9, 1)];
    const r = await runOnWorker({ program: l1, packets, rounds: 2 });
    expect(r.runs).toBe(10);
    expect(r.traps.abort).toBe(4);
    expect(r.lastTrap).toMatch(/abort: op 3/);
    expect(r.retvals).toEqual([[0, 6]]);
    expect(audit(kernel, table).keys).toEqual([5, 7, 9]);
    expect(obj.program().run(pkt(10, 1)).retval).toBe(0);
  });

  it("a module built for an unshared memory is refused by a shared kernel with the reason; CPUs are bounded by nrCpus", async () => {
    const { kernel } = await setup(2);
    const built = await compileProgram("ops.ts", { memoryBase: PREBUILT_BASE, source: OPS });
    expect(() => kernel.loadWasm(built.wasm, "ops.wasm")).toThrow(/memory is shared .*built for an unshared one/);
    expect(() => kernel.lane(2)).toThrow(/no CPU 2 \(nrCpus 2\)/);
    expect(kernel.lane(0)).toBe(0);
  });

  it("a program stopped by the budget inside a map update releases the map's lock", async () => {
    const { kernel, obj, table } = await setup(2);
    const lane = openLane(await kernel.laneProgram(obj, 1), kernel.mem);
    // 200 keys in one bucket: an update of another key of that bucket walks the whole chain under the lock.
    const nb = table.nBuckets;
    const same: number[] = [];
    const b0 = htabHash(kernel.mem, table.base, u32key(0)) & (nb - 1);
    for (let k = 1; same.length < 201; k++) if ((htabHash(kernel.mem, table.base, u32key(k)) & (nb - 1)) === b0) same.push(k);
    for (const k of same.slice(0, 200)) table.update(u32key(k), u64val(1));
    kernel.budget = 50;
    const batch = lane.batch();
    batch.add(pkt(same[200]!, 1));
    expect(lane.program().runBatch(batch)).toBe(1);
    expect(lane.program().stats.traps.budget).toBe(1);
    expect(kernel.mem.u32[(table.base + M_LOCK) >>> 2]).toBe(0);
    kernel.budget = 1_000_000;
    batch.reset();
    batch.add(pkt(same[200]!, 1));
    expect(lane.program().runBatch(batch)).toBe(0);
    expect(table.count).toBe(201);
  });
});
