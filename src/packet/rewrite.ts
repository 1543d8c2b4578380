// Rewriting addresses and ports in place with both checksums kept valid incrementally (RFC 1624), as NAT does:
// the kernel's bpf_l3_csum_replace / bpf_l4_csum_replace (net/core/filter.c) and Cilium's csum.h. The packet is
// assumed already validated (a view bound it); these touch only the bytes they name and allocate nothing.
import { csumReplace16, csumReplace32, get16, get32, set16, set32 } from "./checksum.js";
import { ICMP_ECHO, ICMP_ECHOREPLY, IP_MF, IP_OFFSET, IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP } from "./constants.js";

/** bpf_l4_csum_replace flags (include/uapi/linux/bpf.h). The low 4 bits give the field size, 2 or 4. */
export const BPF_F_HDR_FIELD_MASK = 0xf;
export const BPF_F_PSEUDO_HDR = 1 << 4;
export const BPF_F_MARK_MANGLED_0 = 1 << 5;
/** A UDP checksum that computes to 0 is sent as all ones (include/net/checksum.h CSUM_MANGLED_0). */
export const CSUM_MANGLED_0 = 0xffff;

/** Offsets of the L4 checksum field inside the L4 header. */
export const TCP_CSUM_OFF = 16;
export const UDP_CSUM_OFF = 6;
export const ICMP_CSUM_OFF = 2;

/** bpf_l3_csum_replace(): fix the 16-bit checksum at `csumOff` for a field of `size` (2 or 4) bytes changing. */
export function l3CsumReplace(buf: Uint8Array, csumOff: number, from: number, to: number, size: number): void {
  const c = get16(buf, csumOff);
  set16(buf, csumOff, size === 4 ? csumReplace32(c, from, to) : csumReplace16(c, from, to));
}

/**
 * bpf_l4_csum_replace(): like l3CsumReplace with size in `flags & BPF_F_HDR_FIELD_MASK`. BPF_F_MARK_MANGLED_0
 * (UDP): a zero field means "no checksum" and stays zero, and a result of zero is written as CSUM_MANGLED_0.
 * BPF_F_PSEUDO_HDR marks a pseudo-header field (an address); with the checksum held complete in the packet (no
 * CHECKSUM_PARTIAL offload here) the arithmetic is the same, so it is accepted for fidelity and needs no branch.
 */
export function l4CsumReplace(buf: Uint8Array, csumOff: number, from: number, to: number, flags: number): void {
  const c = get16(buf, csumOff);
  const mangled0 = (flags & BPF_F_MARK_MANGLED_0) !== 0;
  if (mangled0 && c === 0) return;
  let n = (flags & BPF_F_HDR_FIELD_MASK) === 4 ? csumReplace32(c, from, to) : csumReplace16(c, from, to);
  if (mangled0 && n === 0) n = CSUM_MANGLED_0;
  set16(buf, csumOff, n);
}

/**
 * Where the L4 checksum of the datagram at `l3` lives and how to update it: returns the absolute offset of the
 * field (or -1 when the protocol has no pseudo-header checksum or this is a non-first fragment).
 */
function l4CsumField(buf: Uint8Array, l3: number, proto: number): number {
  if ((get16(buf, l3 + 6) & IP_OFFSET) !== 0) return -1;
  const l4 = l3 + (buf[l3]! & 15) * 4;
  if (proto === IPPROTO_TCP) return l4 + TCP_CSUM_OFF;
  if (proto === IPPROTO_UDP) return l4 + UDP_CSUM_OFF;
  return -1;
}

function rewriteAddr(buf: Uint8Array, l3: number, at: number, addr: number): void {
  const old = get32(buf, l3 + at);
  if (old === addr >>> 0) return;
  const proto = buf[l3 + 9]!;
  const f = l4CsumField(buf, l3, proto);
  if (f >= 0) l4CsumReplace(buf, f, old, addr, 4 | BPF_F_PSEUDO_HDR | (proto === IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0));
  l3CsumReplace(buf, l3 + 10, old, addr, 4);
  set32(buf, l3 + at, addr);
}

/** SNAT the source address of the IPv4 datagram at `l3`: IP header and TCP/UDP pseudo-header checksums follow. */
export function rewriteIpv4Src(buf: Uint8Array, l3: number, addr: number): void {
  rewriteAddr(buf, l3, 12, addr);
}

/** DNAT the destination address (see rewriteIpv4Src). */
export function rewriteIpv4Dst(buf: Uint8Array, l3: number, addr: number): void {
  rewriteAddr(buf, l3, 16, addr);
}

/**
 * Rewrite the TCP/UDP port at L4 offset `at` (0 = source, 2 = destination), or for ICMP echo/echo reply the
 * identifier (nf_nat_icmp_manip_pkt treats it as the port). Returns false (nothing written) for other protocols,
 * non-first fragments, or ICMP types without an identifier.
 */
function rewritePort(buf: Uint8Array, l3: number, at: number, port: number): boolean {
  if ((get16(buf, l3 + 6) & IP_OFFSET) !== 0) return false;
  const proto = buf[l3 + 9]!;
  const l4 = l3 + (buf[l3]! & 15) * 4;
  if (proto === IPPROTO_TCP || proto === IPPROTO_UDP) {
    const old = get16(buf, l4 + at);
    if (old === port) return true;
    const f = proto === IPPROTO_TCP ? l4 + TCP_CSUM_OFF : l4 + UDP_CSUM_OFF;
    l4CsumReplace(buf, f, old, port, 2 | (proto === IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0));
    set16(buf, l4 + at, port);
    return true;
  }
  if (proto === IPPROTO_ICMP) {
    const type = buf[l4]!;
    if (type !== ICMP_ECHO && type !== ICMP_ECHOREPLY) return false;
    const old = get16(buf, l4 + 4);
    l4CsumReplace(buf, l4 + ICMP_CSUM_OFF, old, port, 2);
    set16(buf, l4 + 4, port);
    return true;
  }
  return false;
}

export function rewriteL4Sport(buf: Uint8Array, l3: number, port: number): boolean {
  return rewritePort(buf, l3, 0, port);
}

/** For ICMP echo both rewriteL4Sport and rewriteL4Dport change the one identifier. */
export function rewriteL4Dport(buf: Uint8Array, l3: number, port: number): boolean {
  return rewritePort(buf, l3, 2, port);
}

/** DNAT in one call: destination address and (when port >= 0) destination port / echo id. */
export function dnat4(buf: Uint8Array, l3: number, addr: number, port: number): void {
  rewriteAddr(buf, l3, 16, addr);
  if (port >= 0) rewritePort(buf, l3, 2, port);
}

/** SNAT in one call: source address and (when port >= 0) source port / echo id. */
export function snat4(buf: Uint8Array, l3: number, addr: number, port: number): void {
  rewriteAddr(buf, l3, 12, addr);
  if (port >= 0) rewritePort(buf, l3, 0, port);
}

/** Decrement the TTL with the checksum fixed, as ip_decrease_ttl(); returns the new TTL. */
export function decreaseTtl(buf: Uint8Array, l3: number): number {
  const ttl = buf[l3 + 8]!;
  const word = (ttl << 8) | buf[l3 + 9]!;
  l3CsumReplace(buf, l3 + 10, word, (word - 0x100) & 0xffff, 2);
  buf[l3 + 8] = (ttl - 1) & 255;
  return (ttl - 1) & 255;
}

/** True when the datagram at `l3` is a fragment (MF set or non-zero offset), ip_is_fragment(). */
export function ipv4IsFragment(buf: Uint8Array, l3: number): boolean {
  return (get16(buf, l3 + 6) & (IP_MF | IP_OFFSET)) !== 0;
}
