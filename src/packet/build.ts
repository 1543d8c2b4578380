// Builders for tests and workloads: Ethernet frames with correct lengths and checksums. Each `buildX(opts)`
// allocates exactly one Uint8Array; each `writeX(buf, off, opts)` writes into the caller's buffer and returns the
// frame length, allocating nothing when addresses are numbers and TCP options are pre-encoded bytes.
import { parseIpv4, parseMac48, setMac48 } from "./addr.js";
import { ARP_LEN, writeArp } from "./arp.js";
import { csumFinish, csumPartial, get32, l4Checksum, set16, set32, udpChecksumValue } from "./checksum.js";
import {
  ARPOP_REQUEST,
  ETH_HLEN,
  ETH_P_8021Q,
  ETH_P_ARP,
  ETH_P_IP,
  IANA_VXLAN_UDP_PORT,
  ICMP_ECHO,
  ICMP_ECHOREPLY,
  IP_DF,
  IPPROTO_ICMP,
  IPPROTO_TCP,
  IPPROTO_UDP,
  VLAN_HLEN,
} from "./constants.js";
import { PacketError } from "./error.js";
import { EthernetView } from "./ethernet.js";
import { Ipv4View, writeIpv4HeaderRaw } from "./ipv4.js";
import { jhash2 } from "./jhash.js";
import { encodeTcpOptions, type TcpOption } from "./tcp-options.js";
import { writeTcpHeaderRaw } from "./tcp.js";
import { writeUdpHeader } from "./udp.js";
import { writeVxlanHeader } from "./vxlan.js";

/** An IPv4 address as text ("10.0.0.1") or as the unsigned 32-bit number. */
export type IpLike = string | number;
/** A MAC as text ("02:00:00:00:00:01") or as the 48-bit number. */
export type MacLike = string | number;

export const DEFAULT_SRC_MAC = 0x020000000001;
export const DEFAULT_DST_MAC = 0x020000000002;
const EMPTY = new Uint8Array(0);

export interface L2Opts {
  srcMac?: MacLike;
  dstMac?: MacLike;
  /** Add one 802.1Q tag with this VLAN id. */
  vlan?: number;
}

export interface Ipv4Opts extends L2Opts {
  src: IpLike;
  dst: IpLike;
  ttl?: number; // default 64 (net.ipv4.ip_default_ttl)
  id?: number; // default 0
  tos?: number; // default 0
  df?: boolean; // default false
}

export interface TcpOpts extends Ipv4Opts {
  sport: number;
  dport: number;
  /** TCPHDR_* bits. */
  flags: number;
  seq?: number;
  ack?: number;
  window?: number; // default 65535
  urgent?: number;
  /** Options as objects, or already encoded (padded to 4 bytes) to avoid allocating. */
  options?: readonly TcpOption[] | Uint8Array;
  payload?: Uint8Array;
}

export interface UdpOpts extends Ipv4Opts {
  sport: number;
  dport: number;
  payload?: Uint8Array;
  /** Compute the UDP checksum (default true); false sends 0, "no checksum". */
  udpCsum?: boolean;
}

export interface IcmpEchoOpts extends Omit<Ipv4Opts, "id"> {
  /** The IP header's id (default 0); `id` here is the echo identifier. */
  ipId?: number;
  /** Echo identifier (conntrack's ICMP "port"). */
  id: number;
  seq: number;
  /** Echo reply (type 0) instead of request (type 8). */
  reply?: boolean;
  payload?: Uint8Array;
}

const ip = (a: IpLike) => (typeof a === "number" ? a >>> 0 : parseIpv4(a));
const mac = (m: MacLike | undefined, dflt: number) => (m === undefined ? dflt : typeof m === "number" ? m : parseMac48(m));

function l2Len(o: L2Opts): number {
  return ETH_HLEN + (o.vlan !== undefined ? VLAN_HLEN : 0);
}

function writeL2(buf: Uint8Array, off: number, o: L2Opts, type: number): number {
  setMac48(buf, off, mac(o.dstMac, DEFAULT_DST_MAC));
  setMac48(buf, off + 6, mac(o.srcMac, DEFAULT_SRC_MAC));
  let q = off + 12;
  if (o.vlan !== undefined) {
    set16(buf, q, ETH_P_8021Q);
    set16(buf, q + 2, o.vlan & 0xfff);
    q += VLAN_HLEN;
  }
  set16(buf, q, type);
  return q + 2;
}

function writeIp(buf: Uint8Array, off: number, o: Omit<Ipv4Opts, "id">, proto: number, l4len: number, src: number, dst: number, ipId: number): number {
  const total = 20 + l4len;
  if (total > 0xffff) throw new PacketError("malformed", "ipv4", off, `total length ${total} > 65535`);
  return writeIpv4HeaderRaw(buf, off, 0, o.tos ?? 0, total, ipId, o.df ? IP_DF : 0, o.ttl ?? 64, proto, src, dst);
}

function tcpOptionBytes(o: TcpOpts): Uint8Array | undefined {
  if (!o.options) return undefined;
  if (o.options instanceof Uint8Array) return o.options;
  return o.options.length > 0 ? encodeTcpOptions(o.options) : undefined;
}

// ---- TCP ----
export function tcpFrameLen(o: TcpOpts): number {
  const opts = tcpOptionBytes(o);
  return l2Len(o) + 20 + 20 + (opts ? opts.length : 0) + (o.payload ? o.payload.length : 0);
}

export function writeTcp(buf: Uint8Array, off: number, o: TcpOpts): number {
  const opts = tcpOptionBytes(o);
  const payload = o.payload ?? EMPTY;
  const l4len = 20 + (opts ? opts.length : 0) + payload.length;
  const src = ip(o.src);
  const dst = ip(o.dst);
  const l3 = writeL2(buf, off, o, ETH_P_IP);
  const l4 = writeIp(buf, l3, o, IPPROTO_TCP, l4len, src, dst, o.id ?? 0);
  const data = writeTcpHeaderRaw(buf, l4, o.sport, o.dport, o.seq ?? 0, o.ack ?? 0, o.flags, o.window ?? 65535, o.urgent ?? 0, opts);
  buf.set(payload, data);
  set16(buf, l4 + 16, l4Checksum(buf, l4, l4len, 16, src, dst, IPPROTO_TCP));
  return l4 + l4len - off;
}

export function buildTcp(o: TcpOpts): Uint8Array {
  const out = new Uint8Array(tcpFrameLen(o));
  writeTcp(out, 0, o);
  return out;
}

// ---- UDP ----
export function udpFrameLen(o: UdpOpts): number {
  return l2Len(o) + 28 + (o.payload ? o.payload.length : 0);
}

export function writeUdp(buf: Uint8Array, off: number, o: UdpOpts): number {
  const payload = o.payload ?? EMPTY;
  const l4len = 8 + payload.length;
  const src = ip(o.src);
  const dst = ip(o.dst);
  const l3 = writeL2(buf, off, o, ETH_P_IP);
  const l4 = writeIp(buf, l3, o, IPPROTO_UDP, l4len, src, dst, o.id ?? 0);
  buf.set(payload, writeUdpHeader(buf, l4, o.sport, o.dport, l4len));
  if (o.udpCsum !== false) set16(buf, l4 + 6, udpChecksumValue(l4Checksum(buf, l4, l4len, 6, src, dst, IPPROTO_UDP)));
  return l4 + l4len - off;
}

export function buildUdp(o: UdpOpts): Uint8Array {
  const out = new Uint8Array(udpFrameLen(o));
  writeUdp(out, 0, o);
  return out;
}

// ---- ICMP ----
function writeIcmp(buf: Uint8Array, off: number, o: Omit<Ipv4Opts, "id">, ipId: number, type: number, code: number, rest: number, data: Uint8Array, dataOff: number, dataLen: number): number {
  const l4len = 8 + dataLen;
  const l3 = writeL2(buf, off, o, ETH_P_IP);
  const l4 = writeIp(buf, l3, o, IPPROTO_ICMP, l4len, ip(o.src), ip(o.dst), ipId);
  buf[l4] = type;
  buf[l4 + 1] = code;
  set16(buf, l4 + 2, 0);
  set32(buf, l4 + 4, rest);
  buf.set(data.subarray(dataOff, dataOff + dataLen), l4 + 8);
  set16(buf, l4 + 2, csumFinish(csumPartial(buf, l4, l4len)));
  return l4 + l4len - off;
}

export function icmpEchoFrameLen(o: IcmpEchoOpts): number {
  return l2Len(o) + 28 + (o.payload ? o.payload.length : 0);
}

export function writeIcmpEcho(buf: Uint8Array, off: number, o: IcmpEchoOpts): number {
  const payload = o.payload ?? EMPTY;
  const rest = (((o.id & 0xffff) << 16) | (o.seq & 0xffff)) >>> 0;
  return writeIcmp(buf, off, o, o.ipId ?? 0, o.reply ? ICMP_ECHOREPLY : ICMP_ECHO, 0, rest, payload, 0, payload.length);
}

export function buildIcmpEcho(o: IcmpEchoOpts): Uint8Array {
  const out = new Uint8Array(icmpEchoFrameLen(o));
  writeIcmpEcho(out, 0, o);
  return out;
}

export interface IcmpErrorOpts extends Partial<Ipv4Opts> {
  /** Bytes 4..8 (e.g. next-hop MTU for ICMP_FRAG_NEEDED: `rest: mtu`). Default 0. */
  rest?: number;
  /** Bytes of the offending datagram to quote; default its IP header + 8 (RFC 792). Capped at what exists. */
  quoteLen?: number;
  /** The offending bytes are an IPv4 datagram, not an Ethernet frame. */
  offendingIsIp?: boolean;
}

/**
 * An ICMP error about `offending` (an Ethernet frame unless `offendingIsIp`). Defaults as a host answering:
 * source = the offending destination, destination = its source, MACs swapped, TOS 0xc0 (icmp_send() uses
 * IPTOS_PREC_INTERNETCONTROL for errors), TTL 64.
 */
export function buildIcmpError(type: number, code: number, offending: Uint8Array, o: IcmpErrorOpts = {}): Uint8Array {
  let l3 = 0;
  let srcMac = DEFAULT_DST_MAC;
  let dstMac = DEFAULT_SRC_MAC;
  if (!o.offendingIsIp) {
    const eth = new EthernetView().bind(offending);
    l3 = eth.payloadOff;
    srcMac = eth.dst;
    dstMac = eth.src;
  }
  const inner = new Ipv4View().bindQuoted(offending, l3, offending.length - l3, "offending ipv4");
  const avail = Math.min(offending.length - l3, inner.totalLength);
  const quote = Math.min(o.quoteLen ?? inner.headerLen + 8, avail);
  const full: Ipv4Opts = {
    srcMac: o.srcMac ?? srcMac,
    dstMac: o.dstMac ?? dstMac,
    src: o.src ?? inner.dst,
    dst: o.dst ?? inner.src,
    ttl: o.ttl ?? 64,
    id: o.id ?? 0,
    tos: o.tos ?? 0xc0,
    df: o.df ?? false,
  };
  if (o.vlan !== undefined) full.vlan = o.vlan;
  const out = new Uint8Array(l2Len(full) + 28 + quote);
  writeIcmp(out, 0, full, full.id ?? 0, type, code, o.rest ?? 0, offending, l3, quote);
  return out;
}

// ---- ARP ----
export interface ArpOpts {
  /** ARPOP_REQUEST (default) or ARPOP_REPLY. */
  op?: number;
  srcMac: MacLike;
  srcIp: IpLike;
  /** Target hardware address; default 00:00:00:00:00:00 for a request. */
  dstMac?: MacLike;
  dstIp: IpLike;
  /** Ethernet destination; default broadcast for a request, dstMac for a reply. */
  ethDst?: MacLike;
  vlan?: number;
}

export function writeArpFrame(buf: Uint8Array, off: number, o: ArpOpts): number {
  const op = o.op ?? ARPOP_REQUEST;
  const sha = mac(o.srcMac, 0);
  const tha = mac(o.dstMac, 0);
  const ethDst = o.ethDst !== undefined ? mac(o.ethDst, 0) : op === ARPOP_REQUEST ? 0xffffffffffff : tha;
  const l2: L2Opts = { srcMac: sha, dstMac: ethDst };
  if (o.vlan !== undefined) l2.vlan = o.vlan;
  const l3 = writeL2(buf, off, l2, ETH_P_ARP);
  return writeArp(buf, l3, op, sha, ip(o.srcIp), tha, ip(o.dstIp)) - off;
}

export function buildArp(o: ArpOpts): Uint8Array {
  const out = new Uint8Array(l2Len(o) + ARP_LEN);
  writeArpFrame(out, 0, o);
  return out;
}

// ---- VXLAN ----
export interface VxlanOuterOpts extends Ipv4Opts {
  /** Default: udp_flow_src_port()-style hash of the inner frame into 32768..60999. */
  sport?: number;
  dport?: number; // default 4789
  /** The Linux vxlan device sends IPv4 UDP checksum 0 unless `udpcsum` is set (default false). */
  udpCsum?: boolean;
}

/** The source port the vxlan driver would pick: a flow hash scaled into the ephemeral range (udp_flow_src_port). */
export function vxlanSourcePort(inner: Uint8Array): number {
  // Hash the inner Ethernet + IPv4 headers (addresses and, for an untagged frame, the ports) as 32-bit words.
  const n = Math.min(inner.length, 40) >>> 2;
  const words = new Uint32Array(n);
  for (let w = 0; w < n; w++) words[w] = get32(inner, w * 4);
  const h = jhash2(words, 0, n, 0);
  return 32768 + Math.floor((h * (61000 - 32768)) / 0x100000000);
}

export function vxlanFrameLen(o: VxlanOuterOpts, inner: Uint8Array): number {
  return l2Len(o) + 20 + 8 + 8 + inner.length;
}

export function writeVxlan(buf: Uint8Array, off: number, o: VxlanOuterOpts, vni: number, inner: Uint8Array): number {
  const l4len = 16 + inner.length;
  const src = ip(o.src);
  const dst = ip(o.dst);
  const l3 = writeL2(buf, off, o, ETH_P_IP);
  const l4 = writeIp(buf, l3, o, IPPROTO_UDP, l4len, src, dst, o.id ?? 0);
  const v = writeUdpHeader(buf, l4, o.sport ?? vxlanSourcePort(inner), o.dport ?? IANA_VXLAN_UDP_PORT, l4len);
  buf.set(inner, writeVxlanHeader(buf, v, vni));
  if (o.udpCsum) set16(buf, l4 + 6, udpChecksumValue(l4Checksum(buf, l4, l4len, 6, src, dst, IPPROTO_UDP)));
  return l4 + l4len - off;
}

/** Encapsulate `inner` (an Ethernet frame) in outer Ethernet/IPv4/UDP/VXLAN with VNI `vni`. */
export function buildVxlan(o: VxlanOuterOpts, vni: number, inner: Uint8Array): Uint8Array {
  const out = new Uint8Array(vxlanFrameLen(o, inner));
  writeVxlan(out, 0, o, vni, inner);
  return out;
}
