// IPv4 output (net/ipv4/ip_output.c) and neighbour output (net/core/neighbour.c, net/ipv4/arp.c arp_solicit):
// OUTPUT for locally generated packets with a re-route when NAT changed the destination (ip_route_me_harder),
// POSTROUTING, then the Ethernet header from the neighbour table, or a queue and an ARP request while it resolves.
import { get32 } from "../packet/checksum.js";
import {
  ARPOP_REQUEST,
  ETH_P_IP,
  ICMP_DEST_UNREACH,
  ICMP_HOST_UNREACH,
  LinkKind,
  MAC_BROADCAST,
  NF_ACCEPT,
  NF_INET_LOCAL_OUT,
  NF_INET_POST_ROUTING,
  NUD_FAILED,
  NUD_INCOMPLETE,
  RTN_LOCAL,
  RTN_UNICAST,
  RT_SCOPE_LINK,
} from "./constants.js";
import type { NetDevice } from "./device.js";
import { setMac, writeArpFrame, writeEth } from "./emit.js";
import type { BridgeDevice } from "./bridge.js";
import { icmpSend } from "./icmp.js";
import { nfHook } from "./ipv4.js";
import { UNRES_QLEN, nudUsable, type Neighbour } from "./neigh.js";
import type { NetNamespace } from "./netns.js";
import type { Pkt } from "./pkt.js";
import type { Route } from "./route.js";
import { Drop, Ev } from "./trace.js";

/** The device and next hop a route sends to: the gateway, or the destination itself on a connected route. */
export function routeNexthop(r: Route, daddr: number): number {
  return r.gw !== 0 ? r.gw : daddr;
}

/**
 * __ip_local_out + ip_output for a locally generated packet already routed by `r`: OUTPUT (a DNAT there re-routes),
 * then POSTROUTING and neighbour output. Local destinations leave through lo.
 */
export function ipLocalOut(ns: NetNamespace, pkt: Pkt, r: Route): void {
  const w = ns.world;
  const l3 = pkt.off + 14;
  const daddr = get32(pkt.buf, l3 + 16);
  let outDev = r.type === RTN_LOCAL ? ns.lo : r.dev!;
  w.trace.record(pkt.id, Ev.ROUTE, ns.id, outDev.ifindex, r.type, routeNexthop(r, daddr));
  if (nfHook(ns, NF_INET_LOCAL_OUT, pkt, null, outDev) !== NF_ACCEPT) return;
  const after = get32(pkt.buf, l3 + 16);
  let route = r;
  if (after !== daddr) {
    // ip_route_me_harder: NAT in OUTPUT changed the destination; route again.
    const rr = ns.routeLookup(after, get32(pkt.buf, l3 + 12), null, pkt.mark);
    if (rr === null || (rr.type !== RTN_UNICAST && rr.type !== RTN_LOCAL) || (rr.type === RTN_UNICAST && rr.dev === null)) {
      w.drop(pkt, outDev, Drop.NO_ROUTE);
      return;
    }
    route = rr;
    outDev = rr.type === RTN_LOCAL ? ns.lo : rr.dev!;
    w.trace.record(pkt.id, Ev.ROUTE, ns.id, outDev.ifindex, rr.type, routeNexthop(rr, after));
  }
  ipFinishOutput(ns, pkt, null, outDev, route.type === RTN_LOCAL ? after : routeNexthop(route, after));
}

/** ip_output -> POSTROUTING -> ip_finish_output2 -> neigh_output. */
export function ipFinishOutput(ns: NetNamespace, pkt: Pkt, inDev: NetDevice | null, outDev: NetDevice, nexthop: number): void {
  if (nfHook(ns, NF_INET_POST_ROUTING, pkt, inDev, outDev) !== NF_ACCEPT) return;
  neighOutput(ns, outDev, nexthop, pkt, ETH_P_IP);
}

/** neigh_output / neigh_resolve_output: fill the Ethernet header or queue the packet and solicit. */
export function neighOutput(ns: NetNamespace, dev: NetDevice, nexthop: number, pkt: Pkt, proto: number): void {
  const w = ns.world;
  if (dev.kind === LinkKind.LOOPBACK) {
    writeEth(pkt.buf, pkt.off, 0, 0, proto);
    w.devXmit(dev, pkt);
    return;
  }
  let n = ns.neigh.get(dev, nexthop);
  if (n !== undefined && nudUsable(ns.neigh.state(n, w.now))) {
    writeEth(pkt.buf, pkt.off, n.mac, dev.mac, proto);
    w.trace.record(pkt.id, Ev.NEIGH_OUTPUT, ns.id, dev.ifindex, n.state, nexthop);
    w.devXmit(dev, pkt);
    return;
  }
  const fresh = n === undefined || n.state === NUD_FAILED;
  n = ns.neigh.incomplete(dev, nexthop, w.now);
  if (n.queue.length >= UNRES_QLEN) {
    w.drop(pkt, dev, Drop.NEIGH_QUEUE_FULL);
    return;
  }
  // The header is completed when the reply comes (neighFlush); the ethertype is known now.
  writeEth(pkt.buf, pkt.off, 0, dev.mac, proto);
  n.queue.push(pkt);
  w.trace.record(pkt.id, Ev.NEIGH_QUEUE, ns.id, dev.ifindex, 0, nexthop);
  if (fresh || n.probes === 0) arpSolicit(ns, dev, nexthop, pkt);
}

/**
 * arp_solicit with arp_announce 0: the sender address is the packet's source when it is local, else
 * inet_select_addr(dev, target, link scope). The request is broadcast from the device.
 */
export function arpSolicit(ns: NetNamespace, dev: NetDevice, target: number, trigger: Pkt | null): void {
  const w = ns.world;
  let sip = 0;
  if (trigger !== null) {
    const s = get32(trigger.buf, trigger.off + 14 + 12);
    if (ns.isLocalAddr(s)) sip = s;
  }
  if (sip === 0) sip = ns.selectSrc(dev, target, RT_SCOPE_LINK);
  const n = ns.neigh.get(dev, target);
  if (n !== undefined) n.probes++;
  const req = w.alloc(trigger === null ? 0 : trigger.id);
  if (trigger !== null) req.tag = trigger.tag;
  req.len = writeArpFrame(req.buf, req.off, ARPOP_REQUEST, dev.mac, MAC_BROADCAST, dev.mac, sip, 0, target);
  w.trace.record(trigger === null ? req.id : trigger.id, Ev.ARP_REQUEST, ns.id, dev.ifindex, req.id, target);
  w.devXmit(dev, req);
}

/** Queue a bridged frame (its Ethernet header kept) on the bridge's neighbour entry for `nexthop` and solicit. */
export function neighQueueBridged(ns: NetNamespace, br: NetDevice, nexthop: number, pkt: Pkt): void {
  const w = ns.world;
  const fresh = ns.neigh.get(br, nexthop) === undefined || ns.neigh.get(br, nexthop)!.state === NUD_FAILED;
  const n = ns.neigh.incomplete(br, nexthop, w.now);
  if (n.queue.length >= UNRES_QLEN) {
    w.drop(pkt, br, Drop.NEIGH_QUEUE_FULL);
    return;
  }
  n.queue.push(pkt);
  w.trace.record(pkt.id, Ev.NEIGH_QUEUE, ns.id, br.ifindex, 0, nexthop);
  if (fresh || n.probes === 0) arpSolicit(ns, br, nexthop, pkt);
}

/** A reply resolved `n`: send what waited (neigh_update -> the arp_queue flush). */
export function neighFlush(ns: NetNamespace, n: Neighbour): void {
  const q = n.queue;
  n.queue = [];
  for (const p of q) {
    if (p.brIn !== null && n.dev.kind === LinkKind.BRIDGE) {
      // A bridged-DNAT frame: only the destination MAC changes; bridging continues from its ingress port.
      const port = p.brIn;
      p.brIn = null;
      setMac(p.buf, p.off, n.mac);
      ns.world.trace.record(p.id, Ev.NEIGH_OUTPUT, ns.id, n.dev.ifindex, n.state, n.ip);
      (n.dev as BridgeDevice).resumeBridged(port, p);
      continue;
    }
    writeEth(p.buf, p.off, n.mac, n.dev.mac, (p.buf[p.off + 12]! << 8) | p.buf[p.off + 13]!);
    ns.world.trace.record(p.id, Ev.NEIGH_OUTPUT, ns.id, n.dev.ifindex, n.state, n.ip);
    ns.world.devXmit(n.dev, p);
  }
}

/**
 * Resolution failed (no reply after the probes): the entry goes FAILED and each queued packet is dropped with an
 * ICMP host unreachable to its source (ipv4_link_failure). Returns whether anything was dropped.
 */
export function neighTimeouts(ns: NetNamespace): boolean {
  let any = false;
  for (const n of ns.neigh.entries.values()) {
    if (n.state !== NUD_INCOMPLETE) continue;
    n.state = NUD_FAILED;
    n.probes = 0;
    const q = n.queue;
    n.queue = [];
    for (const p of q) {
      any = true;
      icmpSend(ns, p, ICMP_DEST_UNREACH, ICMP_HOST_UNREACH, 0, null);
      ns.world.drop(p, n.dev, Drop.NEIGH_FAILED);
    }
  }
  return any;
}

