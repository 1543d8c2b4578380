// Flow keys: the 5-tuple packed into numbers in a caller's Uint32Array, never strings, plus a jhash-based hash
// for hash tables (conntrack hashes its tuple with jhash2 the same way, hash_conntrack_raw()).
//
// IPv4 layout, FLOW_KEY_WORDS words from `outOff`:
//   [0] saddr   [1] daddr   [2] sport << 16 | dport   [3] family << 8 | protocol   (family = AF_INET)
// ICMP follows conntrack's ICMP tuple {id, type, code} (nf_conntrack_proto_icmp.c): word 2 = id << 16 |
// type << 8 | code. An IPv6 key can use its own wider layout (4+4 address words) and keep the family in the
// last word, so readers dispatch on it without touching the IPv4 path.
import { formatIpv4 } from "./addr.js";
import {
  AF_INET,
  ICMP_ADDRESS,
  ICMP_ADDRESSREPLY,
  ICMP_ECHO,
  ICMP_ECHOREPLY,
  ICMP_INFO_REPLY,
  ICMP_INFO_REQUEST,
  ICMP_TIMESTAMP,
  ICMP_TIMESTAMPREPLY,
  IPPROTO_ICMP,
  IPPROTO_SCTP,
  IPPROTO_TCP,
  IPPROTO_UDP,
  IP_OFFSET,
  icmpIsError,
} from "./constants.js";
import { ipv4FrameL3, ipv4Valid } from "./fast.js";
import { jhash2 } from "./jhash.js";

export const FLOW_KEY_WORDS = 4;
export const FK_SADDR = 0;
export const FK_DADDR = 1;
export const FK_PORTS = 2;
export const FK_META = 3;

/** Write an IPv4 key. For ICMP pass `sport` = id and `dport` = type << 8 | code. */
export function flowKeySet(out: Uint32Array, outOff: number, saddr: number, daddr: number, sport: number, dport: number, proto: number): void {
  out[outOff] = saddr;
  out[outOff + 1] = daddr;
  out[outOff + 2] = ((sport & 0xffff) << 16) | (dport & 0xffff);
  out[outOff + 3] = (AF_INET << 8) | proto;
}

/**
 * Key of the Ethernet frame at `off` (untagged or VLAN-tagged IPv4). Returns false, writing nothing, for
 * non-IPv4, invalid headers, non-first fragments (no ports; conntrack defragments first), TCP/UDP/SCTP headers
 * too short for the ports, and ICMP errors (they belong to the flow they quote; see flowKeyFromIcmpError).
 * Other protocols key with ports 0, as conntrack's generic tracker does.
 */
export function flowKeyFromPacket(buf: Uint8Array, off: number, out: Uint32Array, outOff: number, len = buf.length - off): boolean {
  const l3 = ipv4FrameL3(buf, off, len);
  if (l3 < 0) return false;
  return keyFromValidIpv4(buf, l3, out, outOff);
}

/** The same starting at an IPv4 header (`len` bytes at `l3`). */
export function flowKeyFromIpv4(buf: Uint8Array, l3: number, len: number, out: Uint32Array, outOff: number): boolean {
  if (!ipv4Valid(buf, l3, len)) return false;
  return keyFromValidIpv4(buf, l3, out, outOff);
}

function keyFromValidIpv4(buf: Uint8Array, l3: number, out: Uint32Array, outOff: number): boolean {
  if ((((buf[l3 + 6]! << 8) | buf[l3 + 7]!) & IP_OFFSET) !== 0) return false;
  const hl = (buf[l3]! & 15) << 2;
  const l4 = l3 + hl;
  const l4len = ((buf[l3 + 2]! << 8) | buf[l3 + 3]!) - hl;
  const proto = buf[l3 + 9]!;
  let ports = 0;
  if (proto === IPPROTO_TCP || proto === IPPROTO_UDP || proto === IPPROTO_SCTP) {
    if (l4len < 4) return false;
    ports = ((buf[l4]! << 24) | (buf[l4 + 1]! << 16) | (buf[l4 + 2]! << 8) | buf[l4 + 3]!) >>> 0;
  } else if (proto === IPPROTO_ICMP) {
    if (l4len < 8 || icmpIsError(buf[l4]!)) return false;
    ports = (((buf[l4 + 4]! << 24) | (buf[l4 + 5]! << 16) | (buf[l4]! << 8) | buf[l4 + 1]!) >>> 0);
  }
  out[outOff] = ((buf[l3 + 12]! << 24) | (buf[l3 + 13]! << 16) | (buf[l3 + 14]! << 8) | buf[l3 + 15]!) >>> 0;
  out[outOff + 1] = ((buf[l3 + 16]! << 24) | (buf[l3 + 17]! << 16) | (buf[l3 + 18]! << 8) | buf[l3 + 19]!) >>> 0;
  out[outOff + 2] = ports;
  out[outOff + 3] = (AF_INET << 8) | proto;
  return true;
}

/**
 * Key of the flow an ICMP error is about, from the IPv4 header it quotes at `innerL3` (`len` bytes), as the
 * original sender saw it (conntrack looks up this tuple's reply direction to mark the error RELATED).
 */
export function flowKeyFromQuoted(buf: Uint8Array, innerL3: number, len: number, out: Uint32Array, outOff: number): boolean {
  if (len < 28 || innerL3 + len > buf.length) return false;
  const vihl = buf[innerL3]!;
  const hl = (vihl & 15) << 2;
  if (vihl >>> 4 !== 4 || hl < 20 || hl + 8 > len) return false;
  // The quoted datagram is cut short: pretend tot_len is what is present for the key reader.
  const proto = buf[innerL3 + 9]!;
  const l4 = innerL3 + hl;
  let ports = 0;
  if (proto === IPPROTO_TCP || proto === IPPROTO_UDP || proto === IPPROTO_SCTP) {
    ports = ((buf[l4]! << 24) | (buf[l4 + 1]! << 16) | (buf[l4 + 2]! << 8) | buf[l4 + 3]!) >>> 0;
  } else if (proto === IPPROTO_ICMP) {
    ports = (((buf[l4 + 4]! << 24) | (buf[l4 + 5]! << 16) | (buf[l4]! << 8) | buf[l4 + 1]!) >>> 0);
  }
  if ((((buf[innerL3 + 6]! << 8) | buf[innerL3 + 7]!) & IP_OFFSET) !== 0) return false;
  out[outOff] = ((buf[innerL3 + 12]! << 24) | (buf[innerL3 + 13]! << 16) | (buf[innerL3 + 14]! << 8) | buf[innerL3 + 15]!) >>> 0;
  out[outOff + 1] = ((buf[innerL3 + 16]! << 24) | (buf[innerL3 + 17]! << 16) | (buf[innerL3 + 18]! << 8) | buf[innerL3 + 19]!) >>> 0;
  out[outOff + 2] = ports;
  out[outOff + 3] = (AF_INET << 8) | proto;
  return true;
}

/** invmap[] of nf_conntrack_proto_icmp.c: the reply type of each ICMP request type (and back). -1 when none. */
export function icmpInverseType(type: number): number {
  switch (type) {
    case ICMP_ECHO: return ICMP_ECHOREPLY;
    case ICMP_ECHOREPLY: return ICMP_ECHO;
    case ICMP_TIMESTAMP: return ICMP_TIMESTAMPREPLY;
    case ICMP_TIMESTAMPREPLY: return ICMP_TIMESTAMP;
    case ICMP_INFO_REQUEST: return ICMP_INFO_REPLY;
    case ICMP_INFO_REPLY: return ICMP_INFO_REQUEST;
    case ICMP_ADDRESS: return ICMP_ADDRESSREPLY;
    case ICMP_ADDRESSREPLY: return ICMP_ADDRESS;
    default: return -1;
  }
}

/**
 * The reply-direction key (nf_ct_invert_tuple): addresses and ports swapped; for ICMP the id stays and the type
 * is inverted (echo <-> echo reply). Returns false if the ICMP type has no inverse. `out` may equal `key`.
 */
export function flowKeyReverse(key: Uint32Array, off: number, out: Uint32Array, outOff: number): boolean {
  const s = key[off]!;
  const d = key[off + 1]!;
  const p = key[off + 2]!;
  const meta = key[off + 3]!;
  let ports: number;
  if ((meta & 255) === IPPROTO_ICMP) {
    const inv = icmpInverseType((p >>> 8) & 255);
    if (inv < 0) return false;
    ports = ((p & 0xffff0000) | (inv << 8) | (p & 255)) >>> 0;
  } else {
    ports = ((p << 16) | (p >>> 16)) >>> 0;
  }
  out[outOff] = d;
  out[outOff + 1] = s;
  out[outOff + 2] = ports;
  out[outOff + 3] = meta;
  return true;
}

export function flowKeyEquals(a: Uint32Array, aOff: number, b: Uint32Array, bOff: number): boolean {
  return a[aOff] === b[bOff] && a[aOff + 1] === b[bOff + 1] && a[aOff + 2] === b[bOff + 2] && a[aOff + 3] === b[bOff + 3];
}

/** jhash2 over the key's words with `seed` (conntrack: a random per-boot seed). Unsigned 32-bit. */
export function flowHash(key: Uint32Array, off: number, seed = 0): number {
  return jhash2(key, off, FLOW_KEY_WORDS, seed);
}

const PROTO_NAMES: Record<number, string> = { [IPPROTO_TCP]: "tcp", [IPPROTO_UDP]: "udp", [IPPROTO_ICMP]: "icmp", [IPPROTO_SCTP]: "sctp" };

/** For humans: "tcp 10.0.0.1:40000 -> 10.0.0.2:80", "icmp 10.0.0.1 -> 10.0.0.2 type=8 code=0 id=66". */
export function formatFlowKey(key: Uint32Array, off = 0): string {
  const proto = key[off + 3]! & 255;
  const name = PROTO_NAMES[proto] ?? `proto ${proto}`;
  const p = key[off + 2]!;
  const s = formatIpv4(key[off]!);
  const d = formatIpv4(key[off + 1]!);
  if (proto === IPPROTO_ICMP) return `${name} ${s} -> ${d} type=${(p >>> 8) & 255} code=${p & 255} id=${p >>> 16}`;
  if (proto === IPPROTO_TCP || proto === IPPROTO_UDP || proto === IPPROTO_SCTP) return `${name} ${s}:${p >>> 16} -> ${d}:${p & 0xffff}`;
  return `${name} ${s} -> ${d}`;
}
