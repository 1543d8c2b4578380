// IP Virtual Server (kernel net/netfilter/ipvs): virtual services, real servers (destinations) and the schedulers
// kube-proxy's IPVS mode uses. Connections and the packet path are in ipvs-conn.ts; `ipvsadm -Ln` printing in
// ipvs-format.ts.
//
//   const ipvs = new Ipvs();
//   const svc = ipvs.addService({ proto: 6, addr, port, scheduler: "rr", persistent: false, timeout: 0 });
//   ipvs.addDest(svc, { addr, port, weight: 1 });
//   ipvs.schedule(svc, srcAddr, srcPort) → destination index in svc.dests, or -1 (none available)
//
// Modelled as the kernel does it:
// - destinations are linked at the head of the service's list (list_add_rcu in __ip_vs_update_dest), so the
//   schedulers walk them newest first; `ipvsadm -Ln` sorts them for printing.
// - rr (ip_vs_rr): the next destination after the last one chosen, skipping weight 0.
// - wrr (ip_vs_wrr): current weight cw starts at the max weight, drops by the gcd of weights on each wrap; the next
//   destination whose weight >= cw is chosen.
// - lc (ip_vs_lc): least (activeconns << 8) + inactconns (ip_vs_dest_conn_overhead), first of equals, weight > 0.
// - sh (ip_vs_sh): 256 buckets filled round-robin over the destinations, each repeated `weight` times;
//   bucket = hash_32(ntohl(saddr), 8) (the port is not hashed without the sh-port flag); a bucket whose
//   destination has weight 0 gives no destination (no sh-fallback).
// Persistence (ipvsadm -p TIMEOUT, kube-proxy's sessionAffinity ClientIP) is a connection template per client
// address and service, in ipvs-conn.ts.
// Real servers keep a numeric id for life (connections refer to it): `ipvsadm -e` (editDest) changes a weight,
// `ipvsadm -d` (delDest) unlinks one from its service and marks it unavailable (IP_VS_DEST_F_AVAILABLE cleared;
// the kernel keeps it in its trash while connections still point at it); delService does the same for all of
// a service's real servers. After a change rr keeps its place in the list (ip_vs_rr_del_dest steps back off a
// removed server), wrr restarts at the list head with cw re-fitted (ip_vs_wrr_dest_changed), sh refills its buckets.
import { NetfilterError } from "./errors.js";
import { KeyIndex } from "./ipset.js";

export type IpvsScheduler = "rr" | "wrr" | "lc" | "sh";
export const IPVS_SCHEDULERS: IpvsScheduler[] = ["rr", "wrr", "lc", "sh"];
/** IP_VS_SH_TAB_BITS */
export const IP_VS_SH_TAB_SIZE = 256;
const GOLDEN_RATIO_32 = 0x61c88647;
/** The shTable of a service that does not use sh: one shared empty array (no 1 KiB table per Service). */
const NO_SH_TABLE = new Int32Array(0);

export interface IpvsDest {
  /** Stable id (index in Ipvs.destById), what connections store. */
  id: number;
  /** Index of the service in Ipvs.services it belongs (belonged) to. */
  svc: number;
  /** IP_VS_DEST_F_AVAILABLE: false once deleted from its service. */
  available: boolean;
  addr: number;
  port: number;
  weight: number;
  /** Connections in ESTABLISHED (TCP), and all others (ip_vs: IP_VS_CONN_F_INACTIVE). */
  activeConns: number;
  inactConns: number;
  /** Persistence templates pointing here (counted apart, as the kernel's persistconns). */
  persistConns: number;
}

export interface IpvsServiceSpec {
  /** IPPROTO_TCP, IPPROTO_UDP or IPPROTO_SCTP. */
  proto: number;
  addr: number;
  port: number;
  scheduler: IpvsScheduler;
  /** IP_VS_SVC_F_PERSISTENT, with the persistence timeout in seconds. */
  persistent: boolean;
  timeout: number;
}

export interface IpvsService extends IpvsServiceSpec {
  index: number;
  /** In the kernel's list order (newest first). */
  dests: IpvsDest[];
  /** rr: index of the last destination chosen (-1: the list head). wrr: the same, plus cw. */
  last: number;
  cw: number;
  /** sh: destination index per bucket, -1 when empty (other schedulers: an empty array, NO_SH_TABLE). */
  shTable: Int32Array;
  /** ipvsadm -D: gone from the lookup table and from `ipvsadm -Ln`. */
  deleted: boolean;
}

/** A service's key words in Ipvs's index: the address (int32), and protocol class × 65536 + port. */
function protoPort(proto: number, port: number): number {
  return (proto === 6 ? 0 : proto === 17 ? 65536 : proto === 132 ? 131072 : 196608) + port;
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

/** hash_32(val, bits) from include/linux/hash.h. */
export function hash32(val: number, bits: number): number {
  return Math.imul(val >>> 0, GOLDEN_RATIO_32) >>> (32 - bits);
}

export class Ipvs {
  /** Services by index; a deleted one stays here with `deleted` set (its index is what connections remember). */
  readonly services: IpvsService[] = [];
  /** Every real server ever added, by id (deleted ones included: connections may still point at them). */
  readonly destById: IpvsDest[] = [];
  /** Live services: (address, protoPort, 0) → index (numeric words: no number boxed per lookup). */
  private readonly byKey = new KeyIndex();

  addService(spec: IpvsServiceSpec): IpvsService {
    const a = spec.addr | 0;
    const pp = protoPort(spec.proto, spec.port);
    if (this.byKey.get(a, pp, 0) >= 0) throw new NetfilterError("ipvs: Service already exists");
    // One literal with every field (no spread of `spec`): V8 gives every service the same map, so the per-packet
    // reads of svc.persistent, svc.dests, svc.scheduler are monomorphic (a spread gave each service a map of its own).
    const svc: IpvsService = {
      proto: spec.proto, addr: spec.addr, port: spec.port, scheduler: spec.scheduler, persistent: spec.persistent,
      timeout: spec.timeout, index: this.services.length, dests: [], last: -1, cw: 0, shTable: NO_SH_TABLE, deleted: false,
    };
    this.reassignSh(svc);
    this.services.push(svc);
    this.byKey.add(a, pp, 0, svc.index);
    return svc;
  }

  /** ipvsadm -a: link a real server at the head of the list; the schedulers' state is reset as the kernel does. */
  addDest(svc: IpvsService, d: { addr: number; port: number; weight: number }): IpvsDest {
    if (svc.dests.some((x) => x.addr === d.addr && x.port === d.port)) throw new NetfilterError("ipvs: Destination already exists");
    const dest: IpvsDest = {
      id: this.destById.length, svc: svc.index, available: true, addr: d.addr, port: d.port, weight: d.weight,
      activeConns: 0, inactConns: 0, persistConns: 0,
    };
    this.destById.push(dest);
    svc.dests.unshift(dest);
    this.changed(svc, svc.last >= 0 ? svc.last + 1 : -1);
    return dest;
  }

  /** The service's real server at addr:port, or undefined. */
  findDest(svc: IpvsService, addr: number, port: number): IpvsDest | undefined {
    return svc.dests.find((x) => x.addr === addr && x.port === port);
  }

  /** ipvsadm -e: a new weight for a real server (0: quiesced, no new connections; existing ones stay). */
  editDest(svc: IpvsService, addr: number, port: number, weight: number): IpvsDest {
    const dest = this.findDest(svc, addr, port);
    if (!dest) throw new NetfilterError("ipvs: No such destination");
    dest.weight = weight;
    this.changed(svc, svc.last);
    return dest;
  }

  /** ipvsadm -d: unlink a real server; its connections keep pointing at it, unavailable (expire_nodest_conn). */
  delDest(svc: IpvsService, addr: number, port: number): void {
    const i = svc.dests.findIndex((x) => x.addr === addr && x.port === port);
    if (i < 0) throw new NetfilterError("ipvs: No such destination");
    svc.dests[i]!.available = false;
    svc.dests.splice(i, 1);
    this.changed(svc, svc.last >= i ? svc.last - 1 : svc.last);
  }

  /** ipvsadm -D: remove a virtual service and its real servers. */
  delService(svc: IpvsService): void {
    for (const d of svc.dests) d.available = false;
    svc.dests.length = 0;
    svc.deleted = true;
    this.byKey.delete(svc.addr | 0, protoPort(svc.proto, svc.port), 0);
  }

  /** The services not deleted, in creation order. */
  live(): IpvsService[] {
    return this.services.filter((s) => !s.deleted);
  }

  /** ipvsadm -E: scheduler and persistence of an existing service. */
  editService(svc: IpvsService, spec: Pick<IpvsServiceSpec, "scheduler" | "persistent" | "timeout">): void {
    svc.scheduler = spec.scheduler;
    svc.persistent = spec.persistent;
    svc.timeout = spec.timeout;
    svc.last = -1;
    svc.cw = 0;
    this.reassignSh(svc);
  }

  /**
   * The real server list changed; `rrLast` is rr's position in the new list. wrr: back to the head, cw kept when it
   * still fits (rounded to the gcd grid), else the max weight.
   */
  private changed(svc: IpvsService, rrLast: number): void {
    if (svc.scheduler === "rr") svc.last = rrLast;
    else {
      svc.last = -1;
      let max = 0;
      let di = 0;
      for (const d of svc.dests) {
        if (d.weight > max) max = d.weight;
        if (d.weight > 0) di = gcd(di, d.weight);
      }
      const g = di || 1; // ip_vs_wrr_gcd_weight: 1 when no weight is positive
      const mw = max - (g - 1);
      if (svc.cw > mw || svc.cw === 0) svc.cw = mw;
      else if (g > 1) svc.cw = Math.floor(svc.cw / g) * g + 1;
    }
    this.reassignSh(svc);
  }

  /** The service for a packet's destination, or -1 (per packet: numeric key). */
  lookup(proto: number, addr: number, port: number): number {
    return this.byKey.get(addr | 0, protoPort(proto, port), 0);
  }

  /** ip_vs_sh_reassign (the table exists for sh services only, as ip_vs_sh_init_svc allocates it). */
  private reassignSh(svc: IpvsService): void {
    if (svc.scheduler !== "sh") return;
    if (svc.shTable === NO_SH_TABLE) svc.shTable = new Int32Array(IP_VS_SH_TAB_SIZE);
    const n = svc.dests.length;
    let p = 0;
    let count = 0;
    for (let i = 0; i < IP_VS_SH_TAB_SIZE; i++) {
      if (n === 0) {
        svc.shTable[i] = -1;
        continue;
      }
      svc.shTable[i] = p;
      if (++count >= svc.dests[p]!.weight) {
        p = (p + 1) % n;
        count = 0;
      }
    }
  }

  /** Pick a destination for a new connection from `saddr`; -1 when none is available. */
  schedule(svc: IpvsService, saddr: number): number {
    const ds = svc.dests;
    const n = ds.length;
    if (n === 0) return -1;
    switch (svc.scheduler) {
      case "rr": {
        for (let k = 1; k <= n; k++) {
          const i = (svc.last + k + n) % n;
          if (ds[i]!.weight > 0) return (svc.last = i);
        }
        return -1;
      }
      case "wrr": {
        // ip_vs_wrr: mw = max weight - (gcd - 1); cw starts at mw; walk on from the last choice, and on passing
        // the list head lower cw by the gcd (back to mw below 1).
        let max = 0;
        let di = 0;
        for (const d of ds) {
          if (d.weight > max) max = d.weight;
          if (d.weight > 0) di = gcd(di, d.weight);
        }
        if (max === 0) return -1;
        const mw = max - (di - 1);
        if (svc.cw <= 0 || svc.cw > mw) svc.cw = mw;
        let i = svc.last;
        for (let guard = 0; guard < 2 * n * (mw + 1); guard++) {
          i++;
          if (i >= n) {
            i = -1;
            svc.cw -= di;
            if (svc.cw <= 0) svc.cw = mw;
            continue;
          }
          if (ds[i]!.weight >= svc.cw) return (svc.last = i);
        }
        return -1;
      }
      case "lc": {
        let best = -1;
        let bestOh = 0;
        for (let i = 0; i < n; i++) {
          const d = ds[i]!;
          if (d.weight <= 0) continue;
          const oh = d.activeConns * 256 + d.inactConns;
          if (best < 0 || oh < bestOh) {
            best = i;
            bestOh = oh;
          }
        }
        return best;
      }
      case "sh": {
        const b = hash32(saddr, 8);
        const i = svc.shTable[b]!;
        return i >= 0 && ds[i]!.weight > 0 ? i : -1;
      }
    }
  }
}
