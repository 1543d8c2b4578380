// Rewriting addresses and ports in place with both checksums kept valid incrementally (RFC 1624), as NAT does:
// the kernel's bpf_l3_csum_replace / bpf_l4_csum_replace (net/core/filter.c) and Cilium's csum.h. The packet is
// assumed already validated (a view bound it); these touch only the bytes they name and allocate nothing.
import { csumReplace16, csumReplace32, get16, set16 } from "./checksum.js";
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

/** Fold a sum below 2^20 to 16 bits (two end-around carries suffice). */
function fold20(sum: number): number {
  sum = (sum & 0xffff) + (sum >>> 16);
  return (sum & 0xffff) + (sum >>> 16);
}

/**
 * One NAT manipulation in a single pass, as nf_nat_ipv4_manip_pkt + the L4 manip do: the address at IP header
 * offset `addrAt` (12 = saddr, 16 = daddr) becomes `addr`, and when `port >= 0` the port at L4 offset `portAt`
 * (0 = source, 2 = destination) becomes `port` (for ICMP echo/echo reply: the identifier). The IP header checksum
 * and the TCP/UDP checksum (address via the pseudo-header, plus the port) are updated with one RFC 1624 sum each;
 * the result equals a full recompute. A zero UDP checksum stays zero; a UDP result of zero is sent as 0xffff.
 * Non-first fragments get the address only. Returns false when a requested port could not be written.
 */
export function natRewrite(buf: Uint8Array, l3: number, addrAt: number, addr: number, portAt: number, port: number): boolean {
  const a = l3 + addrAt;
  const oldHi = (buf[a]! << 8) | buf[a + 1]!;
  const oldLo = (buf[a + 2]! << 8) | buf[a + 3]!;
  const newHi = addr >>> 16;
  const newLo = addr & 0xffff;
  const addrDelta = (~oldHi & 0xffff) + (~oldLo & 0xffff) + newHi + newLo;
  const ipc = (~((buf[l3 + 10]! << 8) | buf[l3 + 11]!) & 0xffff) + addrDelta;
  const ipn = ~fold20(ipc) & 0xffff;
  buf[l3 + 10] = ipn >>> 8;
  buf[l3 + 11] = ipn & 255;
  buf[a] = newHi >>> 8;
  buf[a + 1] = newHi & 255;
  buf[a + 2] = newLo >>> 8;
  buf[a + 3] = newLo & 255;
  if ((((buf[l3 + 6]! << 8) | buf[l3 + 7]!) & IP_OFFSET) !== 0) return port < 0;
  const proto = buf[l3 + 9]!;
  const l4 = l3 + ((buf[l3]! & 15) << 2);
  let c: number;
  let delta: number;
  if (proto === IPPROTO_TCP || proto === IPPROTO_UDP) {
    c = proto === IPPROTO_TCP ? l4 + TCP_CSUM_OFF : l4 + UDP_CSUM_OFF;
    delta = addrDelta;
    if (port >= 0) {
      const p = l4 + portAt;
      delta += (~((buf[p]! << 8) | buf[p + 1]!) & 0xffff) + port;
      buf[p] = port >>> 8;
      buf[p + 1] = port & 255;
    }
  } else if (proto === IPPROTO_ICMP) {
    // ICMP has no pseudo-header: only an identifier change touches its checksum.
    if (port < 0) return true;
    const type = buf[l4]!;
    if (type !== ICMP_ECHO && type !== ICMP_ECHOREPLY) return false;
    c = l4 + ICMP_CSUM_OFF;
    delta = (~((buf[l4 + 4]! << 8) | buf[l4 + 5]!) & 0xffff) + port;
    buf[l4 + 4] = port >>> 8;
    buf[l4 + 5] = port & 255;
  } else {
    return port < 0;
  }
  const old = (buf[c]! << 8) | buf[c + 1]!;
  if (proto === IPPROTO_UDP && old === 0) return true; // no checksum (BPF_F_MARK_MANGLED_0)
  let n = ~fold20((~old & 0xffff) + delta) & 0xffff;
  if (n === 0 && proto === IPPROTO_UDP) n = CSUM_MANGLED_0;
  buf[c] = n >>> 8;
  buf[c + 1] = n & 255;
  return true;
}

/**
 * Rewrite only a port (0 = source, 2 = destination) or the ICMP echo identifier, with the L4 checksum fixed.
 * Returns false (nothing written) for other protocols, non-first fragments, or ICMP types without an id.
 */
function rewritePort(buf: Uint8Array, l3: number, at: number, port: number): boolean {
  if ((get16(buf, l3 + 6) & IP_OFFSET) !== 0) return false;
  const proto = buf[l3 + 9]!;
  const l4 = l3 + (buf[l3]! & 15) * 4;
  if (proto === IPPROTO_TCP || proto === IPPROTO_UDP) {
    const f = proto === IPPROTO_TCP ? l4 + TCP_CSUM_OFF : l4 + UDP_CSUM_OFF;
    l4CsumReplace(buf, f, get16(buf, l4 + at), port, 2 | (proto === IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0));
    set16(buf, l4 + at, port);
    return true;
  }
  if (proto === IPPROTO_ICMP) {
    const type = buf[l4]!;
    if (type !== ICMP_ECHO && type !== ICMP_ECHOREPLY) return false;
    l4CsumReplace(buf, l4 + ICMP_CSUM_OFF, get16(buf, l4 + 4), port, 2);
    set16(buf, l4 + 4, port);
    return true;
  }
  return false;
}

/** SNAT the source address of the IPv4 datagram at `l3`: IP header and TCP/UDP pseudo-header checksums follow. */
export function rewriteIpv4Src(buf: Uint8Array, l3: number, addr: number): void {
  natRewrite(buf, l3, 12, addr, 0, -1);
}

/** DNAT the destination address (see rewriteIpv4Src). */
export function rewriteIpv4Dst(buf: Uint8Array, l3: number, addr: number): void {
  natRewrite(buf, l3, 16, addr, 2, -1);
}

export function rewriteL4Sport(buf: Uint8Array, l3: number, port: number): boolean {
  return rewritePort(buf, l3, 0, port);
}

/** For ICMP echo both rewriteL4Sport and rewriteL4Dport change the one identifier. */
export function rewriteL4Dport(buf: Uint8Array, l3: number, port: number): boolean {
  return rewritePort(buf, l3, 2, port);
}

/** DNAT in one pass: destination address and (when port >= 0) destination port / echo id. */
export function dnat4(buf: Uint8Array, l3: number, addr: number, port: number): boolean {
  return natRewrite(buf, l3, 16, addr, 2, port);
}

/** SNAT in one pass: source address and (when port >= 0) source port / echo id. */
export function snat4(buf: Uint8Array, l3: number, addr: number, port: number): boolean {
  return natRewrite(buf, l3, 12, addr, 0, port);
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
