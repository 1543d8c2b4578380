// Shared by the conntrack and NAT tests: packets as Ethernet frames (IPv4 at offset 14) and full checksum checks.
import { parseIpv4 } from "../../src/packet/addr.js";
import { buildIcmpEcho, buildTcp, buildUdp } from "../../src/packet/build.js";
import { get16, ipv4HeaderChecksum, l4Checksum, csumFinish, csumPartial } from "../../src/packet/checksum.js";
import { Conntrack, ctIndex } from "../../src/netfilter/conntrack.js";

export const L3 = 14;
export const ip = parseIpv4;

export const F = { FIN: 0x01, SYN: 0x02, RST: 0x04, PSH: 0x08, ACK: 0x10 } as const;

export function tcp(src: string, sport: number, dst: string, dport: number, flags: number, seq = 0, ack = 0, len = 0, window = 64240): Uint8Array {
  return buildTcp({ src, dst, sport, dport, flags, seq, ack, window, payload: new Uint8Array(len) });
}

export function udp(src: string, sport: number, dst: string, dport: number, len = 4, csum = true): Uint8Array {
  return buildUdp({ src, dst, sport, dport, payload: new Uint8Array(len).fill(7), udpCsum: csum });
}

export function ping(src: string, dst: string, id: number, reply = false, seq = 1): Uint8Array {
  return buildIcmpEcho({ src, dst, id, seq, reply, payload: new Uint8Array(8).fill(1) });
}

/** Run a packet through conntrack as a forwarded packet: in() at PREROUTING, confirm() at POSTROUTING. */
export function pass(ct: Conntrack, frame: Uint8Array): number {
  const ref = ct.in(frame, L3, frame.length - L3);
  return ct.confirm(ref);
}

/** Every checksum of the IPv4 packet at L3, recomputed from scratch: true when all stored values are right. */
export function checksumsOk(frame: Uint8Array, l3 = L3): boolean {
  const ihl = (frame[l3]! & 15) * 4;
  if (ipv4HeaderChecksum(frame, l3, ihl) !== get16(frame, l3 + 10)) return false;
  const total = get16(frame, l3 + 2);
  const proto = frame[l3 + 9]!;
  const l4 = l3 + ihl;
  const l4len = total - ihl;
  const src = (((frame[l3 + 12]! << 24) | (frame[l3 + 13]! << 16) | (frame[l3 + 14]! << 8) | frame[l3 + 15]!) >>> 0);
  const dst = (((frame[l3 + 16]! << 24) | (frame[l3 + 17]! << 16) | (frame[l3 + 18]! << 8) | frame[l3 + 19]!) >>> 0);
  if (proto === 6) return l4Checksum(frame, l4, l4len, 16, src, dst, 6) === get16(frame, l4 + 16);
  if (proto === 17) {
    const stored = get16(frame, l4 + 6);
    if (stored === 0) return true;
    const c = l4Checksum(frame, l4, l4len, 6, src, dst, 17);
    return (c === 0 ? 0xffff : c) === stored;
  }
  if (proto === 1) return csumFinish(csumPartial(frame, l4, l4len)) === 0 || csumFinish(csumPartial(frame, l4, l4len)) === 0xffff;
  return true;
}

export function entryOf(ref: number): number {
  return ctIndex(ref);
}
