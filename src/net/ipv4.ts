// IPv4 input (net/ipv4/ip_input.c, route.c ip_route_input_slow, ip_forward.c): header checks, PREROUTING, the
// routing decision, local delivery through INPUT to sockets, or forwarding with the TTL check, decrement and
// FORWARD. Output continues in output.ts.
import { get16, get32, ipv4HeaderChecksum, set16 } from "../packet/checksum.js";
import {
  ICMP_DEST_UNREACH,
  ICMP_FRAG_NEEDED,
  ICMP_HOST_UNREACH,
  ICMP_NET_UNREACH,
  ICMP_PKT_FILTERED,
  ICMP_TIME_EXCEEDED,
  ICMP_EXC_TTL,
  NF_ACCEPT,
  NF_INET_FORWARD,
  NF_INET_LOCAL_IN,
  NF_INET_PRE_ROUTING,
  NF_STOLEN,
  NFPROTO_IPV4,
  PACKET_HOST,
  PACKET_OTHERHOST,
  RTN_BLACKHOLE,
  RTN_BROADCAST,
  RTN_LOCAL,
  RTN_PROHIBIT,
  RTN_UNICAST,
  RTN_UNREACHABLE,
  LinkKind,
} from "./constants.js";
import type { NetDevice } from "./device.js";
import { IP_DF } from "./emit.js";
import { icmpSend } from "./icmp.js";
import { localDeliver } from "./local.js";
import type { NetNamespace } from "./netns.js";
import { ipFinishOutput } from "./output.js";
import type { Pkt } from "./pkt.js";
import { Drop, Ev } from "./trace.js";

/** Run the netfilter hook `hook` of `ns` and record it. Returns the verdict (NF_STOLEN: the packet is gone). */
export function nfHook(
  ns: NetNamespace,
  hook: number,
  pkt: Pkt,
  inDev: NetDevice | null,
  outDev: NetDevice | null,
  pf = NFPROTO_IPV4,
  physIn: NetDevice | null = null,
  physOut: NetDevice | null = null,
): number {
  const st = ns.nfState;
  st.hook = hook;
  st.pf = pf;
  st.ns = ns;
  st.in = inDev;
  st.out = outDev;
  st.physIn = physIn;
  st.physOut = physOut;
  const v = ns.netfilter.run(pkt, st);
  const dev = inDev ?? outDev;
  ns.world.trace.record(pkt.id, Ev.NF_HOOK, ns.id, dev === null ? 0 : dev.ifindex, hook, v | (pf === NFPROTO_IPV4 ? 0 : 0x100));
  if (v !== NF_ACCEPT && v !== NF_STOLEN) ns.world.drop(pkt, dev, Drop.NETFILTER);
  return v;
}

/** ip_rcv + ip_rcv_finish. */
export function ipRcv(ns: NetNamespace, dev: NetDevice, pkt: Pkt): void {
  const w = ns.world;
  // ip_rcv_core: frames for another host are dropped here (a bridge port in promiscuous mode sees them).
  if (pkt.pktType === PACKET_OTHERHOST) {
    w.drop(pkt, dev, Drop.OTHERHOST);
    return;
  }
  const buf = pkt.buf;
  const l3 = pkt.off + 14;
  if (pkt.len < 34 || buf[l3]! >>> 4 !== 4 || (buf[l3]! & 15) < 5 || get16(buf, l3 + 2) > pkt.len - 14 || ipv4HeaderChecksum(buf, l3, (buf[l3]! & 15) * 4) !== get16(buf, l3 + 10)) {
    w.drop(pkt, dev, Drop.IP_HDR);
    return;
  }
  // Ethernet padding past tot_len is trimmed (pskb_trim_rcsum).
  pkt.len = 14 + get16(buf, l3 + 2);
  if (pkt.prerouted) {
    // br_netfilter already ran PREROUTING for this frame (ip_sabotage_in).
    pkt.prerouted = false;
  } else if (nfHook(ns, NF_INET_PRE_ROUTING, pkt, dev, null) !== NF_ACCEPT) return;
  ipRouteInput(ns, dev, pkt);
}

/** ip_route_input_slow + dst_input: the routing decision for a received packet. */
export function ipRouteInput(ns: NetNamespace, dev: NetDevice, pkt: Pkt): void {
  const w = ns.world;
  const buf = pkt.buf;
  const l3 = pkt.off + 14;
  const saddr = get32(buf, l3 + 12);
  const daddr = get32(buf, l3 + 16);
  const fromLo = dev.kind === LinkKind.LOOPBACK;
  // Martians: 127/8 from the wire unless route_localnet (kube-proxy sets it for NodePorts on localhost).
  if (!fromLo && !ns.sysctl.routeLocalnet && ((saddr >>> 24) === 127 || (daddr >>> 24) === 127)) {
    w.drop(pkt, dev, Drop.MARTIAN);
    return;
  }
  if (daddr === 0xffffffff) {
    w.trace.record(pkt.id, Ev.ROUTE, ns.id, dev.ifindex, RTN_BROADCAST, daddr);
    localDeliver(ns, dev, pkt);
    return;
  }
  const r = ns.routeLookup(daddr, saddr, dev, pkt.mark);
  const type = r === null ? 0 : r.type;
  w.trace.record(pkt.id, Ev.ROUTE, ns.id, r !== null && r.dev !== null ? r.dev.ifindex : 0, type, r === null ? 0 : r.gw !== 0 ? r.gw : daddr);
  if (type === RTN_LOCAL || type === RTN_BROADCAST) {
    localDeliver(ns, dev, pkt);
    return;
  }
  // Everything else needs forwarding; with it off the kernel drops silently (ip_error sends nothing).
  if (!ns.sysctl.ipForward) {
    w.drop(pkt, dev, Drop.FORWARDING_DISABLED);
    return;
  }
  if (r === null) {
    icmpSend(ns, pkt, ICMP_DEST_UNREACH, ICMP_NET_UNREACH, 0, dev);
    w.drop(pkt, dev, Drop.NO_ROUTE);
    return;
  }
  if (type === RTN_BLACKHOLE) {
    w.drop(pkt, dev, Drop.BLACKHOLE);
    return;
  }
  if (type === RTN_UNREACHABLE || type === RTN_PROHIBIT) {
    icmpSend(ns, pkt, ICMP_DEST_UNREACH, type === RTN_UNREACHABLE ? ICMP_HOST_UNREACH : ICMP_PKT_FILTERED, 0, dev);
    w.drop(pkt, dev, type === RTN_UNREACHABLE ? Drop.UNREACHABLE : Drop.PROHIBIT);
    return;
  }
  if (type !== RTN_UNICAST || r.dev === null) {
    w.drop(pkt, dev, Drop.NO_ROUTE);
    return;
  }
  // rp_filter (fib_validate_source): strict mode wants the reply route out of the input device, loose any route.
  const rpf = Math.max(ns.sysctl.rpFilter, dev.rpFilter);
  if (rpf !== 0 && saddr !== 0) {
    const back = ns.routeLookup(saddr, daddr, null, pkt.mark);
    if (back === null || back.type !== RTN_UNICAST || (rpf === 1 && back.dev !== dev)) {
      w.drop(pkt, dev, Drop.RP_FILTER);
      return;
    }
  }
  ipForward(ns, dev, pkt, r.dev, r.gw !== 0 ? r.gw : daddr);
}

/** ip_forward: TTL check (time exceeded from this router), MTU check, TTL decrement, FORWARD, then output. */
export function ipForward(ns: NetNamespace, inDev: NetDevice, pkt: Pkt, outDev: NetDevice, nexthop: number): void {
  const w = ns.world;
  if (pkt.pktType !== PACKET_HOST) {
    w.drop(pkt, inDev, Drop.OTHERHOST);
    return;
  }
  const buf = pkt.buf;
  const l3 = pkt.off + 14;
  const ttl = buf[l3 + 8]!;
  if (ttl <= 1) {
    icmpSend(ns, pkt, ICMP_TIME_EXCEEDED, ICMP_EXC_TTL, 0, inDev);
    w.drop(pkt, inDev, Drop.TTL_EXPIRED);
    return;
  }
  const totLen = get16(buf, l3 + 2);
  if (totLen > outDev.mtu && (get16(buf, l3 + 6) & IP_DF) !== 0) {
    icmpSend(ns, pkt, ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED, outDev.mtu, inDev);
    w.drop(pkt, inDev, Drop.FRAG_NEEDED);
    return;
  }
  // ip_decrease_ttl: the checksum is fixed incrementally (check += htons(0x0100)).
  buf[l3 + 8] = ttl - 1;
  let check = get16(buf, l3 + 10) + 0x0100;
  check = (check & 0xffff) + (check >>> 16);
  set16(buf, l3 + 10, check);
  w.trace.record(pkt.id, Ev.FORWARD, ns.id, outDev.ifindex, ttl - 1, 0);
  if (nfHook(ns, NF_INET_FORWARD, pkt, inDev, outDev) !== NF_ACCEPT) return;
  ipFinishOutput(ns, pkt, inDev, outDev, nexthop);
}
