// The identity and policy maps as the agent writes them (pkg/maps/ipcache, lxcmap, policymap), byte-compatible
// with programs/lib/policy_map.ts. PolicyEntry is the unit a NetworkPolicy translation (a later issue) will
// produce: {endpoint, remote identity or any, port or any, protocol or any, direction, allow/deny}.
import type { BpfKernel } from "../../ebpf/kernel.js";
import type { BpfMap } from "../../ebpf/maps/map.js";
import { MapError } from "../../ebpf/errors.js";
import { parseCidr, parseIpv4 } from "../../packet/addr.js";
import { IPPROTO, type MapOps } from "./lb-maps.js";

export const ENDPOINT_F_POLICY_INGRESS = 1 << 0;
export const ENDPOINT_F_POLICY_EGRESS = 1 << 1;

export interface EndpointSpec {
  /** The endpoint's (pod's) IPv4 address. */
  ip: string;
  /** Endpoint id (1..65535): its policy entries are keyed by it. */
  id: number;
  identity: number;
  ifindex?: number;
  /** A policy selects the endpoint for ingress / egress: default deny in that direction. */
  enforceIngress?: boolean;
  enforceEgress?: boolean;
}

export interface PolicyEntry {
  endpointId: number;
  direction: "ingress" | "egress";
  /** Remote identity; 0 = any. */
  identity?: number;
  /** Destination port; 0 or absent = any. */
  port?: number;
  /** "TCP" | "UDP" | "ICMP" or a number; absent = any. */
  protocol?: string | number;
  deny?: boolean;
}

const PROTO: Record<string, number> = { ...IPPROTO, ICMP: 1 };
const LE = true;

export class PolicyMaps {
  readonly ipcache: BpfMap;
  readonly endpoints: BpfMap;
  readonly policy: BpfMap;
  readonly ops: MapOps = { updates: 0, deletes: 0 };

  constructor(kernel: BpfKernel) {
    const get = (name: string) => {
      const m = kernel.pinned.get(name);
      if (!m) throw new MapError("not pinned: load programs/policy.ts first", `map ${name}`, 2);
      return m;
    };
    this.ipcache = get("cilium_ipcache");
    this.endpoints = get("cilium_lxc");
    this.policy = get("cilium_policy_v2");
  }

  /** struct ipcache_key for "10.244.1.5/32" or a bare address (/32). */
  ipcacheKey(cidr: string): Uint8Array {
    const c = cidr.includes("/") ? parseCidr(cidr) : { addr: parseIpv4(cidr), len: 32 };
    const k = new Uint8Array(8);
    const kd = new DataView(k.buffer);
    kd.setUint32(0, c.len, LE);
    kd.setUint32(4, c.addr >>> 0, false);
    return k;
  }

  /** ipcache: a CIDR ("10.244.1.5/32", "0.0.0.0/0") holds identity `identity`. */
  upsertIpcache(cidr: string, identity: number, tunnelEndpoint?: string): void {
    const k = this.ipcacheKey(cidr);
    const v = new Uint8Array(12);
    const vd = new DataView(v.buffer);
    vd.setUint32(0, identity, LE);
    if (tunnelEndpoint) vd.setUint32(4, parseIpv4(tunnelEndpoint), false);
    this.ipcache.update(k, v);
    this.ops.updates++;
  }

  /** Remove a prefix from the ipcache (absent: nothing to do). */
  deleteIpcache(cidr: string): void {
    const k = this.ipcacheKey(cidr);
    if (this.ipcache.lookup(k) === undefined) return;
    this.ipcache.delete(k);
    this.ops.deletes++;
  }

  upsertEndpoint(ep: EndpointSpec): void {
    const k = new Uint8Array(4);
    new DataView(k.buffer).setUint32(0, parseIpv4(ep.ip), false);
    const v = new Uint8Array(16);
    const d = new DataView(v.buffer);
    d.setUint32(0, ep.ifindex ?? 0, LE);
    d.setUint16(4, ep.id, LE);
    d.setUint16(6, (ep.enforceIngress ? ENDPOINT_F_POLICY_INGRESS : 0) | (ep.enforceEgress ? ENDPOINT_F_POLICY_EGRESS : 0), LE);
    d.setUint32(8, ep.identity, LE);
    this.endpoints.update(k, v);
    this.ops.updates++;
  }

  policyKey(e: PolicyEntry): Uint8Array {
    const k = new Uint8Array(12);
    const d = new DataView(k.buffer);
    d.setUint32(0, e.identity ?? 0, LE);
    d.setUint16(4, e.endpointId, LE);
    d.setUint16(6, e.port ?? 0, false);
    const p = e.protocol === undefined ? 0 : typeof e.protocol === "number" ? e.protocol : PROTO[e.protocol];
    if (p === undefined) throw new MapError(`unknown protocol ${String(e.protocol)}`, "map cilium_policy_v2", 22);
    k[8] = p;
    k[9] = e.direction === "egress" ? 1 : 0;
    return k;
  }

  /** Add an allow (or deny) entry. */
  upsertPolicy(e: PolicyEntry): void {
    const v = new Uint8Array(24);
    v[2] = e.deny ? 1 : 0;
    this.policy.update(this.policyKey(e), v);
    this.ops.updates++;
  }

  deletePolicy(e: PolicyEntry): void {
    this.policy.delete(this.policyKey(e));
    this.ops.deletes++;
  }

  /** Packets counted on an entry. */
  packets(e: PolicyEntry): number {
    const v = this.policy.lookup(this.policyKey(e));
    return v ? Number(new DataView(v.buffer, v.byteOffset).getBigUint64(8, LE)) : 0;
  }
}
