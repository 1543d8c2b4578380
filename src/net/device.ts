// struct net_device: the part every link kind shares. A device belongs to one namespace, has an ifindex unique
// in it, a MAC, an MTU, admin state, optional tc clsact hooks, and per-interface sysctls. The driver's transmit
// (ndo_start_xmit) is `xmit`; the receive path is World.netifReceive.
import { LinkKind, type LinkKind as LinkKindT } from "./constants.js";
import type { TcHook } from "./hooks.js";
import type { NetNamespace } from "./netns.js";
import type { Pkt } from "./pkt.js";
import type { BridgeDevice } from "./bridge.js";
import type { MacvlanDevice } from "./macvlan.js";

export abstract class NetDevice {
  ifindex = 0;
  /** Administrative state (IFF_UP). */
  up = false;
  /** Bridge this device is a port of (`master`). */
  master: BridgeDevice | null = null;
  /** Bridge port flag `hairpin on`: frames may leave by the port they came in (kubelet hairpin-veth). */
  hairpin = false;
  /** Bridge port flag `learning` (on by default). */
  learning = true;
  /** net.ipv4.conf.<dev>.proxy_arp */
  proxyArp = false;
  /** net.ipv4.conf.<dev>.rp_filter (0 off, 1 strict, 2 loose); the effective value is max(all, dev). */
  rpFilter = 0;
  /** tc clsact ingress/egress programs (null = none attached). */
  tcIngress: TcHook | null = null;
  tcEgress: TcHook | null = null;
  /** macvlan children when this device is a macvlan lower device. */
  macvlans: MacvlanDevice[] | null = null;
  rxPackets = 0;
  txPackets = 0;
  rxBytes = 0;
  txBytes = 0;
  rxDropped = 0;
  txDropped = 0;

  constructor(
    public ns: NetNamespace,
    public name: string,
    readonly kind: LinkKindT,
    /** 48-bit MAC as a number. */
    public mac: number,
    public mtu: number,
  ) {}

  /** Operational state: up and, for links with a peer or a wire, the other side present (IFF_LOWER_UP). */
  get carrier(): boolean {
    return this.up;
  }

  /** Driver transmit (ndo_start_xmit); tc egress already ran. */
  abstract xmit(pkt: Pkt): void;

  /** `eth0@if5` style suffix for `ip link`, "" if none. */
  linkSuffix(): string {
    return "";
  }

  /** The kernel's IFF_* flags as `ip link` prints them. */
  flagNames(): string[] {
    const f: string[] = [];
    if (this.kind === LinkKind.LOOPBACK) f.push("LOOPBACK");
    else f.push("BROADCAST", "MULTICAST");
    if (this.up) f.push("UP");
    if (this.up && this.carrier) f.push("LOWER_UP");
    else if (this.up) f.unshift("NO-CARRIER");
    return f;
  }

  get where(): string {
    return `${this.ns.name}/${this.name}`;
  }
}

/** lo: every frame sent is received back on the same device (loopback_xmit -> netif_rx). */
export class LoopbackDevice extends NetDevice {
  constructor(ns: NetNamespace) {
    super(ns, "lo", LinkKind.LOOPBACK, 0, 65536);
  }
  xmit(pkt: Pkt): void {
    this.ns.world.enqueueRx(this, pkt);
  }
}

/** A dummy device: a place for addresses (e.g. a node's service IPs, kube-ipvs0); transmit drops. */
export class DummyDevice extends NetDevice {
  constructor(ns: NetNamespace, name: string, mac: number) {
    super(ns, name, LinkKind.DUMMY, mac, 1500);
  }
  xmit(pkt: Pkt): void {
    this.ns.world.free(pkt);
  }
}
