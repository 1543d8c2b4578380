// Gen 4's Service hop: programs/lb4.ts on the client node's tc hook, run in 1024-packet batches through the
// batch runner (as bench/lb4.bench.ts measures it). New connection: service lookup, CT miss, random slot lookup,
// backend lookup, two CT creates, DNAT with both checksums. Established: service lookup, CT hit, backend lookup,
// CT counters, DNAT. The workload is src/perf/workload.ts's, the same as the kube-proxy modes': the CT map holds
// BACKGROUND live connections (two entries each) when measuring, and the two entries each new connection made
// are deleted after its batch, off the clock (Cilium's CT GC runs in the agent, not on the packet path). The CT
// map is never full: an LRU map at capacity evicts on every create, which is what an undersized map does, not
// the state Cilium sizes it for.
import { PacketBatch } from "../ebpf/batch.js";
import { BpfKernel, type KernelOptions } from "../ebpf/kernel.js";
import type { SharedMemory } from "../ebpf/memory.js";
import type { BpfMap } from "../ebpf/maps/map.js";
import type { BpfProgram } from "../ebpf/program.js";
import { LB4_MAPS, Lb4Maps } from "../k8s/agent/lb-maps.js";
import { endpointIp, serviceIp } from "./cluster.js";
import { ACK, BACKGROUND, BATCH, CONN_FRAME, L3, newBase, SYN, timedTask, writeConn, type PathTask } from "./workload.js";

/** Map lookups per packet on lb4's path (counted from programs/lb4.ts, not at run time). */
export const LB4_LOOKUPS_ESTABLISHED = 3; // service (slot 0), CT (TUPLE_F_SERVICE), backend
export const LB4_LOOKUPS_NEW = 4; // service, CT miss, backend slot, backend
export const LB4_CT_CREATES_NEW = 2; // TUPLE_F_SERVICE entry + translated connection's entry
/** lb4's backend map holds 262144 entries: Services take their endpoints from a pool this large. */
const BACKEND_POOL = 200_000;
const TC_ACT_OK = 0;
const TUPLE_F_OUT = 0;
const TUPLE_F_SERVICE = 4;
export const CT_MAP = "cilium_ct4_global";

export interface Lb4Bench {
  kernel: BpfKernel;
  lb: Lb4Maps;
  prog: BpfProgram;
  batch: PacketBatch;
  services: number;
  endpoints: number;
  pool: number;
  /** Services count the CT map's background connections were made for (0: none yet). */
  primed: number;
}

/** `kernel`: options for the kernel (a shared one for worker threads: lb4-workers.ts). */
export async function loadLb4(endpoints: number, maxServices: number, kernel: KernelOptions = {}): Promise<Lb4Bench> {
  return setupLb4(new BpfKernel({ seed: 1, ...kernel }), endpoints, maxServices);
}

async function setupLb4(kernel: BpfKernel, endpoints: number, maxServices: number): Promise<Lb4Bench> {
  const prog = (await kernel.load("programs/lb4.ts")).program("cls_main");
  const lb = new Lb4Maps(kernel);
  const pool = Math.min(BACKEND_POOL, maxServices * endpoints);
  for (let b = 1; b <= pool; b++) lb.upsertBackend({ id: b, address: endpointIp(b), port: 8080, proto: "TCP" });
  return { kernel, lb, prog, batch: connBatch(kernel.mem), services: 0, endpoints, pool, primed: 0 };
}

/** BATCH same-size frames at fixed places in the arena (of `lane`); the tasks rewrite their bytes before each run. */
export function connBatch(mem: SharedMemory, lane = 0): PacketBatch {
  const batch = new PacketBatch(mem, lane);
  const blank = new Uint8Array(CONN_FRAME);
  for (let i = 0; i < BATCH; i++) batch.add(blank);
  return batch;
}

function backendIds(s: number, n: number, pool: number): number[] {
  return Array.from({ length: n }, (_, e) => 1 + ((s * n + e) % pool));
}

/** The agent's write for one Service: reverse NAT, backend slots, slot 0 (Lb4Maps.upsertFrontend). */
export function upsertService(b: Lb4Bench, s: number): void {
  b.lb.upsertFrontend({ address: serviceIp(s), port: 80, proto: "TCP", revNatIndex: s + 1, backendIds: backendIds(s, b.endpoints, b.pool) });
}

/** Grow the Service set to n (incremental writes, as the agent does). */
export function growTo(b: Lb4Bench, n: number): void {
  for (; b.services < n; b.services++) upsertService(b, b.services);
}

/** Bytes of map entries per Service: services map (slot 0 + one per backend), reverse NAT, backends. */
export function lb4BytesPerService(b: Lb4Bench): number {
  const sz = (m: { spec: { keySize: number; valueSize: number } }) => m.spec.keySize + m.spec.valueSize;
  return (1 + b.endpoints) * sz(b.lb.services) + sz(b.lb.revNat) + b.endpoints * sz(b.lb.backends);
}

export function ctMap(b: Lb4Bench): BpfMap {
  const ct = b.kernel.pinned.get(CT_MAP);
  if (!ct) throw new Error(`bench: map ${CT_MAP} not pinned (${LB4_MAPS.services} is)`);
  return ct;
}

export function lb4BytesPerCtEntry(b: Lb4Bench): number {
  const ct = ctMap(b);
  return ct.spec.keySize + ct.spec.valueSize;
}

/**
 * lb4's packet path on one batch of connection packets, with traffic spread over `n` Services: writing the
 * packets, running them, and removing the CT entries a batch of new connections made (as CT GC would). Used on
 * the main thread (lb4Tasks) and on worker threads (lb4-worker.ts), each on its own batch and lane.
 */
export class Lb4Path {
  private readonly key = new Uint8Array(16);
  private readonly svcKey = new Uint8Array(16);
  /** Per packet: frontend address, client address, ports, before DNAT. */
  private readonly frontends = new Uint8Array(BATCH * 12);
  private pristine: Uint8Array | undefined;
  private pristineBase = -1;

  constructor(
    readonly prog: BpfProgram,
    readonly batch: PacketBatch,
    readonly ct: BpfMap,
    readonly n: number,
  ) {}

  /** Write connections base..base+BATCH-1 into the batch (same offsets, same lengths). */
  write(base: number, flags: number): void {
    const u8 = this.batch.mem.u8;
    for (let i = 0; i < BATCH; i++) writeConn(u8, this.batch.packet(i).byteOffset, base + i, this.n, flags);
  }

  /** Run the batch; every verdict must be TC_ACT_OK. */
  run(what: string): void {
    this.prog.runBatch(this.batch);
    this.check(what);
  }

  check(what: string): void {
    for (let i = 0; i < BATCH; i++) if (this.batch.retval(i) !== TC_ACT_OK) throw new Error(`bench: lb4 ${what}: packet ${i} verdict ${this.batch.retval(i)}`);
  }

  /** SYNs of new-connection batch g (off the clock: the bytes, and each packet's frontend for the cleanup). */
  prepareNew(g: number): void {
    this.write(newBase(g), SYN);
    const u8 = this.batch.mem.u8;
    for (let i = 0; i < BATCH; i++) {
      const o = this.batch.packet(i).byteOffset;
      this.frontends.set(u8.subarray(o + L3 + 12, o + L3 + 24), i * 12); // saddr, daddr, sport, dport
    }
  }

  /**
   * After a new-connection batch: check the verdicts, then delete the CT entries each connection made, as CT GC
   * would: TUPLE_F_OUT (client -> backend, read back from the DNATed bytes) and TUPLE_F_SERVICE (client ->
   * frontend, from the bytes before DNAT). ipv4_ct_tuple: daddr, saddr, dport, sport (network order, as the
   * packet carries them), nexthdr, flags, pad.
   */
  cleanupNew(): void {
    this.check("new connection");
    const u8 = this.batch.mem.u8;
    const { key, svcKey, frontends, ct } = this;
    for (let i = 0; i < BATCH; i++) {
      const o = this.batch.packet(i).byteOffset;
      const l4 = o + L3 + 20;
      key.set(u8.subarray(o + L3 + 16, o + L3 + 20), 0); // backend address (after DNAT)
      key.set(u8.subarray(o + L3 + 12, o + L3 + 16), 4);
      key.set(u8.subarray(l4 + 2, l4 + 4), 8); // backend port
      key.set(u8.subarray(l4, l4 + 2), 10);
      key[12] = 6;
      key[13] = TUPLE_F_OUT;
      ct.delete(key);
      const f = i * 12;
      svcKey.set(frontends.subarray(f + 4, f + 8), 0);
      svcKey.set(frontends.subarray(f, f + 4), 4);
      svcKey.set(frontends.subarray(f + 10, f + 12), 8);
      svcKey.set(frontends.subarray(f + 8, f + 10), 10);
      svcKey[12] = 6;
      svcKey[13] = TUPLE_F_SERVICE;
      ct.delete(svcKey);
    }
  }

  /**
   * The handshake's ACKs of background connections base..base+BATCH-1 (the DNAT rewrites the bytes, so the
   * pristine bytes are copied back before each run).
   */
  prepareEst(base: number): void {
    const first = this.batch.packet(0).byteOffset;
    if (this.pristineBase !== base) {
      this.write(base, ACK);
      const last = this.batch.packet(BATCH - 1);
      this.pristine = this.batch.mem.u8.slice(first, last.byteOffset + last.length);
      this.pristineBase = base;
    }
    this.batch.mem.u8.set(this.pristine!, first);
  }

  /** Warm: let the engine tier the WebAssembly up on both paths (new connections g0.., established at estBase). */
  warm(g0: number, gStep: number, estBase: number): void {
    for (let w = 0; w < 20; w++) {
      this.prepareNew(g0 + w * gStep);
      this.prog.runBatch(this.batch);
      this.cleanupNew();
    }
    for (let w = 0; w < 20; w++) {
      this.prepareEst(estBase);
      this.run("established");
    }
  }
}

/** Fill the CT map with BACKGROUND live connections to the first n Services (first packets through lb4). */
export function primeCt(b: Lb4Bench, n: number): void {
  if (b.primed === n) return;
  const ct = ctMap(b);
  const path = new Lb4Path(b.prog, b.batch, ct, n);
  ct.clear();
  for (let base = 0; base < BACKGROUND; base += BATCH) {
    path.write(base, SYN);
    path.run("background");
  }
  b.primed = n;
}

/**
 * The tasks, with traffic spread uniformly over the first `spread` Services (default: all of them). A spread
 * smaller than the Services installed keeps the maps' size but not their working set: the same packets' cost at
 * 10 and at 100k Services installed shows the lookups are O(1); uniform spread shows what the cache sees.
 */
export function lb4Tasks(b: Lb4Bench, spread = b.services): { newConn: PathTask; established: PathTask } {
  const n = Math.min(spread, b.services);
  const ct = ctMap(b);
  primeCt(b, n);
  const expected = 2 * BACKGROUND;
  if (ct.count !== expected) throw new Error(`bench: lb4: ${CT_MAP} holds ${ct.count} entries, expected ${expected}`);
  const path = new Lb4Path(b.prog, b.batch, ct, n);
  path.warm(0, 1, 0);
  if (ct.count !== expected) throw new Error(`bench: lb4: ${CT_MAP} holds ${ct.count} entries after new connections and established packets, expected ${expected}`);
  let g = 20;
  const run = (): void => {
    b.prog.runBatch(b.batch);
  };
  return {
    established: timedTask(run, () => path.prepareEst(0)),
    newConn: timedTask(run, () => path.prepareNew(g), () => {
      path.cleanupNew();
      g++;
    }),
  };
}
