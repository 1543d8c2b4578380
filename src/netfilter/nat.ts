// NAT bindings (kernel net/netfilter/nf_nat_core.c, Linux 6.x): nf_nat_setup_info, get_unique_tuple,
// find_appropriate_src, find_best_ips_proto (jhash2, as the kernel), nf_nat_l4proto_unique_tuple, null bindings.
//
// A binding is the entry's reply tuple: the rules engine hands a NatRange (from DNAT/SNAT/MASQUERADE, compiled
// once) to `natSetupInfo` on the first packet of a connection at the nat hook of that manip type; the kernel's
// choice of address and port is written into the reply tuple and the IPS_SRC_NAT / IPS_DST_NAT status bits.
// `natPacket` (nat-packet.ts) then rewrites every packet of both directions from the two tuples.
//
// Port selection (Linux >= 5.x): keep the original tuple when it is in range and unused ("MASQUERADE keeps the
// source port when it is free"); otherwise try ports from a random offset (get_random_u16, from `ct.random`) for up
// to 128 attempts, then halve the window from a new random offset while >= 16. When every port is taken the last
// candidate is kept and the clash is caught at confirmation (insert_failed, drop), as in the kernel.
// Not modelled: the 6.x eviction of closing TCP entries that block a port (nf_nat_used_tuple_new), NETMAP, helpers.
import type { Conntrack } from "./conntrack.js";
import {
  IPS_DST_NAT,
  IPS_DST_NAT_DONE,
  IPS_DYING,
  IPS_SRC_NAT,
  IPS_SRC_NAT_DONE,
} from "./conntrack-table.js";
import { IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, invertPorts } from "./tuple.js";

// enum nf_nat_range flags (include/uapi/linux/netfilter/nf_nat.h)
export const NF_NAT_RANGE_MAP_IPS = 1 << 0;
export const NF_NAT_RANGE_PROTO_SPECIFIED = 1 << 1;
export const NF_NAT_RANGE_PROTO_RANDOM = 1 << 2;
export const NF_NAT_RANGE_PERSISTENT = 1 << 3;
export const NF_NAT_RANGE_PROTO_RANDOM_FULLY = 1 << 4;
export const NF_NAT_RANGE_PROTO_OFFSET = 1 << 5;
export const NF_NAT_RANGE_PROTO_RANDOM_ALL = NF_NAT_RANGE_PROTO_RANDOM | NF_NAT_RANGE_PROTO_RANDOM_FULLY;

export const NF_NAT_MANIP_SRC = 0;
export const NF_NAT_MANIP_DST = 1;

export const NF_DROP = 0;
export const NF_ACCEPT = 1;

/** kernel NF_NAT_MAX_ATTEMPTS */
const NF_NAT_MAX_ATTEMPTS = 128;

/** struct nf_nat_range2 for IPv4: addresses as unsigned 32-bit numbers, ports (or ICMP ids) in host order. */
export interface NatRange {
  flags: number;
  minAddr: number;
  maxAddr: number;
  minProto: number;
  maxProto: number;
  baseProto?: number;
}

/** The candidate tuple get_unique_tuple works on (module scratch: nothing allocated per packet). */
const cand = { src: 0, dst: 0, ports: 0, proto: 0 };
const orig = { src: 0, dst: 0, ports: 0, proto: 0 };

// ---- jhash2 (include/linux/jhash.h, Bob Jenkins' lookup3), used by find_best_ips_proto ----
function rol32(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** jhash2 over four 32-bit words (the size of union nf_inet_addr). */
export function jhash2x4(k0: number, k1: number, k2: number, k3: number, initval: number): number {
  let a = (0xdeadbeef + (4 << 2) + initval) >>> 0;
  let b = a;
  let c = a;
  a = (a + k0) >>> 0;
  b = (b + k1) >>> 0;
  c = (c + k2) >>> 0;
  // __jhash_mix
  a = (a - c) >>> 0; a = (a ^ rol32(c, 4)) >>> 0; c = (c + b) >>> 0;
  b = (b - a) >>> 0; b = (b ^ rol32(a, 6)) >>> 0; a = (a + c) >>> 0;
  c = (c - b) >>> 0; c = (c ^ rol32(b, 8)) >>> 0; b = (b + a) >>> 0;
  a = (a - c) >>> 0; a = (a ^ rol32(c, 16)) >>> 0; c = (c + b) >>> 0;
  b = (b - a) >>> 0; b = (b ^ rol32(a, 19)) >>> 0; a = (a + c) >>> 0;
  c = (c - b) >>> 0; c = (c ^ rol32(b, 4)) >>> 0; b = (b + a) >>> 0;
  a = (a + k3) >>> 0;
  // __jhash_final
  c = (c ^ b) >>> 0; c = (c - rol32(b, 14)) >>> 0;
  a = (a ^ c) >>> 0; a = (a - rol32(c, 11)) >>> 0;
  b = (b ^ a) >>> 0; b = (b - rol32(a, 25)) >>> 0;
  c = (c ^ b) >>> 0; c = (c - rol32(b, 16)) >>> 0;
  a = (a ^ c) >>> 0; a = (a - rol32(c, 4)) >>> 0;
  b = (b ^ a) >>> 0; b = (b - rol32(a, 14)) >>> 0;
  c = (c ^ b) >>> 0; c = (c - rol32(b, 24)) >>> 0;
  return c;
}

/** An address as the kernel's u32 view of its network-order bytes on a little-endian CPU. */
function leWord(ip: number): number {
  return (((ip & 0xff) << 24) | ((ip & 0xff00) << 8) | ((ip >>> 8) & 0xff00) | (ip >>> 24)) >>> 0;
}

function reciprocalScale32(j: number, n: number): number {
  return Math.floor((j >>> 0) * n / 4294967296);
}

/**
 * nf_nat_used_tuple / nf_conntrack_tuple_taken: is the reply of this candidate already a confirmed tuple of another
 * flow? An entry with the same original tuple as `self` is the same flow (a clash resolved later) and does not count.
 */
export function natUsedTuple(ct: Conntrack, self: number, src: number, dst: number, ports: number, proto: number): boolean {
  const rports = invertPorts(proto, ports);
  const rsrc = dst;
  const rdst = src;
  let n = ct.heads[ct.bucketOfTuple(rsrc, rdst, rports, proto)]!;
  const so = self * 2;
  while (n >= 0) {
    const next = ct.hnext[n]!;
    if (ct.tSrc[n] === rsrc && ct.tDst[n] === rdst && ct.tPorts[n] === rports && ct.tProto[n] === proto) {
      const e = n >> 1;
      if (e !== self && !(ct.status[e]! & IPS_DYING)) {
        if (ct.expires[e]! <= ct.now) ct.kill(e);
        else {
          const eo = e * 2;
          const sameFlow = ct.tSrc[eo] === ct.tSrc[so] && ct.tDst[eo] === ct.tDst[so] && ct.tPorts[eo] === ct.tPorts[so] && ct.tProto[eo] === ct.tProto[so];
          if (!sameFlow) {
            ct.stats.found++;
            return true;
          }
        }
      }
    }
    n = next;
  }
  return false;
}

function manipPort(ports: number, proto: number, maniptype: number): number {
  if (proto === IPPROTO_ICMP) return ports >>> 16; // the echo id is the "source" part in both manips
  return maniptype === NF_NAT_MANIP_SRC ? ports >>> 16 : ports & 0xffff;
}

function withManipPort(ports: number, proto: number, maniptype: number, port: number): number {
  if (proto === IPPROTO_ICMP || maniptype === NF_NAT_MANIP_SRC) return ((ports & 0xffff) | (port << 16)) >>> 0;
  return ((ports & 0xffff0000) | port) >>> 0;
}

/** kernel l4proto_in_range */
function l4InRange(ports: number, proto: number, maniptype: number, r: NatRange): boolean {
  if (proto !== IPPROTO_TCP && proto !== IPPROTO_UDP && proto !== IPPROTO_ICMP) return true;
  const p = manipPort(ports, proto, maniptype);
  return p >= r.minProto && p <= r.maxProto;
}

/** kernel nf_in_range (source side only: it is used for SNAT's first choices). */
function inRange(src: number, ports: number, proto: number, r: NatRange): boolean {
  if (r.flags & NF_NAT_RANGE_MAP_IPS && (src < r.minAddr || src > r.maxAddr)) return false;
  if (!(r.flags & NF_NAT_RANGE_PROTO_SPECIFIED)) return true;
  return l4InRange(ports, proto, NF_NAT_MANIP_SRC, r);
}

/** kernel find_appropriate_src: reuse the mapping an existing connection from the same source got. */
function findAppropriateSrc(ct: Conntrack, r: NatRange): boolean {
  const sport = orig.ports >>> 16;
  let e = ct.bsHeads[ct.bysourceBucket(orig.src, sport, orig.proto)]!;
  while (e >= 0) {
    const eo = e * 2;
    if (ct.tProto[eo] === orig.proto && ct.tSrc[eo] === orig.src && ct.tPorts[eo]! >>> 16 === sport) {
      const er = eo + 1;
      const src = ct.tDst[er]!;
      const mapped = invertPorts(orig.proto, ct.tPorts[er]!);
      // Source part from the other connection's mapping, destination part (port, or ICMP type/code) our own.
      const ports = ((mapped & 0xffff0000) | (orig.ports & 0xffff)) >>> 0;
      if (inRange(src, ports, orig.proto, r)) {
        cand.src = src;
        cand.dst = orig.dst;
        cand.ports = ports;
        cand.proto = orig.proto;
        return true;
      }
    }
    e = ct.bsNext[e]!;
  }
  return false;
}

/** kernel find_best_ips_proto: one address from the range, by a hash of source (and destination unless persistent). */
function findBestIps(r: NatRange, maniptype: number): void {
  if (!(r.flags & NF_NAT_RANGE_MAP_IPS)) return;
  let ip: number;
  if (r.minAddr === r.maxAddr) ip = r.minAddr;
  else {
    const j = jhash2x4(leWord(cand.src), 0, 0, 0, r.flags & NF_NAT_RANGE_PERSISTENT ? 0 : leWord(cand.dst));
    const dist = (r.maxAddr - r.minAddr + 1) >>> 0;
    ip = (r.minAddr + reciprocalScale32(j, dist)) >>> 0;
  }
  if (maniptype === NF_NAT_MANIP_SRC) cand.src = ip;
  else cand.dst = ip;
}

/** kernel nf_nat_l4proto_unique_tuple */
function uniqueTuple(ct: Conntrack, self: number, r: NatRange, maniptype: number): void {
  const proto = cand.proto;
  let min: number;
  let size: number;
  if (proto === IPPROTO_ICMP) {
    if (!(r.flags & NF_NAT_RANGE_PROTO_SPECIFIED)) {
      min = 0;
      size = 65536;
    } else {
      min = r.minProto;
      size = r.maxProto - r.minProto + 1;
    }
  } else if (proto === IPPROTO_TCP || proto === IPPROTO_UDP) {
    if (!(r.flags & NF_NAT_RANGE_PROTO_SPECIFIED)) {
      if (maniptype === NF_NAT_MANIP_DST) return; // a destination port is never changed unasked
      const p = manipPort(cand.ports, proto, maniptype);
      if (p < 1024) {
        // Loose convention: ports below 512 stay below 512 (credential passing), 512..1023 map to 600..1023.
        if (p < 512) {
          min = 1;
          size = 511;
        } else {
          min = 600;
          size = 1023 - 600 + 1;
        }
      } else {
        min = 1024;
        size = 65535 - 1024 + 1;
      }
    } else {
      let lo = r.minProto;
      let hi = r.maxProto;
      if (hi < lo) [lo, hi] = [hi, lo];
      min = lo;
      size = hi - lo + 1;
    }
  } else return;

  let off: number;
  if (r.flags & NF_NAT_RANGE_PROTO_OFFSET) off = (manipPort(cand.ports, proto, maniptype) - (r.baseProto ?? 0)) & 0xffff;
  else if (r.flags & NF_NAT_RANGE_PROTO_RANDOM_ALL || maniptype !== NF_NAT_MANIP_DST) off = ct.random() & 0xffff;
  else off = 0;

  let attempts = Math.min(size, NF_NAT_MAX_ATTEMPTS);
  for (;;) {
    for (let k = 0; k < attempts; k++, off = (off + 1) & 0xffff) {
      cand.ports = withManipPort(cand.ports, proto, maniptype, min + (off % size));
      if (!natUsedTuple(ct, self, cand.src, cand.dst, cand.ports, proto)) return;
    }
    if (attempts >= size || attempts < 16) return;
    attempts = attempts >>> 1;
    off = ct.random() & 0xffff;
  }
}

/** kernel get_unique_tuple: fills `cand` from `orig`. */
function getUniqueTuple(ct: Conntrack, self: number, r: NatRange, maniptype: number): void {
  if (maniptype === NF_NAT_MANIP_SRC && !(r.flags & NF_NAT_RANGE_PROTO_RANDOM_ALL)) {
    if (inRange(orig.src, orig.ports, orig.proto, r)) {
      if (!natUsedTuple(ct, self, orig.src, orig.dst, orig.ports, orig.proto)) {
        cand.src = orig.src; cand.dst = orig.dst; cand.ports = orig.ports; cand.proto = orig.proto;
        return;
      }
    } else if (findAppropriateSrc(ct, r)) {
      if (!natUsedTuple(ct, self, cand.src, cand.dst, cand.ports, cand.proto)) return;
    }
  }
  cand.src = orig.src; cand.dst = orig.dst; cand.ports = orig.ports; cand.proto = orig.proto;
  findBestIps(r, maniptype);
  if (!(r.flags & NF_NAT_RANGE_PROTO_RANDOM_ALL)) {
    if (r.flags & NF_NAT_RANGE_PROTO_SPECIFIED) {
      if (!(r.flags & NF_NAT_RANGE_PROTO_OFFSET) && l4InRange(cand.ports, cand.proto, maniptype, r) &&
          (r.minProto === r.maxProto || !natUsedTuple(ct, self, cand.src, cand.dst, cand.ports, cand.proto))) return;
    } else if (!natUsedTuple(ct, self, cand.src, cand.dst, cand.ports, cand.proto)) return;
  }
  uniqueTuple(ct, self, r, maniptype);
}

/** Has this entry's binding for the manip type been set up (kernel nf_nat_initialized)? */
export function natInitialized(ct: Conntrack, i: number, maniptype: number): boolean {
  return (ct.status[i]! & (maniptype === NF_NAT_MANIP_SRC ? IPS_SRC_NAT_DONE : IPS_DST_NAT_DONE)) !== 0;
}

/**
 * kernel nf_nat_setup_info: choose the translated tuple for entry `i` and record it as the inverse reply tuple.
 * Returns NF_ACCEPT (the kernel's only outcome here; an exhausted pool fails later, at confirmation).
 */
export function natSetupInfo(ct: Conntrack, i: number, r: NatRange, maniptype: number): number {
  if (natInitialized(ct, i, maniptype)) return NF_ACCEPT;
  const rn = i * 2 + 1;
  const proto = ct.tProto[rn]!;
  // What we have now is the inverse of the reply tuple (earlier manips included).
  orig.src = ct.tDst[rn]!;
  orig.dst = ct.tSrc[rn]!;
  orig.ports = invertPorts(proto, ct.tPorts[rn]!);
  orig.proto = proto;
  getUniqueTuple(ct, i, r, maniptype);
  if (cand.src !== orig.src || cand.dst !== orig.dst || cand.ports !== orig.ports) {
    ct.setTuple(rn, cand.dst, cand.src, invertPorts(proto, cand.ports), proto);
    ct.status[i] |= maniptype === NF_NAT_MANIP_SRC ? IPS_SRC_NAT : IPS_DST_NAT;
  }
  if (maniptype === NF_NAT_MANIP_SRC) ct.linkBysource(i);
  ct.status[i] |= maniptype === NF_NAT_MANIP_SRC ? IPS_SRC_NAT_DONE : IPS_DST_NAT_DONE;
  return NF_ACCEPT;
}

const nullRange: NatRange = { flags: NF_NAT_RANGE_MAP_IPS, minAddr: 0, maxAddr: 0, minProto: 0, maxProto: 0 };

/**
 * kernel nf_nat_alloc_null_binding: no nat rule matched the first packet at this hook; bind to the addresses it
 * already has. A reply tuple that clashes still gets a new source port (implicit source port remapping).
 */
export function natNullBinding(ct: Conntrack, i: number, maniptype: number): number {
  // SRC manip keeps the source: reply's destination; DST manip keeps the destination: reply's source.
  const ip = maniptype === NF_NAT_MANIP_SRC ? ct.tDst[i * 2 + 1]! : ct.tSrc[i * 2 + 1]!;
  nullRange.minAddr = ip;
  nullRange.maxAddr = ip;
  return natSetupInfo(ct, i, nullRange, maniptype);
}

/** Parse `ip[-ip][:port[-port]]` (iptables --to-destination / --to-source) into a NatRange. Setup time only. */
export function parseNatRange(text: string, opts: { random?: boolean; randomFully?: boolean; persistent?: boolean } = {}): NatRange {
  const m = /^(\d+\.\d+\.\d+\.\d+)?(?:-(\d+\.\d+\.\d+\.\d+))?(?::(\d+)(?:-(\d+))?)?$/.exec(text.trim());
  if (!m) throw new Error(`bad NAT range "${text}"`);
  const ip = (s: string) => s.split(".").reduce((a, b) => ((a << 8) | Number(b)) >>> 0, 0);
  let flags = 0;
  const r: NatRange = { flags: 0, minAddr: 0, maxAddr: 0, minProto: 0, maxProto: 0 };
  if (m[1]) {
    flags |= NF_NAT_RANGE_MAP_IPS;
    r.minAddr = ip(m[1]);
    r.maxAddr = m[2] ? ip(m[2]) : r.minAddr;
  }
  if (m[3]) {
    flags |= NF_NAT_RANGE_PROTO_SPECIFIED;
    r.minProto = Number(m[3]);
    r.maxProto = m[4] ? Number(m[4]) : r.minProto;
  }
  if (opts.random) flags |= NF_NAT_RANGE_PROTO_RANDOM;
  if (opts.randomFully) flags |= NF_NAT_RANGE_PROTO_RANDOM_FULLY;
  if (opts.persistent) flags |= NF_NAT_RANGE_PERSISTENT;
  r.flags = flags;
  return r;
}
