// The martian matrix shared by the kernel differential test (test/kernel/martian-route.test.ts, the referee) and
// the model's own test (test/net/martian.test.ts): one router namespace R with
//   r0 10.77.0.1/24 (towards a sender S, 10.77.0.2), r1 10.78.0.1/24 (default route via 10.78.0.254),
//   r2 with no address (10.79.0.0/24 routed out of it, as a Calico/Cilium host-side veth),
// forwarding on, route_localnet and accept_local at their defaults (0), and each case an input route lookup for
// (source, destination, input device), as `ip route get DST from SRC iif DEV` performs it.
import { exec, type NetNamespace, type World } from "../../src/net/index.js";
import { RouteIn, routeInput, routeInputResult } from "../../src/net/ipv4.js";
import { parseIpv4 } from "../../src/packet/addr.js";

export const ROUTER_COMMANDS = (p: string): Array<[string, string]> => [
  [`${p}r`, "ip link set lo up"],
  [`${p}s`, "ip link set lo up"],
  [`${p}u`, "ip link set lo up"],
  [`${p}r`, `ip link add r0 type veth peer name s0 netns ${p}s`],
  [`${p}r`, `ip link add r1 type veth peer name u0 netns ${p}u`],
  [`${p}r`, `ip link add r2 type veth peer name u2 netns ${p}u`],
  [`${p}r`, "ip link set r0 up"],
  [`${p}r`, "ip link set r1 up"],
  [`${p}r`, "ip link set r2 up"],
  [`${p}s`, "ip link set s0 up"],
  [`${p}u`, "ip link set u0 up"],
  [`${p}u`, "ip link set u2 up"],
  [`${p}r`, "ip addr add 10.77.0.1/24 brd + dev r0"],
  [`${p}r`, "ip addr add 10.78.0.1/24 brd + dev r1"],
  [`${p}s`, "ip addr add 10.77.0.2/24 brd + dev s0"],
  [`${p}u`, "ip addr add 10.78.0.254/24 brd + dev u0"],
  [`${p}r`, "ip route add default via 10.78.0.254 dev r1"],
  [`${p}r`, "ip route add 10.79.0.0/24 dev r2"],
  [`${p}r`, "sysctl -w net.ipv4.ip_forward=1"],
];

/** [source, destination, input device] */
export const MARTIAN_CASES: Array<[string, string, string]> = [
  // sources the kernel refuses before any lookup
  ["0.0.0.0", "10.77.0.1", "r0"],
  ["0.1.2.3", "10.77.0.1", "r0"],
  ["0.1.2.3", "8.8.8.8", "r0"],
  ["224.0.0.5", "10.77.0.1", "r0"],
  ["239.1.1.1", "8.8.8.8", "r0"],
  ["255.255.255.255", "10.77.0.1", "r0"],
  ["127.0.0.1", "10.77.0.1", "r0"],
  ["127.0.0.1", "8.8.8.8", "r0"],
  // destinations
  ["10.77.0.2", "0.0.0.0", "r0"],
  ["10.77.0.2", "0.1.2.3", "r0"],
  ["10.77.0.2", "127.0.0.1", "r0"],
  ["127.0.0.1", "127.0.0.1", "r0"],
  ["10.77.0.2", "127.1.2.3", "r2"],
  // broadcast
  ["0.0.0.0", "255.255.255.255", "r0"],
  ["0.0.0.0", "0.0.0.0", "r0"],
  ["10.77.0.2", "255.255.255.255", "r0"],
  ["10.77.0.2", "10.77.0.255", "r0"],
  ["10.77.0.255", "10.77.0.1", "r0"],
  ["10.77.0.1", "255.255.255.255", "r0"],
  // multicast destinations: 224.0.0.1 is joined by every device, others are not
  ["10.77.0.2", "224.0.0.1", "r0"],
  ["10.77.0.2", "224.0.0.5", "r0"],
  ["10.77.0.2", "239.1.2.3", "r0"],
  ["0.0.0.0", "224.0.0.1", "r0"],
  ["127.0.0.1", "224.0.0.1", "r0"],
  ["224.0.0.9", "224.0.0.1", "r0"],
  ["10.77.0.1", "224.0.0.1", "r0"],
  ["8.8.8.8", "224.0.0.1", "r0"],
  // our own addresses as source (accept_local=0)
  ["10.77.0.1", "10.77.0.1", "r0"],
  ["10.78.0.1", "10.77.0.1", "r0"],
  ["10.77.0.1", "8.8.8.8", "r0"],
  ["10.78.0.1", "10.79.0.5", "r0"],
  ["10.77.0.1", "10.78.0.1", "r2"],
  // class E, link-local: not martians to Linux
  ["10.77.0.2", "240.0.0.1", "r0"],
  ["10.77.0.2", "255.255.255.254", "r0"],
  ["240.0.0.1", "10.77.0.1", "r0"],
  ["10.77.0.2", "169.254.1.1", "r0"],
  ["169.254.1.1", "10.77.0.1", "r0"],
  // spoofed sources: rp_filter's business
  ["8.8.8.8", "10.77.0.1", "r0"],
  ["8.8.8.8", "10.79.0.5", "r0"],
  ["10.79.0.7", "10.78.0.254", "r0"],
  ["10.79.0.7", "10.77.0.2", "r2"],
  ["8.8.8.8", "10.77.0.2", "r2"],
  ["10.77.0.2", "10.78.0.9", "r2"],
  ["10.78.0.9", "10.77.0.1", "r1"],
  // ordinary traffic
  ["10.77.0.2", "10.77.0.1", "r0"],
  ["10.77.0.2", "10.78.0.1", "r0"],
  ["10.77.0.2", "8.8.8.8", "r0"],
  ["10.77.0.2", "10.79.0.5", "r0"],
];

export const RP_FILTER_MODES = [0, 1, 2];

/** The model's answer for one case, in the words `ip route get` (and the kernel's martian counters) give. */
export function modelRouteGet(ns: NetNamespace, src: string, dst: string, iif: string): string {
  const v = routeInput(ns, ns.dev(iif), parseIpv4(src), parseIpv4(dst), 0);
  switch (v) {
    case RouteIn.LOCAL:
      return "local";
    case RouteIn.BROADCAST:
      return "broadcast";
    case RouteIn.MULTICAST:
      return "multicast";
    case RouteIn.FORWARD:
      return `unicast dev ${routeInputResult!.dev!.name}`;
    case RouteIn.MARTIAN_SRC:
      return "martian source";
    case RouteIn.MARTIAN_DST:
      return "martian destination";
    case RouteIn.RP_FILTER:
      // ip route get answers EINVAL for both; the kernel counts both in in_martian_src.
      return "martian source";
    case RouteIn.MC_NOT_JOINED:
    case RouteIn.MC_BAD_SOURCE:
      return "invalid";
    case RouteIn.FORWARDING_DISABLED:
      return "no route to host";
    case RouteIn.NO_ROUTE:
      return "network is unreachable";
    default:
      return `route ${v}`;
  }
}

/** Build the router topology in a model world (namespaces `${p}r`, `${p}s`, `${p}u`). */
export function buildModelRouter(w: World, p: string, rpFilter: number, routeLocalnet = 0): NetNamespace {
  for (const x of ["r", "s", "u"]) w.addNamespace(`${p}${x}`);
  for (const [ns, cmd] of ROUTER_COMMANDS(p)) exec(w.ns(ns), cmd);
  exec(w.ns(`${p}r`), `sysctl -w net.ipv4.conf.all.rp_filter=${rpFilter}`);
  exec(w.ns(`${p}r`), `sysctl -w net.ipv4.conf.all.route_localnet=${routeLocalnet}`);
  return w.ns(`${p}r`);
}
