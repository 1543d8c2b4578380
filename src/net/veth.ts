// veth pairs (drivers/net/veth.c): two devices, usually in two namespaces; a frame sent on one end is received on
// the other (veth_xmit -> netif_rx on the peer). Carrier is up only when both ends are up.
import { LinkKind } from "./constants.js";
import { NetDevice } from "./device.js";
import type { NetNamespace } from "./netns.js";
import type { Pkt } from "./pkt.js";
import { Drop } from "./trace.js";

export class VethDevice extends NetDevice {
  peer!: VethDevice;
  constructor(ns: NetNamespace, name: string, mac: number) {
    super(ns, name, LinkKind.VETH, mac, 1500);
  }
  override get carrier(): boolean {
    return this.up && this.peer.up;
  }
  xmit(pkt: Pkt): void {
    const w = this.ns.world;
    if (!this.peer.up) {
      this.txDropped++;
      w.drop(pkt, this, Drop.NO_PEER);
      return;
    }
    // veth_xmit -> __dev_forward_skb -> skb_scrub_packet: the conntrack reference is dropped, and crossing into
    // another namespace also clears the mark.
    pkt.ct = -1;
    pkt.ctinfo = 0;
    pkt.prerouted = false;
    if (this.peer.ns !== this.ns) pkt.mark = 0;
    w.enqueueRx(this.peer, pkt);
  }
  override linkSuffix(): string {
    return `@if${this.peer.ifindex}`;
  }
}

/** ip link add NAME type veth peer name PEER: both ends created at once, each in its namespace. */
export function createVethPair(nsA: NetNamespace, nameA: string, nsB: NetNamespace, nameB: string): [VethDevice, VethDevice] {
  const a = new VethDevice(nsA, nameA, nsA.world.allocMac());
  const b = new VethDevice(nsB, nameB, nsB.world.allocMac());
  a.peer = b;
  b.peer = a;
  nsA.registerDevice(a);
  nsB.registerDevice(b);
  return [a, b];
}

