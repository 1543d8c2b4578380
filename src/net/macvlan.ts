// macvlan in bridge mode (drivers/net/macvlan.c): children with their own MACs on one lower device. A child's
// frame to a sibling's MAC is delivered directly; broadcasts reach the siblings and the wire; everything else
// leaves through the lower device. Received on the lower device, a frame for a child's MAC goes to that child
// and broadcasts go to every child and the lower device too. The lower device's own stack is not a sibling:
// its frames to a child go out to the wire, and the wire does not send a frame back out the port it came in,
// so the host and its macvlan children cannot reach each other directly.
import { LinkKind } from "./constants.js";
import { NetDevice } from "./device.js";
import { getMac } from "./emit.js";
import type { NetNamespace } from "./netns.js";
import type { Pkt } from "./pkt.js";

export class MacvlanDevice extends NetDevice {
  constructor(
    ns: NetNamespace,
    name: string,
    mac: number,
    readonly lower: NetDevice,
    readonly mode: "bridge" = "bridge",
  ) {
    super(ns, name, LinkKind.MACVLAN, mac, lower.mtu);
  }

  override get carrier(): boolean {
    return this.up && this.lower.up && this.lower.carrier;
  }

  override linkSuffix(): string {
    return this.lower.ns === this.ns ? `@${this.lower.name}` : `@if${this.lower.ifindex}`;
  }

  /** macvlan_queue_xmit in bridge mode. */
  xmit(pkt: Pkt): void {
    const w = this.ns.world;
    const siblings = this.lower.macvlans!;
    if ((pkt.buf[pkt.off]! & 1) !== 0) {
      for (const s of siblings) if (s !== this && s.up) w.enqueueRx(s, w.clone(pkt));
    } else {
      const dst = getMac(pkt.buf, pkt.off);
      for (const s of siblings) {
        if (s !== this && s.mac === dst) {
          if (s.up) w.enqueueRx(s, pkt);
          else w.free(pkt);
          return;
        }
      }
    }
    w.devXmit(this.lower, pkt);
  }
}

/** macvlan_handle_frame, the lower device's rx_handler. Returns true when a child took the frame. */
export function macvlanHandleFrame(lower: NetDevice, pkt: Pkt): boolean {
  const w = lower.ns.world;
  const children = lower.macvlans!;
  if ((pkt.buf[pkt.off]! & 1) !== 0) {
    for (const c of children) if (c.up) w.enqueueRx(c, w.clone(pkt));
    return false;
  }
  const dst = getMac(pkt.buf, pkt.off);
  for (const c of children) {
    if (c.mac === dst) {
      w.netifReceive(c, pkt);
      return true;
    }
  }
  return false;
}

/** ip link add NAME link LOWER type macvlan mode bridge */
export function createMacvlan(ns: NetNamespace, name: string, lower: NetDevice, mac = ns.world.allocMac()): MacvlanDevice {
  const dev = new MacvlanDevice(ns, name, mac, lower);
  ns.registerDevice(dev);
  (lower.macvlans ??= []).push(dev);
  return dev;
}
