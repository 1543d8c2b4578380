// The physical world between nodes: an L2 segment (a learning switch with no hairpin, like a ToR switch or a
// VPC subnet) joining NICs of several namespaces, and the NIC itself (an Ethernet device whose transmit puts
// the frame on its segment).
import { LinkKind } from "./constants.js";
import { NetDevice } from "./device.js";
import { getMac } from "./emit.js";
import { MacTable } from "./mactable.js";
import type { NetNamespace } from "./netns.js";
import type { Pkt } from "./pkt.js";
import { Drop, Ev } from "./trace.js";

export class EtherDevice extends NetDevice {
  segment: Segment | null = null;
  constructor(ns: NetNamespace, name: string, mac: number, mtu = 1500) {
    super(ns, name, LinkKind.ETHER, mac, mtu);
  }
  override get carrier(): boolean {
    return this.up && this.segment !== null;
  }
  xmit(pkt: Pkt): void {
    if (this.segment === null) {
      this.ns.world.drop(pkt, this, Drop.LINK_DOWN);
      return;
    }
    this.segment.transmit(this, pkt);
  }
}

export class Segment {
  readonly ports: EtherDevice[] = [];
  /** MAC -> port, learned from sources (no ageing: the model's hosts do not move). */
  readonly fdb = new MacTable<EtherDevice>();
  constructor(readonly name: string) {}

  attach(dev: EtherDevice): void {
    dev.segment = this;
    this.ports.push(dev);
  }

  transmit(from: EtherDevice, pkt: Pkt): void {
    const w = from.ns.world;
    const buf = pkt.buf;
    if ((buf[pkt.off + 6]! & 1) === 0 && this.fdb.getAt(buf, pkt.off + 6) !== from) this.fdb.set(getMac(buf, pkt.off + 6), from);
    if ((buf[pkt.off]! & 1) === 0) {
      const to = this.fdb.getAt(buf, pkt.off);
      if (to !== undefined) {
        if (to === from) {
          // A switch never sends a frame back out of its ingress port.
          w.drop(pkt, from, Drop.OTHERHOST);
          return;
        }
        w.trace.record(pkt.id, Ev.WIRE, from.ns.id, from.ifindex, 1, 0);
        w.enqueueRx(to, pkt);
        return;
      }
    }
    let n = 0;
    for (const p of this.ports) if (p !== from && p.up) n++;
    w.trace.record(pkt.id, Ev.WIRE, from.ns.id, from.ifindex, n, 0);
    if (n === 0) {
      w.free(pkt);
      return;
    }
    for (const p of this.ports) {
      if (p === from || !p.up) continue;
      w.enqueueRx(p, --n === 0 ? pkt : w.clone(pkt));
    }
  }
}

/** A NIC in `ns`, attached to `segment` when given. */
export function createEther(ns: NetNamespace, name: string, segment: Segment | null = null, mac = ns.world.allocMac(), mtu = 1500): EtherDevice {
  const dev = new EtherDevice(ns, name, mac, mtu);
  ns.registerDevice(dev);
  if (segment !== null) segment.attach(dev);
  return dev;
}
