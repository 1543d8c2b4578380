// Plain functions for the hottest path, where even a view's bind is overhead: offsets are fixed by the caller
// (ETH_HLEN for an untagged frame, or what `ipv4FrameL3` returned) and nothing is validated except by
// `ipv4FrameL3`, which checks a frame once without throwing.
import { ETH_P_8021AD, ETH_P_8021Q, ETH_P_IP } from "./constants.js";

/**
 * The L3 offset of a valid IPv4 datagram in the Ethernet frame at `off` (untagged or up to two VLAN tags), or -1
 * if it is not IPv4 or fails ip_rcv_core()'s checks (version, ihl >= 5, ihl*4 <= tot_len <= bytes present).
 */
export function ipv4FrameL3(buf: Uint8Array, off: number, len: number): number {
  const end = off + len;
  if (len < 34 || end > buf.length) return -1;
  let t = off + 12;
  let type = (buf[t]! << 8) | buf[t + 1]!;
  for (let tags = 0; (type === ETH_P_8021Q || type === ETH_P_8021AD) && tags < 2; tags++) {
    t += 4;
    if (t + 2 > end) return -1;
    type = (buf[t]! << 8) | buf[t + 1]!;
  }
  if (type !== ETH_P_IP) return -1;
  const l3 = t + 2;
  return ipv4Valid(buf, l3, end - l3) ? l3 : -1;
}

/** ip_rcv_core()'s header checks on the `len` bytes at `l3`, without throwing. */
export function ipv4Valid(buf: Uint8Array, l3: number, len: number): boolean {
  if (len < 20 || l3 + len > buf.length) return false;
  const vihl = buf[l3]!;
  const hl = (vihl & 15) << 2;
  if (vihl >>> 4 !== 4 || hl < 20) return false;
  const tot = (buf[l3 + 2]! << 8) | buf[l3 + 3]!;
  return tot >= hl && tot <= len;
}

/** L4 offset of the IPv4 datagram at `l3` (ihl * 4 past it). */
export function ipv4L4(buf: Uint8Array, l3: number): number {
  return l3 + ((buf[l3]! & 15) << 2);
}
export function ipv4Proto(buf: Uint8Array, l3: number): number {
  return buf[l3 + 9]!;
}
export function ipv4Saddr(buf: Uint8Array, l3: number): number {
  return ((buf[l3 + 12]! << 24) | (buf[l3 + 13]! << 16) | (buf[l3 + 14]! << 8) | buf[l3 + 15]!) >>> 0;
}
export function ipv4Daddr(buf: Uint8Array, l3: number): number {
  return ((buf[l3 + 16]! << 24) | (buf[l3 + 17]! << 16) | (buf[l3 + 18]! << 8) | buf[l3 + 19]!) >>> 0;
}
/** TCP/UDP/SCTP source port at L4 offset `l4`. */
export function l4Sport(buf: Uint8Array, l4: number): number {
  return (buf[l4]! << 8) | buf[l4 + 1]!;
}
export function l4Dport(buf: Uint8Array, l4: number): number {
  return (buf[l4 + 2]! << 8) | buf[l4 + 3]!;
}
/** Raw writes (no checksum update: use rewrite.ts for that). */
export function setL4Sport(buf: Uint8Array, l4: number, port: number): void {
  buf[l4] = port >>> 8;
  buf[l4 + 1] = port & 255;
}
export function setL4Dport(buf: Uint8Array, l4: number, port: number): void {
  buf[l4 + 2] = port >>> 8;
  buf[l4 + 3] = port & 255;
}
