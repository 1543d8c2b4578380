// Gen 4's Service hop: programs/lb4.ts on the client node's tc hook, run in 1024-packet batches through the
// batch runner (as bench/lb4.bench.ts measures it). New connection: service lookup, CT miss, random slot lookup,
// backend lookup, two CT creates (LRU map: once full each create evicts), DNAT with both checksums. Established:
// service lookup, CT hit, backend lookup, CT counters, DNAT.
import { PKT_BASE } from "../ebpf/abi.js";
import { PacketBatch } from "../ebpf/batch.js";
import { BpfKernel } from "../ebpf/kernel.js";
import type { BpfProgram } from "../ebpf/program.js";
import { LB4_MAPS, Lb4Maps } from "../k8s/agent/lb-maps.js";
import { buildTcp } from "../packet/build.js";
import { endpointIp, serviceIp } from "./cluster.js";
import { BATCH, type PathTask } from "./iptables.js";

/** Map lookups per packet on lb4's path (counted from programs/lb4.ts, not at run time). */
export const LB4_LOOKUPS_ESTABLISHED = 3; // service (slot 0), CT (TUPLE_F_SERVICE), backend
export const LB4_LOOKUPS_NEW = 4; // service, CT miss, backend slot, backend
export const LB4_CT_CREATES_NEW = 2; // TUPLE_F_SERVICE entry + translated connection's entry
/** lb4's backend map holds 262144 entries: Services take their endpoints from a pool this large. */
const BACKEND_POOL = 200_000;

export interface Lb4Bench {
  kernel: BpfKernel;
  lb: Lb4Maps;
  prog: BpfProgram;
  batch: PacketBatch;
  services: number;
  endpoints: number;
  pool: number;
  primed: boolean;
}

export async function loadLb4(endpoints: number, maxServices: number): Promise<Lb4Bench> {
  const kernel = new BpfKernel({ seed: 1 });
  const prog = (await kernel.load("programs/lb4.ts")).program("cls_main");
  const lb = new Lb4Maps(kernel);
  const pool = Math.min(BACKEND_POOL, maxServices * endpoints);
  for (let b = 1; b <= pool; b++) lb.upsertBackend({ id: b, address: endpointIp(b), port: 8080, proto: "TCP" });
  return { kernel, lb, prog, batch: new PacketBatch(kernel.mem), services: 0, endpoints, pool, primed: false };
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

export function lb4BytesPerCtEntry(b: Lb4Bench): number {
  const ct = b.kernel.pinned.get("cilium_ct4_global");
  if (!ct) throw new Error(`bench: map cilium_ct4_global not pinned (${LB4_MAPS.services} is)`);
  return ct.spec.keySize + ct.spec.valueSize;
}

export function lb4Tasks(b: Lb4Bench): { newConn: PathTask; established: PathTask } {
  const n = b.services;
  const { batch, kernel, prog } = b;
  const p = prog;
  batch.reset();
  for (let i = 0; i < BATCH; i++) {
    const svc = Math.floor(((i * 2654435761) % 4294967296) / 4294967296 * n);
    batch.add(buildTcp({ src: (0x0af50000 + i) >>> 0, dst: serviceIp(svc), sport: 10000 + i, dport: 80, flags: 0x10, payload: new Uint8Array(6) }));
  }
  const last = batch.packet(BATCH - 1);
  const used = last.byteOffset + last.length - PKT_BASE;
  const pristine = kernel.mem.u8.slice(PKT_BASE, PKT_BASE + used);
  const fresh = pristine.slice();
  const srcOff: number[] = [];
  for (let i = 0; i < BATCH; i++) srcOff.push(batch.packet(i).byteOffset - PKT_BASE + 14 + 12);
  // Warm: every flow of the batch established; let the engine tier the WebAssembly up.
  for (let w = 0; w < 50; w++) {
    kernel.mem.u8.set(pristine, PKT_BASE);
    p.runBatch(batch);
  }
  let gen = 0;
  const newConn = (): void => {
    gen = (gen + 1) & 0xffff;
    for (let i = 0; i < BATCH; i++) {
      const o = srcOff[i]!;
      fresh[o + 1] = 0x80 | (gen >> 8); // 10.(128|g).g.x: a source not seen before in this run
      fresh[o + 2] = gen & 255;
    }
    kernel.mem.u8.set(fresh, PKT_BASE);
    p.runBatch(batch);
  };
  // Steady state for new connections: the LRU CT map full, so every create evicts (as on a busy node).
  if (!b.primed) {
    const ct = kernel.pinned.get("cilium_ct4_global");
    const fill = ct ? Math.ceil(ct.spec.maxEntries / (BATCH * LB4_CT_CREATES_NEW)) + 8 : 0;
    for (let w = 0; w < fill; w++) newConn();
    b.primed = true;
  }
  return {
    established: { items: BATCH, fn: () => { kernel.mem.u8.set(pristine, PKT_BASE); p.runBatch(batch); } },
    newConn: { items: BATCH, fn: newConn },
  };
}
