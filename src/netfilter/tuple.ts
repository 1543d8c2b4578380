// Conntrack tuples as numbers (kernel: struct nf_conntrack_tuple, nf_ct_get_tuple, nf_ct_invert_tuple).
//
// A tuple is four numbers: src and dst (IPv4 as unsigned 32-bit), `ports` and `proto`.
//   TCP/UDP: ports = (sport << 16 | dport) >>> 0
//   ICMP:    ports = (id << 16 | type << 8 | code) >>> 0   (kernel: src.u.icmp.id, dst.u.icmp.type/code)
//   other:   ports = 0                                      (kernel: the generic tracker has no L4 part)
// Packing the L4 part into one 32-bit word makes a tuple compare four integer compares and keeps it in typed arrays.
import { get16, get32 } from "../packet/checksum.js";

export const IPPROTO_ICMP = 1;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;

export const ICMP_ECHOREPLY = 0;
export const ICMP_DEST_UNREACH = 3;
export const ICMP_SOURCE_QUENCH = 4;
export const ICMP_REDIRECT = 5;
export const ICMP_ECHO = 8;
export const ICMP_TIME_EXCEEDED = 11;
export const ICMP_PARAMETERPROB = 12;
export const ICMP_TIMESTAMP = 13;
export const ICMP_TIMESTAMPREPLY = 14;
export const ICMP_INFO_REQUEST = 15;
export const ICMP_INFO_REPLY = 16;
export const ICMP_ADDRESS = 17;
export const ICMP_ADDRESSREPLY = 18;

/**
 * kernel nf_conntrack_proto_icmp.c `invmap`: the reply type of each query type, plus one (0 = no reply type).
 * Echo (8) is answered by echo-reply (0), timestamp by timestamp-reply, and so on, both ways.
 */
const ICMP_INVMAP = new Uint8Array(256);
ICMP_INVMAP[ICMP_ECHO] = ICMP_ECHOREPLY + 1;
ICMP_INVMAP[ICMP_ECHOREPLY] = ICMP_ECHO + 1;
ICMP_INVMAP[ICMP_TIMESTAMP] = ICMP_TIMESTAMPREPLY + 1;
ICMP_INVMAP[ICMP_TIMESTAMPREPLY] = ICMP_TIMESTAMP + 1;
ICMP_INVMAP[ICMP_INFO_REQUEST] = ICMP_INFO_REPLY + 1;
ICMP_INVMAP[ICMP_INFO_REPLY] = ICMP_INFO_REQUEST + 1;
ICMP_INVMAP[ICMP_ADDRESS] = ICMP_ADDRESSREPLY + 1;
ICMP_INVMAP[ICMP_ADDRESSREPLY] = ICMP_ADDRESS + 1;

/** kernel icmp_new `valid_new`: only queries may create an ICMP conntrack. */
export function icmpValidNew(type: number): boolean {
  return type === ICMP_ECHO || type === ICMP_TIMESTAMP || type === ICMP_INFO_REQUEST || type === ICMP_ADDRESS;
}

/** ICMP error types whose payload quotes the offending datagram (kernel icmp_error: icmp_is_err). */
export function icmpIsError(type: number): boolean {
  return (
    type === ICMP_DEST_UNREACH ||
    type === ICMP_SOURCE_QUENCH ||
    type === ICMP_REDIRECT ||
    type === ICMP_TIME_EXCEEDED ||
    type === ICMP_PARAMETERPROB
  );
}

export function packPorts(sport: number, dport: number): number {
  return (((sport & 0xffff) << 16) | (dport & 0xffff)) >>> 0;
}

export function packIcmp(id: number, type: number, code: number): number {
  return (((id & 0xffff) << 16) | ((type & 0xff) << 8) | (code & 0xff)) >>> 0;
}

/**
 * The L4 part of the inverted tuple (nf_ct_invert_tuple): ports swap; ICMP keeps its id and code and maps the
 * type through invmap. Returns -1 when an ICMP type has no reply type (kernel: invert fails, the packet is invalid).
 */
export function invertPorts(proto: number, ports: number): number {
  if (proto === IPPROTO_TCP || proto === IPPROTO_UDP) return ((ports << 16) | (ports >>> 16)) >>> 0;
  if (proto === IPPROTO_ICMP) {
    const inv = ICMP_INVMAP[(ports >>> 8) & 0xff]!;
    if (inv === 0) return -1;
    return ((ports & 0xffff00ff) | ((inv - 1) << 8)) >>> 0;
  }
  return ports;
}

/** A tuple read from a packet plus the L4 facts the trackers need. One per reader, reused for every packet. */
export class TupleScratch {
  /** The packet's bytes (TCP options are read from them). */
  buf: Uint8Array = new Uint8Array(0);
  src = 0;
  dst = 0;
  ports = 0;
  proto = 0;
  /** Offset of the IPv4 header and of the L4 header in the buffer; bytes of L4 (header + payload). */
  l3off = 0;
  l4off = 0;
  l4len = 0;
  /** TCP: flags byte, seq, ack, window, header length in bytes. */
  tcpFlags = 0;
  seq = 0;
  ack = 0;
  win = 0;
  doff = 0;
  /** ICMP type and code. */
  type = 0;
  code = 0;
}

/** Why a packet has no tuple. */
export const TUPLE_OK = 0;
export const TUPLE_NOT_IPV4 = 1;
export const TUPLE_TRUNCATED = 2;
export const TUPLE_FRAGMENT = 3;

/**
 * Read the tuple of the IPv4 datagram at `l3off` (`len` bytes available) into `t` (kernel nf_ct_get_tuple).
 * The IP total length bounds the datagram (trailing Ethernet padding is not L4 payload).
 */
export function readTuple(buf: Uint8Array, l3off: number, len: number, t: TupleScratch): number {
  if (len < 20) return TUPLE_NOT_IPV4;
  const v = buf[l3off]!;
  if (v >>> 4 !== 4) return TUPLE_NOT_IPV4;
  const ihl = (v & 15) * 4;
  // Byte reads written out (per packet; get16/get32 are not always inlined this deep).
  const total = (buf[l3off + 2]! << 8) | buf[l3off + 3]!;
  if (ihl < 20 || total < ihl || total > len) return TUPLE_TRUNCATED;
  // kernel: nf_defrag_ipv4 reassembles before conntrack sees the packet; this model expects whole datagrams.
  if ((buf[l3off + 6]! & 0x3f) !== 0 || buf[l3off + 7]! !== 0) return TUPLE_FRAGMENT;
  const proto = buf[l3off + 9]!;
  const src = ((buf[l3off + 12]! << 24) | (buf[l3off + 13]! << 16) | (buf[l3off + 14]! << 8) | buf[l3off + 15]!) >>> 0;
  const dst = ((buf[l3off + 16]! << 24) | (buf[l3off + 17]! << 16) | (buf[l3off + 18]! << 8) | buf[l3off + 19]!) >>> 0;
  const o = l3off + ihl;
  const l4len = total - ihl;
  // readL4's TCP case, inline for the common packet (kept as a copy on purpose: one readTcp shared by both call
  // sites measured nf_conntrack_in 66 -> 111 ns/packet in back-to-back runs of bench/conntrack.bench.ts). Every
  // byte is read before any field of `t` is written: a field store may clobber what V8 knows of the buffer (its
  // loads of the typed array's buffer and detached bit could otherwise not be shared between the reads).
  const tcp = proto === 6 /* IPPROTO_TCP */ && l4len >= 20;
  let ports = 0;
  let seq = 0;
  let ack = 0;
  let word3 = 0; // data offset, flags, window
  if (tcp) {
    ports = ((buf[o]! << 24) | (buf[o + 1]! << 16) | (buf[o + 2]! << 8) | buf[o + 3]!) >>> 0;
    seq = ((buf[o + 4]! << 24) | (buf[o + 5]! << 16) | (buf[o + 6]! << 8) | buf[o + 7]!) >>> 0;
    ack = ((buf[o + 8]! << 24) | (buf[o + 9]! << 16) | (buf[o + 10]! << 8) | buf[o + 11]!) >>> 0;
    word3 = ((buf[o + 12]! << 24) | (buf[o + 13]! << 16) | (buf[o + 14]! << 8) | buf[o + 15]!) >>> 0;
  }
  t.buf = buf;
  t.l3off = l3off;
  t.proto = proto;
  t.src = src;
  t.dst = dst;
  t.l4off = o;
  t.l4len = l4len;
  if (!tcp) return readL4(buf, t, l4len);
  t.ports = ports;
  t.seq = seq;
  t.ack = ack;
  t.doff = (word3 >>> 28) * 4;
  t.tcpFlags = (word3 >>> 16) & 0xff;
  t.win = word3 & 0xffff;
  return TUPLE_OK;
}

/** The L4 part from `t.l4off`, with `avail` bytes present (an ICMP error quotes only 8 bytes of L4). */
export function readL4(buf: Uint8Array, t: TupleScratch, avail: number): number {
  const o = t.l4off;
  switch (t.proto) {
    case IPPROTO_TCP:
      if (avail < 8) return TUPLE_TRUNCATED;
      t.ports = get32(buf, o);
      if (avail >= 20) {
        t.seq = get32(buf, o + 4);
        t.ack = get32(buf, o + 8);
        t.doff = (buf[o + 12]! >>> 4) * 4;
        t.tcpFlags = buf[o + 13]!;
        t.win = get16(buf, o + 14);
      }
      return TUPLE_OK;
    case IPPROTO_UDP:
      if (avail < 8) return TUPLE_TRUNCATED;
      t.ports = get32(buf, o);
      return TUPLE_OK;
    case IPPROTO_ICMP:
      if (avail < 8) return TUPLE_TRUNCATED;
      t.type = buf[o]!;
      t.code = buf[o + 1]!;
      t.ports = packIcmp(get16(buf, o + 4), t.type, t.code);
      return TUPLE_OK;
    default:
      t.ports = 0;
      return TUPLE_OK;
  }
}

/**
 * Hash of a tuple (murmur3-style mixing of the four words). The kernel uses siphash with a boot-time random key,
 * so no model can reproduce its bucket numbers; the seed here plays that key's part.
 */
export function tupleHash(src: number, dst: number, ports: number, proto: number, seed: number): number {
  let h = seed ^ proto;
  h = Math.imul(h ^ src, 0xcc9e2d51);
  h = (h << 15) | (h >>> 17);
  h = Math.imul(h ^ dst, 0x1b873593);
  h = (h << 13) | (h >>> 19);
  h = Math.imul(h ^ ports, 0xcc9e2d51);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** kernel reciprocal_scale(): map a 32-bit hash onto [0, n) without a division. */
export function reciprocalScale(h: number, n: number): number {
  return Math.floor((h >>> 0) * n / 4294967296);
}

export function protoName(proto: number): string {
  switch (proto) {
    case IPPROTO_TCP:
      return "tcp";
    case IPPROTO_UDP:
      return "udp";
    case IPPROTO_ICMP:
      return "icmp";
    case 132:
      return "sctp";
    case 47:
      return "gre";
    case 136:
      return "udplite";
    case 33:
      return "dccp";
    default:
      return "unknown";
  }
}
