// The lb4 maps as cilium-agent writes them (pkg/maps/lbmap): raw key/value encoders matching
// programs/lib/lb_map.ts byte for byte, and the update order that keeps the datapath consistent while it runs:
// backends first, then the backend slots, then slot 0 (the frontend) last; on removal the reverse. Setup path
// only (objects allowed); the program reads these bytes without calling the host.
import type { BpfKernel } from "../../ebpf/kernel.js";
import type { BpfMap } from "../../ebpf/maps/map.js";
import { MapError } from "../../ebpf/errors.js";
import { parseIpv4 } from "../../packet/addr.js";
import { computeMaglevTable, MAGLEV_DEFAULT_M } from "../../ebpf/maglev.js";

export const IPPROTO: Record<string, number> = { TCP: 6, UDP: 17, SCTP: 132 };
// lb_map.ts constants (SVC_FLAG_*, LB_LOOKUP_SCOPE_*, BE_STATE_*).
export const SVC_FLAG_EXTERNAL_IP = 1 << 0;
export const SVC_FLAG_NODEPORT = 1 << 1;
export const SVC_FLAG_AFFINITY = 1 << 4;
export const SVC_FLAG_LOADBALANCER = 1 << 5;
export const SVC_FLAG_ROUTABLE = 1 << 6;
export const SVC_FLAG2_MAGLEV = 1 << 7;
export const BE_STATE_ACTIVE = 0;
export const BE_STATE_TERMINATING = 1;

export type Addr = string | number;
const ip = (a: Addr): number => (typeof a === "number" ? a >>> 0 : parseIpv4(a));
const proto = (p: string | number): number => (typeof p === "number" ? p : (IPPROTO[p] ?? 0));

export interface Lb4Backend {
  id: number;
  address: Addr;
  port: number;
  proto: string | number;
  state?: number;
}

/** One frontend (lb4_key slot 0) and its backends in slot order. */
export interface Lb4Frontend {
  address: Addr;
  port: number;
  proto: string | number;
  revNatIndex: number;
  backendIds: number[];
  flags?: number;
  flags2?: number;
  /** Seconds (SVC_FLAG_AFFINITY). */
  affinityTimeout?: number;
  scope?: number;
}

/** Number of map writes an operation made: the control-plane cost benches compare. */
export interface MapOps {
  updates: number;
  deletes: number;
}

export const LB4_MAPS = {
  services: "cilium_lb4_services_v2",
  backends: "cilium_lb4_backends_v3",
  revNat: "cilium_lb4_reverse_nat",
  affinity: "cilium_lb4_affinity",
  affinityMatch: "cilium_lb_affinity_match",
  maglev: "cilium_lb4_maglev",
  config: "tcbox_lb4_config",
} as const;

/** Writer for the lb4 maps pinned in a kernel (load programs/lb4.ts first). */
export class Lb4Maps {
  readonly services: BpfMap;
  readonly backends: BpfMap;
  readonly revNat: BpfMap;
  readonly affinityMatch: BpfMap;
  readonly maglev: BpfMap;
  readonly config: BpfMap;
  readonly ops: MapOps = { updates: 0, deletes: 0 };
  /** Frontends written, by lb4_key bytes (hex), with the slot count: what to delete on shrink. */
  private readonly written = new Map<string, Lb4Frontend>();
  private readonly k12 = new Uint8Array(12);
  private readonly v16 = new Uint8Array(16);
  private readonly k4 = new Uint8Array(4);
  private readonly v12 = new Uint8Array(12);
  private readonly v8 = new Uint8Array(8);

  constructor(
    kernel: BpfKernel,
    readonly maglevM = MAGLEV_DEFAULT_M,
  ) {
    const get = (name: string) => {
      const m = kernel.pinned.get(name);
      if (!m) throw new MapError("not pinned: load programs/lb4.ts first", `map ${name}`, 2);
      return m;
    };
    this.services = get(LB4_MAPS.services);
    this.backends = get(LB4_MAPS.backends);
    this.revNat = get(LB4_MAPS.revNat);
    this.affinityMatch = get(LB4_MAPS.affinityMatch);
    this.maglev = get(LB4_MAPS.maglev);
    this.config = get(LB4_MAPS.config);
    const want = this.maglev.spec.valueSize / 4;
    if (want !== maglevM) throw new MapError(`the program's LB_MAGLEV_LUT_SIZE is ${want}, the agent's ${maglevM}`, `map ${LB4_MAPS.maglev}`, 22);
  }

  /** HASH_INIT4_SEED (the jhash seed of the 5-tuple hash indexing Maglev tables). */
  setMaglevSeed(seed: number): void {
    const v = new Uint8Array(8);
    const dv = new DataView(v.buffer);
    dv.setUint32(0, seed >>> 0, true);
    dv.setUint32(4, this.maglevM, true);
    this.config.update(new Uint8Array(4), v);
    this.ops.updates++;
  }

  svcKey(address: Addr, port: number, p: string | number, slot: number, scope = 0): Uint8Array {
    const k = this.k12;
    const dv = new DataView(k.buffer);
    dv.setUint32(0, ip(address), false);
    dv.setUint16(4, port, false);
    dv.setUint16(6, slot, true);
    k[8] = proto(p);
    k[9] = scope;
    k[10] = 0;
    k[11] = 0;
    return k;
  }

  private u32key(n: number): Uint8Array {
    new DataView(this.k4.buffer).setUint32(0, n >>> 0, true);
    return this.k4;
  }

  upsertBackend(b: Lb4Backend): void {
    const v = this.v12;
    const dv = new DataView(v.buffer);
    v.fill(0);
    dv.setUint32(0, ip(b.address), false);
    dv.setUint16(4, b.port, false);
    v[6] = proto(b.proto);
    v[7] = b.state ?? BE_STATE_ACTIVE;
    this.backends.update(this.u32key(b.id), v);
    this.ops.updates++;
  }

  deleteBackend(id: number): void {
    this.backends.delete(this.u32key(id));
    this.ops.deletes++;
  }

  /** Write one frontend: reverse NAT, Maglev table, backend slots, affinity matches, then slot 0. */
  upsertFrontend(f: Lb4Frontend, backendNames?: (id: number) => string): void {
    const rev = new Uint8Array(8);
    const rdv = new DataView(rev.buffer);
    rdv.setUint32(0, ip(f.address), false);
    rdv.setUint16(4, f.port, false);
    this.revNat.update(this.u32key(f.revNatIndex), rev);
    this.ops.updates++;
    const flags2 = f.flags2 ?? 0;
    if (flags2 & SVC_FLAG2_MAGLEV) {
      const names = f.backendIds.map((id) => backendNames?.(id) ?? String(id));
      const lut = computeMaglevTable(names, this.maglevM);
      const bytes = new Uint8Array(this.maglevM * 4);
      const dv = new DataView(bytes.buffer);
      for (let i = 0; i < lut.length; i++) dv.setUint32(i * 4, lut[i]! < 0 ? 0 : f.backendIds[lut[i]!]!, true);
      this.maglev.update(this.u32key(f.revNatIndex), bytes);
      this.ops.updates++;
    }
    const scope = f.scope ?? 0;
    const v = this.v16;
    const dv = new DataView(v.buffer);
    for (let s = 0; s < f.backendIds.length; s++) {
      v.fill(0);
      dv.setUint32(0, f.backendIds[s]!, true);
      this.services.update(this.svcKey(f.address, f.port, f.proto, s + 1, scope), v);
      this.ops.updates++;
    }
    const flags = f.flags ?? 0;
    if (flags & SVC_FLAG_AFFINITY) {
      for (const id of f.backendIds) {
        const mk = this.v8;
        new DataView(mk.buffer).setUint32(0, id, true);
        new DataView(mk.buffer).setUint32(4, f.revNatIndex, true);
        this.affinityMatch.update(mk, new Uint8Array(1));
        this.ops.updates++;
      }
    }
    v.fill(0);
    dv.setUint32(4, f.affinityTimeout ?? 0, true);
    dv.setUint32(8, f.revNatIndex, true);
    dv.setUint16(12, f.backendIds.length, true);
    v[14] = flags;
    v[15] = flags2;
    const key0 = this.svcKey(f.address, f.port, f.proto, 0, scope);
    const id = hexKey(key0);
    this.services.update(key0, v);
    this.ops.updates++;
    // Slots beyond the new count are unreachable now; delete them after the frontend changed (Cilium's order).
    const old = this.written.get(id);
    if (old) {
      for (let s = f.backendIds.length + 1; s <= old.backendIds.length; s++) this.del(this.services, this.svcKey(f.address, f.port, f.proto, s, scope));
      if (old.flags2 !== undefined && old.flags2 & SVC_FLAG2_MAGLEV && !(flags2 & SVC_FLAG2_MAGLEV)) this.del(this.maglev, this.u32key(old.revNatIndex));
      if ((old.flags ?? 0) & SVC_FLAG_AFFINITY) {
        const keep = flags & SVC_FLAG_AFFINITY ? new Set(f.backendIds) : new Set<number>();
        for (const b of old.backendIds) if (!keep.has(b)) this.del(this.affinityMatch, matchKey(b, old.revNatIndex));
      }
    }
    this.written.set(id, { ...f, backendIds: [...f.backendIds] });
  }

  /** Remove a frontend: slot 0 first (new connections stop), then slots, Maglev table, reverse NAT. */
  deleteFrontend(address: Addr, port: number, p: string | number, scope = 0): void {
    const key0 = this.svcKey(address, port, p, 0, scope);
    const id = hexKey(key0);
    const old = this.written.get(id);
    this.del(this.services, key0);
    if (!old) return;
    for (let s = 1; s <= old.backendIds.length; s++) this.del(this.services, this.svcKey(address, port, p, s, scope));
    if ((old.flags2 ?? 0) & SVC_FLAG2_MAGLEV) this.del(this.maglev, this.u32key(old.revNatIndex));
    if ((old.flags ?? 0) & SVC_FLAG_AFFINITY) for (const b of old.backendIds) this.del(this.affinityMatch, matchKey(b, old.revNatIndex));
    this.del(this.revNat, this.u32key(old.revNatIndex));
    this.written.delete(id);
  }

  /** Frontends written so far. */
  frontends(): Lb4Frontend[] {
    return [...this.written.values()];
  }

  private del(map: BpfMap, key: Uint8Array): void {
    if (map.lookup(key) === undefined) return;
    map.delete(key);
    this.ops.deletes++;
  }
}

function matchKey(backendId: number, revNat: number): Uint8Array {
  const k = new Uint8Array(8);
  const dv = new DataView(k.buffer);
  dv.setUint32(0, backendId, true);
  dv.setUint32(4, revNat, true);
  return k;
}

function hexKey(k: Uint8Array): string {
  let s = "";
  for (const b of k) s += b.toString(16).padStart(2, "0");
  return s;
}
