// The Linux bridge (net/bridge/): ports, FDB learning with ageing (300 s), flooding of broadcast and unknown
// unicast, local delivery to the bridge device (which is an interface of the namespace and usually the pods'
// gateway), hairpin mode per port, and br_netfilter: with bridge-nf-call-iptables, bridged IPv4 frames traverse
// iptables PREROUTING, FORWARD and POSTROUTING (in = out = the bridge, physdev = the ports), and a DNAT in
// PREROUTING to an address behind the bridge itself stays bridged with the new MAC ("bridged DNAT").
// Not modelled: STP (ports are always forwarding), VLAN filtering, multicast snooping, the bridge MAC following
// the smallest port MAC (the model keeps the MAC given at creation, as when udev sets a persistent one).
import { get32 } from "../packet/checksum.js";
import { ETH_P_IP, LinkKind, NF_ACCEPT, NF_INET_FORWARD, NF_INET_POST_ROUTING, NF_INET_PRE_ROUTING, NFPROTO_BRIDGE, PACKET_HOST, RTN_LOCAL, RTN_UNICAST } from "./constants.js";
import { NetDevice } from "./device.js";
import { getMac, setMac } from "./emit.js";
import { nfHook, RouteIn, routeInput, routeInputDropReason, routeInputResult } from "./ipv4.js";
import { MacTable } from "./mactable.js";
import { nudUsable } from "./neigh.js";
import type { NetNamespace } from "./netns.js";
import { neighQueueBridged } from "./output.js";
import type { Pkt } from "./pkt.js";
import { Drop, Ev } from "./trace.js";

export const BR_AGEING_TIME_S = 300;

export interface FdbEntry {
  mac: number;
  /** The port the MAC lives behind; the bridge itself for its own address. */
  port: NetDevice;
  /** Model clock of the last frame seen from the MAC. */
  updated: number;
  /** A local address (the bridge's or a port's own MAC): frames to it go up the stack; never aged. */
  isLocal: boolean;
  /** Added by `bridge fdb add ... static`: never aged or moved. */
  isStatic: boolean;
}

export class BridgeDevice extends NetDevice {
  readonly ports: NetDevice[] = [];
  readonly fdb = new MacTable<FdbEntry>();
  ageingTime = BR_AGEING_TIME_S;
  /** Scratch list reused by flood(): forwarding only queues frames, so flood() does not re-enter (except a tc
   * egress program redirecting a flooded copy back into this same bridge, which the model does not support). */
  private readonly floodTargets: NetDevice[] = [];

  constructor(ns: NetNamespace, name: string, mac: number) {
    super(ns, name, LinkKind.BRIDGE, mac, 1500);
    this.fdb.set(mac, { mac, port: this, updated: 0, isLocal: true, isStatic: false });
  }

  /** A bridge has carrier when a port does (br_port_carrier_check). */
  override get carrier(): boolean {
    return this.up && this.ports.some((p) => p.up && p.carrier);
  }

  /** ip link set PORT master BR: the port's own MAC becomes a local entry. The bridge MTU follows the smallest port. */
  addPort(dev: NetDevice): void {
    if (dev.ns !== this.ns) throw new Error(`${dev.where}: port must be in the bridge's namespace`);
    if (dev.master !== null) dev.master.removePort(dev);
    dev.master = this;
    this.ports.push(dev);
    this.fdb.set(dev.mac, { mac: dev.mac, port: dev, updated: 0, isLocal: true, isStatic: false });
    this.mtu = Math.min(...this.ports.map((p) => p.mtu));
  }

  removePort(dev: NetDevice): void {
    const i = this.ports.indexOf(dev);
    if (i < 0) return;
    this.ports.splice(i, 1);
    dev.master = null;
    for (const [mac, e] of this.fdb) if (e.port === dev) this.fdb.delete(mac);
  }

  /** br_fdb_find with ageing: an expired learned entry is removed and reported as unknown. */
  fdbLookup(mac: number): FdbEntry | undefined {
    return this.aged(this.fdb.get(mac));
  }

  /** The same for the MAC in a frame at `buf[off..off+6]` (no allocation). */
  private fdbLookupAt(buf: Uint8Array, off: number): FdbEntry | undefined {
    return this.aged(this.fdb.getAt(buf, off));
  }

  private aged(e: FdbEntry | undefined): FdbEntry | undefined {
    if (e === undefined) return undefined;
    if (!e.isLocal && !e.isStatic && this.ns.world.now - e.updated > this.ageingTime) {
      this.fdb.delete(e.mac);
      return undefined;
    }
    return e;
  }

  /** br_fdb_update: learn the source MAC on the ingress port (local and static entries never move). */
  private learn(port: NetDevice, buf: Uint8Array, off: number): void {
    const e = this.fdb.getAt(buf, off);
    const now = this.ns.world.now;
    if (e === undefined) {
      const src = getMac(buf, off);
      this.fdb.set(src, { mac: src, port, updated: now, isLocal: false, isStatic: false });
    }
    else if (!e.isLocal && !e.isStatic) {
      e.port = port;
      e.updated = now;
    }
  }

  /** `bridge fdb` entries still valid, without expiring them. */
  fdbEntries(): FdbEntry[] {
    const now = this.ns.world.now;
    return [...this.fdb.values()].filter((e) => e.isLocal || e.isStatic || now - e.updated <= this.ageingTime);
  }

  /** br_dev_xmit: the bridge device itself sends (its IP stack's output): FDB lookup or flood, no iptables. */
  xmit(pkt: Pkt): void {
    const e = (pkt.buf[pkt.off]! & 1) === 0 ? this.fdbLookupAt(pkt.buf, pkt.off) : undefined;
    if (e !== undefined && e.port !== this) {
      this.ns.world.trace.record(pkt.id, Ev.BR_FORWARD, this.ns.id, e.port.ifindex, 0, 0);
      this.ns.world.devXmit(e.port, pkt);
      return;
    }
    this.flood(pkt, null, false);
  }

  /** br_handle_frame + br_handle_frame_finish for a frame received on `port`. */
  handleFrame(port: NetDevice, pkt: Pkt): void {
    const w = this.ns.world;
    const ns = this.ns;
    if (!this.up) {
      w.drop(pkt, port, Drop.LINK_DOWN);
      return;
    }
    const buf = pkt.buf;
    if (port.learning && (buf[pkt.off + 6]! & 1) === 0) this.learn(port, buf, pkt.off + 6);
    const brnf = ns.sysctl.bridgeNfCallIptables && ((buf[pkt.off + 12]! << 8) | buf[pkt.off + 13]!) === ETH_P_IP;
    if (brnf) {
      // br_nf_pre_routing: iptables PREROUTING with in = the bridge, physdev-in = the port.
      const l3 = pkt.off + 14;
      const before = get32(buf, l3 + 16);
      if (nfHook(ns, NF_INET_PRE_ROUTING, pkt, this, null, NFPROTO_BRIDGE, port, null) !== NF_ACCEPT) return;
      pkt.prerouted = true;
      const after = get32(buf, l3 + 16);
      if (after !== before) {
        // br_nf_pre_routing_finish: DNAT happened. Routed back out of this bridge -> stays bridged with the new
        // destination's MAC; anything else goes up to the IP stack via the bridge's own MAC. The input route
        // (ip_route_input) refuses martians: freed here; with forwarding off, the output route decides.
        const v = routeInput(ns, this, get32(buf, l3 + 12), after, pkt.mark);
        const refused = routeInputDropReason(v);
        if (refused !== 0 && v !== RouteIn.FORWARDING_DISABLED) {
          w.drop(pkt, port, refused);
          return;
        }
        const r = v === RouteIn.FORWARDING_DISABLED ? ns.routeLookup(after, 0, null, pkt.mark) : routeInputResult;
        if (r !== null && r.type === RTN_UNICAST && r.dev === this) {
          pkt.prerouted = false;
          const nh = r.gw !== 0 ? r.gw : after;
          const n = ns.neigh.get(this, nh);
          if (n === undefined || !nudUsable(ns.neigh.state(n, w.now))) {
            // br_nf_pre_routing_finish_bridge -> neigh->output: wait for ARP on the bridge, keeping the frame's
            // source MAC, then continue bridging from the ingress port (neighFlush calls resumeBridged).
            pkt.brIn = port;
            neighQueueBridged(ns, this, nh, pkt);
            return;
          }
          setMac(buf, pkt.off, n.mac);
        } else if (r !== null && (r.type === RTN_UNICAST || r.type === RTN_LOCAL)) {
          setMac(buf, pkt.off, this.mac);
          pkt.pktType = PACKET_HOST;
        }
      }
    }
    this.deliver(port, pkt, brnf);
  }

  /** A bridged-DNAT frame whose new destination MAC just resolved: bridge it on from its ingress port. */
  resumeBridged(port: NetDevice, pkt: Pkt): void {
    pkt.prerouted = false;
    this.deliver(port, pkt, true);
  }

  /** br_handle_frame_finish's forwarding decision: local, known port (hairpin rule), or flood. */
  private deliver(port: NetDevice, pkt: Pkt, brnf: boolean): void {
    const w = this.ns.world;
    const buf = pkt.buf;
    if ((buf[pkt.off]! & 1) !== 0) {
      // Broadcast/multicast: every other port, and up to the bridge device.
      const up = w.clone(pkt);
      w.trace.record(pkt.id, Ev.CLONE, this.ns.id, this.ifindex, 0, up.id);
      this.flood(pkt, port, brnf);
      this.passUp(up, brnf);
      return;
    }
    const e = this.fdbLookupAt(buf, pkt.off);
    if (e === undefined) {
      this.flood(pkt, port, brnf);
      return;
    }
    if (e.isLocal) {
      this.passUp(pkt, brnf);
      return;
    }
    if (e.port === port && !port.hairpin) {
      // should_deliver: never back out of the ingress port unless hairpin mode is on.
      w.drop(pkt, port, Drop.OTHERHOST);
      return;
    }
    this.forward(e.port, pkt, port, brnf);
  }

  /** br_pass_frame_up: the frame is received by the bridge device (and its IP stack). */
  private passUp(pkt: Pkt, prerouted: boolean): void {
    pkt.prerouted = prerouted;
    this.ns.world.trace.record(pkt.id, Ev.BR_LOCAL, this.ns.id, this.ifindex, 0, 0);
    this.ns.world.netifReceive(this, pkt);
  }

  /** br_forward: br_netfilter FORWARD and POSTROUTING for IPv4, then transmit on the port. */
  private forward(to: NetDevice, pkt: Pkt, from: NetDevice | null, brnf: boolean): void {
    const w = this.ns.world;
    pkt.prerouted = false;
    w.trace.record(pkt.id, Ev.BR_FORWARD, this.ns.id, to.ifindex, from === null ? 0 : from.ifindex, 0);
    if (brnf) {
      if (nfHook(this.ns, NF_INET_FORWARD, pkt, this, this, NFPROTO_BRIDGE, from, to) !== NF_ACCEPT) return;
      if (nfHook(this.ns, NF_INET_POST_ROUTING, pkt, null, this, NFPROTO_BRIDGE, null, to) !== NF_ACCEPT) return;
    }
    w.devXmit(to, pkt);
  }

  /** br_flood: a copy to every port that may take it (not the ingress port unless hairpin). */
  private flood(pkt: Pkt, from: NetDevice | null, brnf: boolean): void {
    const w = this.ns.world;
    const targets = this.floodTargets;
    targets.length = 0;
    for (const p of this.ports) if (p.up && (p !== from || p.hairpin)) targets.push(p);
    w.trace.record(pkt.id, Ev.BR_FLOOD, this.ns.id, this.ifindex, targets.length, 0);
    if (targets.length === 0) {
      // Nowhere to flood (a single-port bridge): the frame is simply consumed.
      w.free(pkt);
      return;
    }
    for (let i = 0; i < targets.length; i++) {
      const copy = i === targets.length - 1 ? pkt : w.clone(pkt);
      if (copy !== pkt) w.trace.record(pkt.id, Ev.CLONE, this.ns.id, targets[i]!.ifindex, 0, copy.id);
      this.forward(targets[i]!, copy, from, brnf);
    }
  }
}

/** ip link add NAME type bridge */
export function createBridge(ns: NetNamespace, name: string, mac = ns.world.allocMac()): BridgeDevice {
  const br = new BridgeDevice(ns, name, mac);
  ns.registerDevice(br);
  return br;
}
