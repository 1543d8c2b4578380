// ICMP the kernel originates (net/ipv4/icmp.c): errors (destination unreachable, time exceeded, fragmentation
// needed) quoting the offending datagram, and echo replies. Errors are never sent about ICMP errors, non-first
// fragments, or packets not addressed to one host. Rate limiting (icmp_ratelimit, icmp_msgs_per_sec) is not
// modelled: every error is sent.
import { get16, get32 } from "../packet/checksum.js";
import { IPPROTO_ICMP, PACKET_HOST, RTN_LOCAL, RTN_UNICAST } from "./constants.js";
import type { NetDevice } from "./device.js";
import { ICMP_HLEN, IPTOS_PREC_INTERNETCONTROL, IPV4_HLEN, writeIcmp, writeIpv4 } from "./emit.js";
import type { NetNamespace } from "./netns.js";
import { ipLocalOut } from "./output.js";
import type { Pkt } from "./pkt.js";
import { Ev } from "./trace.js";

/** Linux quotes as much of the offending datagram as fits a 576-byte error (more than RFC 792's header + 64 bits). */
export const ICMP_ERROR_MAX = 576;
export const IP_DEFAULT_TTL = 64;

function isIcmpError(type: number): boolean {
  return type === 3 || type === 4 || type === 5 || type === 11 || type === 12;
}

/**
 * icmp_send(skb_in, type, code, info). The source is the offending packet's destination when that is one of
 * ours; otherwise the address routing picks toward the offender (the router's address on the way back).
 * Returns the new packet's id, or 0 when no error is sent.
 */
export function icmpSend(ns: NetNamespace, pkt: Pkt, type: number, code: number, info: number, _inDev: NetDevice | null): number {
  const w = ns.world;
  const buf = pkt.buf;
  const l3 = pkt.off + 14;
  const ihl = (buf[l3]! & 15) * 4;
  const osaddr = get32(buf, l3 + 12);
  const odaddr = get32(buf, l3 + 16);
  const proto = buf[l3 + 9]!;
  if (pkt.pktType !== PACKET_HOST && pkt.iif !== 0) return 0;
  if ((get16(buf, l3 + 6) & 0x1fff) !== 0) return 0;
  if (osaddr === 0 || osaddr === 0xffffffff || (osaddr >>> 28) >= 0xe) return 0;
  if (proto === IPPROTO_ICMP && isIcmpError(buf[l3 + ihl]!)) return 0;
  const r = ns.routeLookup(osaddr, 0, null, 0);
  if (r === null || (r.type !== RTN_UNICAST && r.type !== RTN_LOCAL) || (r.type === RTN_UNICAST && r.dev === null)) return 0;
  const src = ns.isLocalAddr(odaddr) ? odaddr : ns.routeSrc(r, osaddr);
  const quoted = Math.min(get16(buf, l3 + 2), ICMP_ERROR_MAX - IPV4_HLEN - ICMP_HLEN);
  const e = w.alloc(pkt.id);
  e.tag = pkt.tag;
  const el3 = e.off + 14;
  e.buf.set(buf.subarray(l3, l3 + quoted), el3 + IPV4_HLEN + ICMP_HLEN);
  writeIcmp(e.buf, el3 + IPV4_HLEN, type, code, info & 0xffff, quoted);
  const tos = (buf[l3 + 1]! & 0x1e) | IPTOS_PREC_INTERNETCONTROL;
  writeIpv4(e.buf, el3, tos, IPV4_HLEN + ICMP_HLEN + quoted, ns.ipId++, false, IP_DEFAULT_TTL, IPPROTO_ICMP, src, osaddr);
  e.len = 14 + IPV4_HLEN + ICMP_HLEN + quoted;
  w.trace.record(pkt.id, Ev.ICMP_SENT, ns.id, 0, (type << 8) | code, e.id);
  w.trace.record(e.id, Ev.LOCAL_OUT, ns.id, 0, IPPROTO_ICMP, pkt.id);
  ipLocalOut(ns, e, r);
  return e.id;
}

/** icmp_echo -> icmp_reply: same id, sequence and data, from the address the request was sent to. */
export function icmpEchoReply(ns: NetNamespace, pkt: Pkt): number {
  const w = ns.world;
  const buf = pkt.buf;
  const l3 = pkt.off + 14;
  const ihl = (buf[l3]! & 15) * 4;
  const totLen = get16(buf, l3 + 2);
  const saddr = get32(buf, l3 + 12);
  const daddr = get32(buf, l3 + 16);
  const r = ns.routeLookup(saddr, daddr, null, 0);
  if (r === null || (r.type !== RTN_UNICAST && r.type !== RTN_LOCAL)) return 0;
  const src = ns.isLocalAddr(daddr) ? daddr : ns.routeSrc(r, saddr);
  const dataLen = totLen - ihl - ICMP_HLEN;
  const e = w.alloc(pkt.id);
  e.tag = pkt.tag;
  const el3 = e.off + 14;
  e.buf.set(buf.subarray(l3 + ihl + ICMP_HLEN, l3 + totLen), el3 + IPV4_HLEN + ICMP_HLEN);
  writeIcmp(e.buf, el3 + IPV4_HLEN, 0, 0, get32(buf, l3 + ihl + 4), dataLen);
  writeIpv4(e.buf, el3, buf[l3 + 1]!, IPV4_HLEN + ICMP_HLEN + dataLen, ns.ipId++, false, IP_DEFAULT_TTL, IPPROTO_ICMP, src, saddr);
  e.len = 14 + IPV4_HLEN + ICMP_HLEN + dataLen;
  w.trace.record(pkt.id, Ev.ICMP_SENT, ns.id, 0, 0, e.id);
  w.trace.record(e.id, Ev.LOCAL_OUT, ns.id, 0, IPPROTO_ICMP, pkt.id);
  ipLocalOut(ns, e, r);
  return e.id;
}
