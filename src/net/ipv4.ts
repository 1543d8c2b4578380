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
  RTN_MULTICAST,
  RT_TABLE_DEFAULT,
  RT_TABLE_LOCAL,
  RT_TABLE_MAIN,
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
import type { Route } from "./route.js";
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

/**
 * The input routing decision (ip_route_input_rcu / ip_route_input_slow, net/ipv4/route.c) for a packet from
 * `saddr` to `daddr` received on `dev`, as a RouteIn code; the route found is left in `routeInputResult`.
 * With accept_local=0 (not modelled as a knob: always the default) and route_localnet as the namespace has it:
 *  - multicast destinations: only groups the device is in (224.0.0.1, which every IPv4 device joins) are taken,
 *    after ip_mc_validate_source (no multicast/broadcast/loopback source; 0.0.0.0 only to 224.0.0.0/24);
 *  - martian sources (in_martian_src): multicast or 255.255.255.255, 0.0.0.0 (except to 255.255.255.255 or
 *    0.0.0.0; the rest of 0.0.0.0/8 is ordinary unicast space in current kernels), 127/8 from a non-loopback device, or failing fib_validate_source (one of our
 *    own addresses, or rp_filter: RouteIn.RP_FILTER, counted as a martian source too);
 *  - martian destinations (in_martian_dst): 0.0.0.0, 127/8 from a non-loopback device, a route that is
 *    neither local, broadcast nor unicast;
 *  - 240/4 and 169.254/16 are not martians to Linux: they route like any other address.
 * Frames on the loopback device are the model's locally looped packets (the kernel keeps their dst and does
 * not route them again): routed without the martian and source checks.
 */
export function routeInput(ns: NetNamespace, dev: NetDevice, saddr: number, daddr: number, mark: number): number {
  routeInputResult = null;
  routeInputLooked = false;
  const fromLo = dev.kind === LinkKind.LOOPBACK;
  if (isMulticast(daddr)) {
    // ip_route_input_rcu: ip_check_mc_rcu (the device's groups), then ip_route_input_mc.
    if (daddr !== IGMP_ALL_HOSTS) return RouteIn.MC_NOT_JOINED;
    if (isMulticast(saddr) || saddr === INADDR_BROADCAST) return RouteIn.MC_BAD_SOURCE;
    if (isLoopback(saddr) && !fromLo && !ns.sysctl.routeLocalnet) return RouteIn.MC_BAD_SOURCE;
    if (isZeronet(saddr)) return RouteIn.MULTICAST; // 224.0.0.1 is link-local multicast: 0.0.0.0 is allowed
    return fromLo || validateSource(ns, dev, saddr, 0, null) === 0 ? RouteIn.MULTICAST : RouteIn.MC_BAD_SOURCE;
  }
  if (!fromLo) {
    if (isMulticast(saddr) || saddr === INADDR_BROADCAST) return RouteIn.MARTIAN_SRC;
    if (daddr === INADDR_BROADCAST || (saddr === 0 && daddr === 0)) return brdInput(ns, dev, saddr);
    if (isZeronet(saddr)) return RouteIn.MARTIAN_SRC;
    if (isZeronet(daddr)) return RouteIn.MARTIAN_DST;
    if (isLoopback(daddr)) {
      if (!ns.sysctl.routeLocalnet) return RouteIn.MARTIAN_DST;
    } else if (isLoopback(saddr) && !ns.sysctl.routeLocalnet) return RouteIn.MARTIAN_SRC;
  } else if (daddr === INADDR_BROADCAST) return RouteIn.BROADCAST;
  const r = ns.routeLookup(daddr, saddr, dev, mark);
  routeInputResult = r;
  routeInputLooked = true;
  // fib_lookup fails for no route and for blackhole/unreachable/prohibit routes (their fib_props error).
  const type = r === null ? 0 : r.type;
  if (type === RTN_BROADCAST) return fromLo ? RouteIn.BROADCAST : brdInput(ns, dev, saddr);
  if (type === RTN_LOCAL) {
    if (fromLo) return RouteIn.LOCAL;
    return sourceVerdict(validateSource(ns, dev, saddr, daddr, null), RouteIn.LOCAL);
  }
  if (!ns.sysctl.ipForward) return RouteIn.FORWARDING_DISABLED;
  if (r === null) return RouteIn.NO_ROUTE;
  if (type === RTN_BLACKHOLE) return RouteIn.BLACKHOLE;
  if (type === RTN_UNREACHABLE) return RouteIn.UNREACHABLE;
  if (type === RTN_PROHIBIT) return RouteIn.PROHIBIT;
  if (type !== RTN_UNICAST || r.dev === null) return RouteIn.MARTIAN_DST;
  // __mkroute_input: fib_validate_source with the output device.
  return fromLo ? RouteIn.FORWARD : sourceVerdict(validateSource(ns, dev, saddr, daddr, r.dev), RouteIn.FORWARD);
}

/** The route routeInput() found (null when none or before the lookup). */
export let routeInputResult: Route | null = null;
/** Whether routeInput() got as far as the FIB lookup. */
let routeInputLooked = false;

/** routeInput() outcomes. */
export const RouteIn = {
  LOCAL: 1,
  BROADCAST: 2,
  MULTICAST: 3,
  FORWARD: 4,
  MARTIAN_SRC: 5,
  MARTIAN_DST: 6,
  /** fib_validate_source -EXDEV: rp_filter (also a martian source to the kernel's in_martian_src). */
  RP_FILTER: 7,
  /** A multicast group the device is not in. */
  MC_NOT_JOINED: 8,
  /** ip_mc_validate_source refused the source. */
  MC_BAD_SOURCE: 9,
  FORWARDING_DISABLED: 10,
  NO_ROUTE: 11,
  BLACKHOLE: 12,
  UNREACHABLE: 13,
  PROHIBIT: 14,
} as const;

const INADDR_BROADCAST = 0xffffffff;
const IGMP_ALL_HOSTS = 0xe0000001;
const EINVAL = 22;
const EXDEV = 18;
const isMulticast = (a: number) => a >>> 28 === 0xe;
// ipv4_is_zeronet: only 0.0.0.0 in current kernels (the rest of 0.0.0.0/8 routes as unicast; checked against
// the kernel in test/kernel/martian-route.test.ts).
const isZeronet = (a: number) => a === 0;
const isLoopback = (a: number) => a >>> 24 === 127;

/** brd_input: a limited or directed broadcast, after fib_validate_source unless the source is 0.0.0.0/8. */
function brdInput(ns: NetNamespace, dev: NetDevice, saddr: number): number {
  if (isZeronet(saddr)) return RouteIn.BROADCAST;
  return sourceVerdict(validateSource(ns, dev, saddr, 0, null), RouteIn.BROADCAST);
}

function sourceVerdict(err: number, ok: number): number {
  return err === 0 ? ok : err === -EXDEV ? RouteIn.RP_FILTER : RouteIn.MARTIAN_SRC;
}

/**
 * fib_validate_source (net/ipv4/fib_frontend.c): 0, -EINVAL (a martian source) or -EXDEV (rp_filter). Without
 * rp_filter only our own addresses are refused (accept_local=0), unless the forwarding route leaves by the input
 * device or custom rules exist; then, and with rp_filter, the route back to the source must be unicast and, in
 * strict mode, leave by the input device (loose mode: any route; a device without addresses fails both modes
 * unless the route back uses it).
 */
export function validateSource(ns: NetNamespace, dev: NetDevice, saddr: number, daddr: number, oif: NetDevice | null): number {
  const rpf = Math.max(ns.sysctl.rpFilter, dev.rpFilter);
  if (rpf === 0 && dev !== oif && !hasCustomRules(ns)) return ns.isLocalAddr(saddr) ? -EINVAL : 0;
  const back = ns.routeLookup(saddr, daddr, oif ?? ns.lo, 0);
  const type = back === null ? 0 : back.type;
  if (back === null || type === RTN_BLACKHOLE || type === RTN_UNREACHABLE || type === RTN_PROHIBIT) return rpf !== 0 ? -EXDEV : 0;
  if (type !== RTN_UNICAST) return -EINVAL;
  if (back.dev === dev) return 0;
  if (!hasAddress(ns, dev)) return rpf !== 0 ? -EXDEV : 0;
  return rpf === 1 ? -EXDEV : 0;
}

function hasCustomRules(ns: NetNamespace): boolean {
  const rules = ns.rules;
  if (rules.length !== 3) return true;
  for (let i = 0; i < 3; i++) {
    const r = rules[i]!;
    if (r.table !== DEFAULT_RULE_TABLES[i] || r.srcLen !== 0 || r.dstLen !== 0 || r.iif !== "" || r.fwmask !== 0) return true;
  }
  return false;
}
const DEFAULT_RULE_TABLES = [RT_TABLE_LOCAL, RT_TABLE_MAIN, RT_TABLE_DEFAULT];

function hasAddress(ns: NetNamespace, dev: NetDevice): boolean {
  const a = ns.addrs;
  for (let i = 0; i < a.length; i++) if (a[i]!.dev === dev) return true;
  return false;
}

/** ip_route_input + dst_input: the routing decision for a received packet, then delivery, forwarding or the drop. */
export function ipRouteInput(ns: NetNamespace, dev: NetDevice, pkt: Pkt): void {
  const w = ns.world;
  const buf = pkt.buf;
  const l3 = pkt.off + 14;
  const daddr = get32(buf, l3 + 16);
  const v = routeInput(ns, dev, get32(buf, l3 + 12), daddr, pkt.mark);
  const r = routeInputResult;
  if (v === RouteIn.MULTICAST || v === RouteIn.BROADCAST) {
    const cast = v === RouteIn.MULTICAST ? RTN_MULTICAST : RTN_BROADCAST;
    w.trace.record(pkt.id, Ev.ROUTE, ns.id, dev.ifindex, cast, daddr);
    localDeliver(ns, dev, pkt, cast);
    return;
  }
  if (routeInputLooked) w.trace.record(pkt.id, Ev.ROUTE, ns.id, r !== null && r.dev !== null ? r.dev.ifindex : 0, r === null ? 0 : r.type, r === null ? 0 : r.gw !== 0 ? r.gw : daddr);
  switch (v) {
    case RouteIn.LOCAL:
      localDeliver(ns, dev, pkt, RTN_LOCAL);
      return;
    case RouteIn.FORWARD:
      ipForward(ns, dev, pkt, r!.dev!, r!.gw !== 0 ? r!.gw : daddr);
      return;
    case RouteIn.NO_ROUTE:
      icmpSend(ns, pkt, ICMP_DEST_UNREACH, ICMP_NET_UNREACH, 0, dev);
      break;
    case RouteIn.UNREACHABLE:
      icmpSend(ns, pkt, ICMP_DEST_UNREACH, ICMP_HOST_UNREACH, 0, dev);
      break;
    case RouteIn.PROHIBIT:
      icmpSend(ns, pkt, ICMP_DEST_UNREACH, ICMP_PKT_FILTERED, 0, dev);
      break;
  }
  w.drop(pkt, dev, ROUTE_IN_DROP[v]!);
}

/** The drop reason of a refusing routeInput() outcome, 0 for the outcomes that deliver or forward. */
export function routeInputDropReason(v: number): number {
  return ROUTE_IN_DROP[v] ?? 0;
}

/** The drop reason of each refusing routeInput() outcome. */
const ROUTE_IN_DROP: number[] = [];
ROUTE_IN_DROP[RouteIn.MARTIAN_SRC] = Drop.MARTIAN;
ROUTE_IN_DROP[RouteIn.MARTIAN_DST] = Drop.MARTIAN_DST;
ROUTE_IN_DROP[RouteIn.RP_FILTER] = Drop.RP_FILTER;
ROUTE_IN_DROP[RouteIn.MC_NOT_JOINED] = Drop.MC_NOT_JOINED;
ROUTE_IN_DROP[RouteIn.MC_BAD_SOURCE] = Drop.MC_BAD_SOURCE;
// ip_error with forwarding off: dropped silently.
ROUTE_IN_DROP[RouteIn.FORWARDING_DISABLED] = Drop.FORWARDING_DISABLED;
ROUTE_IN_DROP[RouteIn.NO_ROUTE] = Drop.NO_ROUTE;
ROUTE_IN_DROP[RouteIn.BLACKHOLE] = Drop.BLACKHOLE;
ROUTE_IN_DROP[RouteIn.UNREACHABLE] = Drop.UNREACHABLE;
ROUTE_IN_DROP[RouteIn.PROHIBIT] = Drop.PROHIBIT;

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
