// Local delivery (ip_local_deliver: INPUT, then the protocol handler) and locally generated packets (sockets
// sending: route, build, ip_local_out). Nothing listening answers as the kernel does: ICMP port unreachable for
// UDP, a RST for TCP (tcp_v4_send_reset), protocol unreachable otherwise; echo requests get echo replies.
import { csumFold, csumPartial, get16, get32, l4Checksum } from "../packet/checksum.js";
import {
  ENETUNREACH,
  ICMP_DEST_UNREACH,
  ICMP_ECHO,
  ICMP_PORT_UNREACH,
  IPPROTO_ICMP,
  IPPROTO_TCP,
  IPPROTO_UDP,
  NF_ACCEPT,
  NF_INET_LOCAL_IN,
  PACKET_HOST,
  RTN_LOCAL,
  RTN_UNICAST,
} from "./constants.js";
import type { NetDevice } from "./device.js";
import { ICMP_HLEN, IPV4_HLEN, TCP_HLEN, UDP_HLEN, writeIcmp, writeIpv4, writeTcp, writeUdp } from "./emit.js";
import { IP_DEFAULT_TTL, icmpEchoReply, icmpSend } from "./icmp.js";
import { nfHook } from "./ipv4.js";
import type { NetNamespace } from "./netns.js";
import { ipLocalOut } from "./output.js";
import type { Pkt } from "./pkt.js";
import { Drop, Ev } from "./trace.js";

const TCP_RST = 0x04;
const TCP_SYN = 0x02;
const TCP_FIN = 0x01;
const TCP_ACK = 0x10;
const ICMP_PROT_UNREACH = 2;

/**
 * ip_local_deliver -> INPUT -> ip_local_deliver_finish -> the protocol's handler. `cast` is the input route's
 * type: to a broadcast or multicast route nothing answers (icmp_echo_ignore_broadcasts=1; icmp_send and
 * tcp_v4_send_reset send nothing for them; UDP goes to the sockets or is dropped silently).
 */
export function localDeliver(ns: NetNamespace, dev: NetDevice, pkt: Pkt, cast = RTN_LOCAL): void {
  const w = ns.world;
  if (nfHook(ns, NF_INET_LOCAL_IN, pkt, dev, null) !== NF_ACCEPT) return;
  const buf = pkt.buf;
  const l3 = pkt.off + 14;
  const ihl = (buf[l3]! & 15) * 4;
  const l4 = l3 + ihl;
  const proto = buf[l3 + 9]!;
  const daddr = get32(buf, l3 + 16);
  const dport = proto === IPPROTO_TCP || proto === IPPROTO_UDP ? get16(buf, l4 + 2) : 0;
  w.trace.record(pkt.id, Ev.LOCAL_DELIVER, ns.id, dev.ifindex, proto, dport);
  if (!l4ChecksumOk(buf, l3, ihl, proto)) {
    w.drop(pkt, dev, Drop.BAD_CSUM);
    return;
  }
  if (proto === IPPROTO_ICMP) {
    const sock = ns.sockets.lookup(IPPROTO_ICMP, daddr, 0);
    if (sock !== null) deliverTo(ns, sock, pkt, 0);
    if (buf[l4] === ICMP_ECHO && cast === RTN_LOCAL) icmpEchoReply(ns, pkt);
    if (sock === null || !sockKeeps) w.free(pkt);
    sockKeeps = false;
    return;
  }
  if (proto !== IPPROTO_UDP && proto !== IPPROTO_TCP) {
    if (cast === RTN_LOCAL) icmpSend(ns, pkt, ICMP_DEST_UNREACH, ICMP_PROT_UNREACH, 0, dev);
    w.drop(pkt, dev, Drop.NO_SOCKET);
    return;
  }
  const sock = ns.sockets.lookup(proto, daddr, dport);
  if (sock !== null) {
    deliverTo(ns, sock, pkt, get16(buf, l4));
    if (!sockKeeps) w.free(pkt);
    sockKeeps = false;
    return;
  }
  if (proto === IPPROTO_UDP) {
    // __udp4_lib_rcv: no socket -> port unreachable (not for broadcast).
    if (cast === RTN_LOCAL && pkt.pktType === PACKET_HOST && ns.addrType(daddr) === RTN_LOCAL) icmpSend(ns, pkt, ICMP_DEST_UNREACH, ICMP_PORT_UNREACH, 0, dev);
    w.drop(pkt, dev, Drop.NO_SOCKET);
    return;
  }
  if ((buf[l4 + 13]! & TCP_RST) === 0 && cast === RTN_LOCAL) tcpSendReset(ns, pkt);
  w.drop(pkt, dev, Drop.NO_SOCKET);
}

let sockKeeps = false;

/**
 * The receiver's checksum verification: TCP always, UDP unless the field is 0, ICMP over the whole message.
 * (Loopback traffic is CHECKSUM_UNNECESSARY in the kernel; the model's packets always carry real checksums.)
 */
function l4ChecksumOk(buf: Uint8Array, l3: number, ihl: number, proto: number): boolean {
  const l4 = l3 + ihl;
  const l4len = get16(buf, l3 + 2) - ihl;
  if (proto === IPPROTO_UDP) {
    const field = get16(buf, l4 + 6);
    if (field === 0) return true;
    const c = l4Checksum(buf, l4, l4len, 6, get32(buf, l3 + 12), get32(buf, l3 + 16), IPPROTO_UDP);
    return (c === 0 ? 0xffff : c) === field;
  }
  if (proto === IPPROTO_TCP) return l4Checksum(buf, l4, l4len, 16, get32(buf, l3 + 12), get32(buf, l3 + 16), IPPROTO_TCP) === get16(buf, l4 + 16);
  if (proto === IPPROTO_ICMP) return csumFold(csumPartial(buf, l4, l4len)) === 0xffff;
  return true;
}

function deliverTo(ns: NetNamespace, sock: import("./sockets.js").Socket, pkt: Pkt, sport: number): void {
  const l3 = pkt.off + 14;
  sock.rx++;
  sock.lastSrc = get32(pkt.buf, l3 + 12);
  sock.lastSport = sport;
  ns.world.trace.record(pkt.id, Ev.SOCKET_RX, ns.id, 0, sock.proto, sock.port);
  if (sock.onReceive !== null) sockKeeps = sock.onReceive(pkt, sock, ns) === true;
}

/**
 * tcp_v4_send_reset: to a segment with ACK, RST with seq = its ack; otherwise RST|ACK acknowledging its sequence
 * space. Sent from the control socket: DF set, TTL 64, IP id 0.
 */
export function tcpSendReset(ns: NetNamespace, pkt: Pkt): number {
  const buf = pkt.buf;
  const l3 = pkt.off + 14;
  const ihl = (buf[l3]! & 15) * 4;
  const l4 = l3 + ihl;
  const flags = buf[l4 + 13]!;
  const seq = get32(buf, l4 + 4);
  const ackIn = get32(buf, l4 + 8);
  const doff = (buf[l4 + 12]! >>> 4) * 4;
  const segLen = get16(buf, l3 + 2) - ihl - doff + (flags & TCP_SYN ? 1 : 0) + (flags & TCP_FIN ? 1 : 0);
  const rstSeq = flags & TCP_ACK ? ackIn : 0;
  const rstAck = flags & TCP_ACK ? 0 : (seq + segLen) >>> 0;
  const rstFlags = flags & TCP_ACK ? TCP_RST : TCP_RST | TCP_ACK;
  const id = sendTcp(ns, {
    src: get32(buf, l3 + 16),
    dst: get32(buf, l3 + 12),
    sport: get16(buf, l4 + 2),
    dport: get16(buf, l4),
    seq: rstSeq,
    ack: rstAck,
    flags: rstFlags,
    window: 0,
    df: true,
    ipId: 0,
    parent: pkt.id,
    tag: pkt.tag,
  });
  if (id > 0) ns.world.trace.record(pkt.id, Ev.TCP_RST, ns.id, 0, 0, id);
  return id;
}

export interface SendOpts {
  /** Source address; 0/absent = chosen by the route (prefsrc or inet_select_addr). */
  src?: number;
  dst: number;
  ttl?: number;
  tos?: number;
  /** DF bit; Linux sockets set it by default (IP_PMTUDISC_WANT). */
  df?: boolean;
  ipId?: number;
  mark?: number;
  /** Caller's tag, kept on the packet and everything derived from it. */
  tag?: number;
  parent?: number;
}

/** Route a locally generated packet to `dst` (ip_route_output_key). */
function routeOut(ns: NetNamespace, dst: number, src: number, mark: number) {
  const r = ns.routeLookup(dst, src, null, mark);
  if (r === null || (r.type !== RTN_UNICAST && r.type !== RTN_LOCAL) || (r.type === RTN_UNICAST && r.dev === null)) return null;
  return r;
}

function begin(ns: NetNamespace, o: SendOpts): { pkt: Pkt; src: number; r: NonNullable<ReturnType<typeof routeOut>> } | number {
  const r = routeOut(ns, o.dst, o.src ?? 0, o.mark ?? 0);
  if (r === null) return -ENETUNREACH;
  const src = o.src !== undefined && o.src !== 0 ? o.src : ns.isLocalAddr(o.dst) ? o.dst : ns.routeSrc(r, o.dst);
  const pkt = ns.world.alloc(o.parent ?? 0);
  pkt.mark = o.mark ?? 0;
  pkt.tag = o.tag ?? 0;
  return { pkt, src, r };
}

function finish(ns: NetNamespace, pkt: Pkt, proto: number, r: NonNullable<ReturnType<typeof routeOut>>): number {
  ns.world.trace.record(pkt.id, Ev.LOCAL_OUT, ns.id, 0, proto, 0);
  const id = pkt.id;
  ipLocalOut(ns, pkt, r);
  return id;
}

export interface UdpOpts extends SendOpts {
  sport: number;
  dport: number;
  /** Payload bytes, or a length of zero bytes. */
  payload?: Uint8Array | number;
}

/** A UDP datagram from a socket in `ns`. Returns the packet id, or -errno (ENETUNREACH when no route). */
export function sendUdp(ns: NetNamespace, o: UdpOpts): number {
  const b = begin(ns, o);
  if (typeof b === "number") return b;
  const { pkt, src, r } = b;
  const l3 = pkt.off + 14;
  const plen = writePayload(pkt, l3 + IPV4_HLEN + UDP_HLEN, o.payload);
  writeUdp(pkt.buf, l3 + IPV4_HLEN, o.sport, o.dport, plen, src, o.dst, true);
  writeIpv4(pkt.buf, l3, o.tos ?? 0, IPV4_HLEN + UDP_HLEN + plen, o.ipId ?? ns.ipId++, o.df ?? true, o.ttl ?? IP_DEFAULT_TTL, IPPROTO_UDP, src, o.dst);
  pkt.len = 14 + IPV4_HLEN + UDP_HLEN + plen;
  return finish(ns, pkt, IPPROTO_UDP, r);
}

export interface TcpOpts extends SendOpts {
  sport: number;
  dport: number;
  seq?: number;
  ack?: number;
  flags: number;
  window?: number;
  payload?: Uint8Array | number;
}

export function sendTcp(ns: NetNamespace, o: TcpOpts): number {
  const b = begin(ns, o);
  if (typeof b === "number") return b;
  const { pkt, src, r } = b;
  const l3 = pkt.off + 14;
  const plen = writePayload(pkt, l3 + IPV4_HLEN + TCP_HLEN, o.payload);
  writeTcp(pkt.buf, l3 + IPV4_HLEN, o.sport, o.dport, o.seq ?? 0, o.ack ?? 0, o.flags, o.window ?? 64240, plen, src, o.dst);
  writeIpv4(pkt.buf, l3, o.tos ?? 0, IPV4_HLEN + TCP_HLEN + plen, o.ipId ?? ns.ipId++, o.df ?? true, o.ttl ?? IP_DEFAULT_TTL, IPPROTO_TCP, src, o.dst);
  pkt.len = 14 + IPV4_HLEN + TCP_HLEN + plen;
  return finish(ns, pkt, IPPROTO_TCP, r);
}

export interface EchoOpts extends SendOpts {
  id?: number;
  seq?: number;
  payload?: Uint8Array | number;
}

/** An ICMP echo request (ping). */
export function sendIcmpEcho(ns: NetNamespace, o: EchoOpts): number {
  const b = begin(ns, o);
  if (typeof b === "number") return b;
  const { pkt, src, r } = b;
  const l3 = pkt.off + 14;
  const plen = writePayload(pkt, l3 + IPV4_HLEN + ICMP_HLEN, o.payload ?? 56);
  writeIcmp(pkt.buf, l3 + IPV4_HLEN, ICMP_ECHO, 0, (((o.id ?? 1) & 0xffff) << 16) | ((o.seq ?? 1) & 0xffff), plen);
  writeIpv4(pkt.buf, l3, o.tos ?? 0, IPV4_HLEN + ICMP_HLEN + plen, o.ipId ?? ns.ipId++, o.df ?? true, o.ttl ?? IP_DEFAULT_TTL, IPPROTO_ICMP, src, o.dst);
  pkt.len = 14 + IPV4_HLEN + ICMP_HLEN + plen;
  return finish(ns, pkt, IPPROTO_ICMP, r);
}

/**
 * Send a complete IPv4 packet (header at `bytes[0]`, checksums already valid) as locally generated by `ns`:
 * for callers that build packets with src/packet builders. Returns the packet id or -errno.
 */
export function sendIpv4(ns: NetNamespace, bytes: Uint8Array, tag = 0, mark = 0): number {
  const dst = get32(bytes, 16);
  const r = routeOut(ns, dst, get32(bytes, 12), mark);
  if (r === null) return -ENETUNREACH;
  const pkt = ns.world.alloc();
  pkt.tag = tag;
  pkt.mark = mark;
  pkt.buf.set(bytes, pkt.off + 14);
  pkt.len = 14 + bytes.length;
  return finish(ns, pkt, bytes[9]!, r);
}

function writePayload(pkt: Pkt, at: number, payload: Uint8Array | number | undefined): number {
  if (payload === undefined) return 0;
  if (typeof payload === "number") {
    pkt.buf.fill(0, at, at + payload);
    return payload;
  }
  pkt.buf.set(payload, at);
  return payload.length;
}

