// The stack that runs everything (gVisor's stack.Stack): namespaces, the packet pool, the model clock, the event
// trace, and the receive queue that stands in for each CPU's backlog (netif_rx). Devices hand frames to the next
// device through `enqueueRx`; `run()` drains the queue one frame at a time, so a path is a sequence of hops, not
// a deep recursion, and ARP can wait for its reply the way the kernel's neighbour queue does.
import { BPF_F_INGRESS, BPF_F_PEER, ETH_P_ARP, ETH_P_IP, LinkKind, MAC_BROADCAST, PACKET_BROADCAST, PACKET_HOST, PACKET_MULTICAST, PACKET_OTHERHOST, TC_ACT_QUEUED, TC_ACT_REDIRECT, TC_ACT_SHOT, TC_ACT_STOLEN, TC_ACT_TRAP, TC_EGRESS, TC_INGRESS } from "./constants.js";
import type { NetDevice } from "./device.js";
import { NetError } from "./error.js";
import { getMac } from "./emit.js";
import { NetNamespace } from "./netns.js";
import { Pkt, PktPool } from "./pkt.js";
import { Drop, Ev, Trace } from "./trace.js";
import { arpRcv } from "./arp.js";
import { ipRcv } from "./ipv4.js";
import { neighTimeouts } from "./output.js";
import type { VethDevice } from "./veth.js";
import type { BridgeDevice } from "./bridge.js";
import { macvlanHandleFrame } from "./macvlan.js";
import { renderRecords } from "./render.js";

/** Devices a packet may cross before the model calls it a loop (bridge loops have no TTL; STP is not modelled). */
export const HOP_LIMIT = 256;
/** Frames one run() may process before it stops with an error (a guard, far above any real path). */
export const STEP_LIMIT = 5_000_000;

export type TapFn = (dev: NetDevice, pkt: Pkt, dir: 0 | 1) => void;

export class World {
  readonly namespaces: NetNamespace[] = [];
  private readonly nsByName = new Map<string, NetNamespace>();
  readonly trace = new Trace();
  readonly pool = new PktPool();
  /** Model clock in seconds (FDB ageing, neighbour reachability). Advance with `advance()`. */
  now = 0;
  nextPktId = 1;
  /** Called for every frame a device receives (dir 0) or transmits (dir 1): pcap capture on every interface. */
  tap: TapFn | null = null;
  private qDev: NetDevice[] = [];
  private qPkt: Pkt[] = [];
  private qHead = 0;
  private macCounter = 0;
  steps = 0;

  constructor(readonly seed = 1) {}

  addNamespace(name: string): NetNamespace {
    if (this.nsByName.has(name)) throw new NetError(`namespace ${name} already exists`, `ip netns add ${name}`, 17);
    const ns = new NetNamespace(this, this.namespaces.length, name);
    this.namespaces.push(ns);
    this.nsByName.set(name, ns);
    return ns;
  }

  ns(name: string): NetNamespace {
    const ns = this.nsByName.get(name);
    if (ns === undefined) throw new NetError(`Cannot open network namespace "${name}": No such file or directory`, `ip netns exec ${name}`, 2);
    return ns;
  }

  /** A locally administered unicast MAC, deterministic from the seed (eth_random_addr's bits: 02 set, 01 clear). */
  allocMac(): number {
    this.macCounter++;
    let x = (Math.imul(this.macCounter ^ this.seed, 0x9e3779b1) >>> 0) ^ (Math.imul(this.macCounter, 0x85ebca6b) >>> 0);
    x >>>= 0;
    const hi = ((0x02 << 8) | ((this.seed * 31 + this.macCounter) & 0xff)) & 0xfeff;
    return (hi | 0x0200) * 0x100000000 + x;
  }

  advance(seconds: number): void {
    this.now += seconds;
  }

  /** A fresh packet from the pool with a new trace id. */
  alloc(parent = 0): Pkt {
    const p = this.pool.get();
    p.id = this.nextPktId++;
    p.parent = parent;
    return p;
  }

  free(pkt: Pkt): void {
    this.pool.put(pkt);
  }

  /** Copy a packet (skb_clone + unshare for the model: bytes are copied). */
  clone(pkt: Pkt): Pkt {
    const c = this.alloc(pkt.id);
    pkt.copyTo(c);
    return c;
  }

  drop(pkt: Pkt, dev: NetDevice | null, reason: number): void {
    this.trace.record(pkt.id, Ev.DROP, dev === null ? -1 : dev.ns.id, dev === null ? 0 : dev.ifindex, reason, 0);
    this.pool.put(pkt);
  }

  /** netif_rx: the frame is received by `dev` when the queue reaches it. */
  enqueueRx(dev: NetDevice, pkt: Pkt): void {
    this.qDev.push(dev);
    this.qPkt.push(pkt);
  }

  /** Process queued frames until none are left, then fail unresolved neighbours and continue. */
  run(): void {
    for (;;) {
      while (this.qHead < this.qDev.length) {
        if (++this.steps > STEP_LIMIT) throw new NetError(`more than ${STEP_LIMIT} frames in one run (a loop?)`, "world.run");
        const dev = this.qDev[this.qHead]!;
        const pkt = this.qPkt[this.qHead]!;
        this.qHead++;
        this.netifReceive(dev, pkt);
      }
      this.qDev.length = 0;
      this.qPkt.length = 0;
      this.qHead = 0;
      this.steps = 0;
      // Nobody answered the ARP requests still outstanding: the kernel gives up after mcast_solicit probes.
      let more = false;
      for (const ns of this.namespaces) if (neighTimeouts(ns)) more = true;
      if (!more && this.qDev.length === 0) return;
    }
  }

  /** __netif_receive_skb_core: taps, tc ingress, the rx_handler (bridge port, macvlan lower), then the protocol. */
  netifReceive(dev: NetDevice, pkt: Pkt): void {
    if (!dev.up) {
      this.drop(pkt, dev, Drop.LINK_DOWN);
      return;
    }
    if (++pkt.hops > HOP_LIMIT) {
      this.drop(pkt, dev, Drop.HOP_LIMIT);
      return;
    }
    dev.rxPackets++;
    dev.rxBytes += pkt.len;
    this.trace.record(pkt.id, Ev.RX, dev.ns.id, dev.ifindex, pkt.len, 0);
    if (this.tap !== null) this.tap(dev, pkt, 0);
    pkt.iif = dev.ifindex;
    if (dev.tcIngress !== null) {
      const act = dev.tcIngress.run(pkt, dev, TC_INGRESS);
      this.trace.record(pkt.id, Ev.TC_INGRESS, dev.ns.id, dev.ifindex, act, 0);
      if (act === TC_ACT_SHOT) {
        this.drop(pkt, dev, Drop.TC_SHOT);
        return;
      }
      if (act === TC_ACT_REDIRECT) {
        this.redirect(dev, pkt, true);
        return;
      }
      if (act === TC_ACT_STOLEN || act === TC_ACT_QUEUED || act === TC_ACT_TRAP) {
        this.drop(pkt, dev, Drop.TC_STOLEN);
        return;
      }
    }
    if (dev.master !== null) {
      dev.master.handleFrame(dev, pkt);
      return;
    }
    if (dev.macvlans !== null && macvlanHandleFrame(dev, pkt)) return;
    this.protocolRcv(dev, pkt);
  }

  /** eth_type_trans + the ptype handlers: pkt_type from the destination MAC, then ARP or IPv4. */
  protocolRcv(dev: NetDevice, pkt: Pkt): void {
    const buf = pkt.buf;
    const dst = getMac(buf, pkt.off);
    if (dst === MAC_BROADCAST) pkt.pktType = PACKET_BROADCAST;
    else if ((buf[pkt.off]! & 1) !== 0) pkt.pktType = PACKET_MULTICAST;
    else if (dst === dev.mac || dev.kind === LinkKind.LOOPBACK) pkt.pktType = PACKET_HOST;
    else pkt.pktType = PACKET_OTHERHOST;
    const type = (buf[pkt.off + 12]! << 8) | buf[pkt.off + 13]!;
    if (type === ETH_P_IP) ipRcv(dev.ns, dev, pkt);
    else if (type === ETH_P_ARP) arpRcv(dev.ns, dev, pkt);
    else this.drop(pkt, dev, Drop.NOT_IPV4);
  }

  /** dev_queue_xmit: tc egress, taps, then the driver. */
  devXmit(dev: NetDevice, pkt: Pkt): void {
    if (!dev.up) {
      dev.txDropped++;
      this.drop(pkt, dev, Drop.LINK_DOWN);
      return;
    }
    if (dev.tcEgress !== null) {
      const act = dev.tcEgress.run(pkt, dev, TC_EGRESS);
      this.trace.record(pkt.id, Ev.TC_EGRESS, dev.ns.id, dev.ifindex, act, 0);
      if (act === TC_ACT_SHOT) {
        this.drop(pkt, dev, Drop.TC_SHOT);
        return;
      }
      if (act === TC_ACT_REDIRECT) {
        this.redirect(dev, pkt, false);
        return;
      }
      if (act === TC_ACT_STOLEN || act === TC_ACT_QUEUED || act === TC_ACT_TRAP) {
        this.drop(pkt, dev, Drop.TC_STOLEN);
        return;
      }
    }
    dev.txPackets++;
    dev.txBytes += pkt.len;
    this.trace.record(pkt.id, Ev.TX, dev.ns.id, dev.ifindex, pkt.len, 0);
    if (this.tap !== null) this.tap(dev, pkt, 1);
    dev.xmit(pkt);
  }

  /**
   * skb_do_redirect: bpf_redirect(ifindex, 0) transmits on the target, BPF_F_INGRESS receives on it (netif_rx),
   * bpf_redirect_peer (ingress hook only) switches to the veth peer's ingress in its namespace without the backlog.
   */
  private redirect(from: NetDevice, pkt: Pkt, atIngress: boolean): void {
    const flags = pkt.redirectFlags;
    const target = from.ns.devByIndex(pkt.redirectIfindex);
    this.trace.record(pkt.id, Ev.REDIRECT, from.ns.id, from.ifindex, pkt.redirectIfindex, flags);
    pkt.redirectIfindex = 0;
    pkt.redirectFlags = 0;
    if (target === undefined || !target.up) {
      this.drop(pkt, from, Drop.REDIRECT_FAILED);
      return;
    }
    if ((flags & BPF_F_PEER) !== 0) {
      if (!atIngress || target.kind !== LinkKind.VETH) {
        this.drop(pkt, from, Drop.REDIRECT_FAILED);
        return;
      }
      const peer = (target as VethDevice).peer;
      if (peer.ns !== from.ns) pkt.mark = 0;
      pkt.ct = -1;
      this.netifReceive(peer, pkt);
    } else if ((flags & BPF_F_INGRESS) !== 0) {
      this.enqueueRx(target, pkt);
    } else {
      this.devXmit(target, pkt);
    }
  }

  /** Human-readable trace of one packet: `node1 eth0 rx 98`, ... (tests and `tcbox` output only). */
  renderTrace(pktId: number): string[] {
    return renderRecords(this, this.trace.forPacket(pktId));
  }

  bridges(): BridgeDevice[] {
    return this.namespaces.flatMap((ns) => ns.deviceList().filter((d) => d.kind === LinkKind.BRIDGE) as BridgeDevice[]);
  }
}

