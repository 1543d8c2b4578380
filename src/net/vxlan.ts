// VXLAN devices (drivers/net/vxlan/, RFC 7348): an L2 device whose frames travel inside UDP between VTEPs.
// Transmit looks the inner destination MAC up in the device's FDB (an all-zeros entry is the default list used
// for broadcast and unknown unicast, as `bridge fdb append 00:00:00:00:00:00 dst VTEP` makes), prepends outer
// Ethernet 14 + IPv4 20 + UDP 8 + VXLAN 8 = 50 bytes and sends the result as a locally generated packet of the
// device's namespace (OUTPUT, routing, POSTROUTING, ARP, the underlay device). The outer UDP source port is a
// hash of the inner flow spread over the local port range (udp_flow_src_port), so one flow keeps one port and
// ECMP spreads flows; the outer UDP checksum is computed (`udpcsum`, this kernel's default) or 0 with
// `noudpcsum`. Receive is a kernel UDP socket on the
// destination port: match the VNI, learn the inner source MAC (unless `nolearning`), strip, and receive the
// inner frame on the VXLAN device.
import { get16, get32 } from "../packet/checksum.js";
import { EADDRINUSE, ETH_P_IP, IANA_VXLAN_UDP_PORT, IPPROTO_UDP, LinkKind, RTN_LOCAL, RTN_UNICAST, VXLAN_HEADROOM } from "./constants.js";
import { NetDevice } from "./device.js";
import { MacTable } from "./mactable.js";
import { getMac, writeIpv4, writeUdp } from "./emit.js";
import { NetError } from "./error.js";
import { IP_DEFAULT_TTL } from "./icmp.js";
import type { NetNamespace } from "./netns.js";
import { ipLocalOut } from "./output.js";
import type { Pkt } from "./pkt.js";
import type { Socket } from "./sockets.js";
import { Drop, Ev } from "./trace.js";

/** ip_local_port_range defaults, the range udp_flow_src_port uses when the device sets none. */
export const PORT_RANGE_MIN = 32768;
export const PORT_RANGE_MAX = 60999;

export interface VxlanConfig {
  vni: number;
  /** `local`: source VTEP address; 0 = chosen by the route to each remote. */
  local?: number;
  /** `dev`: the underlay device (for printing and the default source). */
  dev?: NetDevice | null;
  /** `dstport` (4789 IANA; Flannel's default is 8472, the kernel's historical one). */
  dstport?: number;
  /** `nolearning` = false. */
  learning?: boolean;
  /** `udpcsum` / `noudpcsum`: whether the outer UDP checksum is computed. The kernel tested here (6.x) computes it
   * by default; RFC 7348 allows 0, which `noudpcsum` sends. */
  udpCsum?: boolean;
  mtu?: number;
}

export interface VxlanFdbEntry {
  mac: number;
  dst: number;
  /** Added by `bridge fdb add|append` (permanent) vs learned from received packets. */
  permanent: boolean;
  updated: number;
}

export class VxlanDevice extends NetDevice {
  readonly vni: number;
  readonly local: number;
  readonly underlay: NetDevice | null;
  readonly dstport: number;
  remoteLearning: boolean;
  udpCsum: boolean;
  /** Inner MAC -> remote VTEPs (several for the all-zeros default entry). */
  readonly fdb = new MacTable<VxlanFdbEntry[]>();
  private readonly sock: Socket;

  constructor(ns: NetNamespace, name: string, mac: number, cfg: VxlanConfig) {
    const underMtu = cfg.dev?.mtu ?? 1500;
    super(ns, name, LinkKind.VXLAN, mac, cfg.mtu ?? underMtu - VXLAN_HEADROOM);
    this.vni = cfg.vni;
    this.local = cfg.local ?? 0;
    this.underlay = cfg.dev ?? null;
    this.dstport = cfg.dstport ?? IANA_VXLAN_UDP_PORT;
    this.remoteLearning = cfg.learning ?? true;
    this.udpCsum = cfg.udpCsum ?? true;
    this.sock = vxlanSocket(ns, this.dstport);
    const devs = vxlanDevs.get(this.sock)!;
    if (devs.has(this.vni)) throw new NetError(`A VXLAN device with the specified VNI already exists`, `${ns.name}/${name}`, 17);
    devs.set(this.vni, this);
  }

  /** bridge fdb add|append MAC dev DEV dst IP (append adds another destination for the same MAC). */
  fdbAdd(mac: number, dst: number, append = false, permanent = true): void {
    const list = this.fdb.get(mac);
    const e = { mac, dst, permanent, updated: this.ns.world.now };
    if (list === undefined || !append) this.fdb.set(mac, [e]);
    else if (!list.some((x) => x.dst === dst)) list.push(e);
  }

  fdbDel(mac: number, dst?: number): void {
    const list = this.fdb.get(mac);
    if (list === undefined) return;
    const rest = dst === undefined ? [] : list.filter((e) => e.dst !== dst);
    if (rest.length === 0) this.fdb.delete(mac);
    else this.fdb.set(mac, rest);
  }

  /** vxlan_xmit: FDB lookup on the inner destination, then one encapsulated copy per remote. */
  xmit(pkt: Pkt): void {
    const w = this.ns.world;
    const multicast = (pkt.buf[pkt.off]! & 1) !== 0;
    const list = (multicast ? undefined : this.fdb.getAt(pkt.buf, pkt.off)) ?? this.fdb.get(0);
    if (list === undefined || list.length === 0) {
      w.drop(pkt, this, Drop.VXLAN_NO_FDB);
      return;
    }
    for (let i = 0; i < list.length; i++) {
      const copy = i === list.length - 1 ? pkt : w.clone(pkt);
      this.encap(copy, list[i]!.dst);
    }
  }

  private encap(pkt: Pkt, remote: number): void {
    const ns = this.ns;
    const w = ns.world;
    const r = ns.routeLookup(remote, this.local, null, pkt.mark);
    if (r === null || (r.type !== RTN_UNICAST && r.type !== RTN_LOCAL) || (r.type === RTN_UNICAST && r.dev === null)) {
      w.drop(pkt, this, Drop.NO_ROUTE);
      return;
    }
    const src = this.local !== 0 ? this.local : ns.routeSrc(r, remote);
    const innerLen = pkt.len;
    const sport = flowSrcPort(pkt);
    pkt.off -= VXLAN_HEADROOM;
    pkt.len += VXLAN_HEADROOM;
    const buf = pkt.buf;
    const l3 = pkt.off + 14;
    const l4 = l3 + 20;
    // VXLAN header: flags I (0x08), reserved, VNI << 8.
    buf[l4 + 8] = 0x08;
    buf[l4 + 9] = 0;
    buf[l4 + 10] = 0;
    buf[l4 + 11] = 0;
    buf[l4 + 12] = (this.vni >>> 16) & 255;
    buf[l4 + 13] = (this.vni >>> 8) & 255;
    buf[l4 + 14] = this.vni & 255;
    buf[l4 + 15] = 0;
    writeUdp(buf, l4, sport, this.dstport, 8 + innerLen, src, remote, this.udpCsum);
    writeIpv4(buf, l3, 0, 20 + 8 + 8 + innerLen, ns.ipId++, false, IP_DEFAULT_TTL, IPPROTO_UDP, src, remote);
    buf[pkt.off + 12] = ETH_P_IP >>> 8;
    buf[pkt.off + 13] = ETH_P_IP & 255;
    if (pkt.encapBytes < VXLAN_HEADROOM) pkt.encapBytes = VXLAN_HEADROOM;
    // iptunnel_xmit scrubs the skb: the inner packet's conntrack reference does not follow it.
    pkt.ct = -1;
    w.trace.record(pkt.id, Ev.VXLAN_ENCAP, ns.id, this.ifindex, this.vni, remote);
    ipLocalOut(ns, pkt, r);
  }
}

/** One kernel UDP socket per (namespace, port), shared by the VXLAN devices using it (struct vxlan_sock). */
const vxlanDevs = new WeakMap<Socket, Map<number, VxlanDevice>>();
const vxlanSocks = new WeakMap<NetNamespace, Map<number, Socket>>();

function vxlanSocket(ns: NetNamespace, port: number): Socket {
  let m = vxlanSocks.get(ns);
  if (m === undefined) {
    m = new Map();
    vxlanSocks.set(ns, m);
  }
  let s = m.get(port);
  if (s !== undefined) return s;
  try {
    s = ns.sockets.bind(ns, IPPROTO_UDP, 0, port, "vxlan");
  } catch (e) {
    if (e instanceof NetError && e.errno === EADDRINUSE) throw new NetError(`UDP port ${port} is in use: ${e.message}`, `${ns.name}: vxlan`, EADDRINUSE);
    throw e;
  }
  const devs = new Map<number, VxlanDevice>();
  vxlanDevs.set(s, devs);
  s.onReceive = (pkt) => vxlanRcv(ns, devs, pkt);
  m.set(port, s);
  return s;
}

/** vxlan_rcv: find the device by VNI, learn, strip the outer headers, receive the inner frame on the device. */
function vxlanRcv(ns: NetNamespace, devs: Map<number, VxlanDevice>, pkt: Pkt): boolean {
  const w = ns.world;
  const buf = pkt.buf;
  const l3 = pkt.off + 14;
  const l4 = l3 + (buf[l3]! & 15) * 4;
  const udpLen = get16(buf, l4 + 4);
  if (udpLen < 8 + 8 + 14 || (buf[l4 + 8]! & 0x08) === 0) {
    w.drop(pkt, null, Drop.VXLAN_NO_VNI);
    return true;
  }
  const vni = (buf[l4 + 12]! << 16) | (buf[l4 + 13]! << 8) | buf[l4 + 14]!;
  const dev = devs.get(vni);
  if (dev === undefined || !dev.up) {
    w.drop(pkt, null, Drop.VXLAN_NO_VNI);
    return true;
  }
  const inner = l4 + 16;
  if (dev.remoteLearning) {
    const list = dev.fdb.getAt(buf, inner + 6);
    const saddr = get32(buf, l3 + 12);
    if (list === undefined || (!list[0]!.permanent && list[0]!.dst !== saddr)) dev.fdbAdd(getMac(buf, inner + 6), saddr, false, false);
    else if (!list[0]!.permanent) list[0]!.updated = w.now;
  }
  pkt.len = pkt.off + pkt.len - inner;
  pkt.off = inner;
  pkt.ct = -1;
  pkt.prerouted = false;
  w.trace.record(pkt.id, Ev.VXLAN_DECAP, ns.id, dev.ifindex, vni, 0);
  w.enqueueRx(dev, pkt);
  return true;
}

/**
 * udp_flow_src_port: a hash of the inner flow (addresses, protocol, ports; the Ethernet addresses when not IPv4)
 * scaled into [PORT_RANGE_MIN, PORT_RANGE_MAX). The kernel's hash is seeded at boot; the model's is fixed.
 */
export function flowSrcPort(pkt: Pkt): number {
  const buf = pkt.buf;
  const o = pkt.off;
  let h: number;
  if (((buf[o + 12]! << 8) | buf[o + 13]!) === ETH_P_IP) {
    const l3 = o + 14;
    const proto = buf[l3 + 9]!;
    const l4 = l3 + (buf[l3]! & 15) * 4;
    const ports = proto === 6 || proto === 17 ? get32(buf, l4) : 0;
    h = mix3(get32(buf, l3 + 12), get32(buf, l3 + 16), (ports ^ proto) >>> 0);
  } else {
    h = mix3(get32(buf, o), get32(buf, o + 4), get32(buf, o + 8));
  }
  return Math.floor((h * (PORT_RANGE_MAX - PORT_RANGE_MIN)) / 0x100000000) + PORT_RANGE_MIN;
}

/** jhash_3words' final mix (Bob Jenkins' lookup3), on unsigned 32-bit numbers. */
function rot(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

function mix3(a: number, b: number, c: number): number {
  a = (a + 0xdeadbeef + 12) >>> 0;
  b = (b + 0xdeadbeef + 12) >>> 0;
  c = (c + 0xdeadbeef + 12) >>> 0;
  c ^= b; c = (c - rot(b, 14)) >>> 0;
  a ^= c; a = (a - rot(c, 11)) >>> 0;
  b ^= a; b = (b - rot(a, 25)) >>> 0;
  c ^= b; c = (c - rot(b, 16)) >>> 0;
  a ^= c; a = (a - rot(c, 4)) >>> 0;
  b ^= a; b = (b - rot(a, 14)) >>> 0;
  c ^= b; c = (c - rot(b, 24)) >>> 0;
  return c >>> 0;
}

/** ip link add NAME type vxlan id VNI [local IP] [dev DEV] [dstport P] [nolearning] */
export function createVxlan(ns: NetNamespace, name: string, cfg: VxlanConfig, mac = ns.world.allocMac()): VxlanDevice {
  const dev = new VxlanDevice(ns, name, mac, cfg);
  ns.registerDevice(dev);
  return dev;
}
