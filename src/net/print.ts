// Namespaces printed the way iproute2 prints them (`ip addr`, `ip link`, `ip -d link`, `ip route`, `ip neigh`,
// `bridge fdb`), for tests of each generation's topology and for `tcbox ip`. Fields that only the kernel can
// know (qdisc statistics, lifetimes, promiscuity counters) are left out; see test/kernel/net for the
// normalisation used to compare against real output.
import { formatIpv4 } from "../packet/addr.js";
import {
  LinkKind,
  NUD_DELAY,
  NUD_FAILED,
  NUD_INCOMPLETE,
  NUD_NOARP,
  NUD_PERMANENT,
  NUD_PROBE,
  NUD_REACHABLE,
  NUD_STALE,
  RT_SCOPE_HOST,
  RT_SCOPE_LINK,
  RT_SCOPE_UNIVERSE,
  RT_TABLE_MAIN,
  RTN_NAMES,
  RTN_UNICAST,
  RTPROT_BOOT,
  RTPROT_NAMES,
} from "./constants.js";
import type { BridgeDevice } from "./bridge.js";
import type { NetDevice } from "./device.js";
import { macToString } from "./emit.js";
import type { NetNamespace } from "./netns.js";
import type { Route } from "./route.js";
import type { VxlanDevice } from "./vxlan.js";
import type { MacvlanDevice } from "./macvlan.js";

export function scopeName(s: number): string {
  return s === RT_SCOPE_UNIVERSE ? "global" : s === RT_SCOPE_LINK ? "link" : s === RT_SCOPE_HOST ? "host" : s === 200 ? "site" : String(s);
}

/** IF_OPER_* as `ip link` shows it. */
export function operState(d: NetDevice): string {
  if (!d.up) return "DOWN";
  if (d.kind === LinkKind.LOOPBACK || d.kind === LinkKind.VXLAN || d.kind === LinkKind.DUMMY) return "UNKNOWN";
  if (d.carrier) return "UP";
  return d.kind === LinkKind.VETH || d.kind === LinkKind.MACVLAN ? "LOWERLAYERDOWN" : "DOWN";
}

function linkLines(d: NetDevice, details: boolean): string[] {
  const master = d.master !== null ? ` master ${d.master.name}` : "";
  const lines = [
    `${d.ifindex}: ${d.name}${d.linkSuffix()}: <${d.flagNames().join(",")}> mtu ${d.mtu} qdisc ${d.up ? "noqueue" : "noop"}${master} state ${operState(d)} group default qlen 1000`,
  ];
  const peerNs = d.kind === LinkKind.VETH ? (d as unknown as { peer: NetDevice }).peer.ns : null;
  const netnsNote = peerNs !== null && peerNs !== d.ns ? ` link-netns ${peerNs.name}` : "";
  lines.push(
    d.kind === LinkKind.LOOPBACK
      ? `    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00`
      : `    link/ether ${macToString(d.mac)} brd ff:ff:ff:ff:ff:ff${netnsNote}`,
  );
  if (details) {
    if (d.kind === LinkKind.VXLAN) {
      const v = d as VxlanDevice;
      lines.push(
        `    vxlan id ${v.vni}${v.local ? ` local ${formatIpv4(v.local)}` : ""}${v.underlay ? ` dev ${v.underlay.name}` : ""} srcport 0 0 dstport ${v.dstport}${v.remoteLearning ? "" : " nolearning"} ttl auto ageing 300 ${v.udpCsum ? "udpcsum" : "noudpcsum"}`,
      );
    } else if (d.kind === LinkKind.VETH) lines.push("    veth");
    else if (d.kind === LinkKind.MACVLAN) lines.push(`    macvlan mode ${(d as MacvlanDevice).mode}`);
    else if (d.kind === LinkKind.BRIDGE) lines.push(`    bridge forward_delay 1500 hello_time 200 max_age 2000 ageing_time ${(d as BridgeDevice).ageingTime * 100} stp_state 0`);
    if (d.master !== null) lines.push(`    bridge_slave state forwarding hairpin ${d.hairpin ? "on" : "off"} learning ${d.learning ? "on" : "off"}`);
  }
  return lines;
}

/** `ip link` / `ip -d link` */
export function ipLink(ns: NetNamespace, opts: { details?: boolean; dev?: string } = {}): string {
  const devs = opts.dev !== undefined ? [ns.dev(opts.dev)] : ns.deviceList();
  return devs.flatMap((d) => linkLines(d, opts.details ?? false)).join("\n") + "\n";
}

/** `ip addr` */
export function ipAddr(ns: NetNamespace, dev?: string): string {
  const devs = dev !== undefined ? [ns.dev(dev)] : ns.deviceList();
  const out: string[] = [];
  for (const d of devs) {
    out.push(...linkLines(d, false));
    for (const a of ns.addrsOf(d)) {
      const brd = a.brd !== 0 ? ` brd ${formatIpv4(a.brd)}` : "";
      out.push(`    inet ${formatIpv4(a.addr)}/${a.len}${brd} scope ${scopeName(a.scope)}${a.secondary ? " secondary" : ""} ${d.name}`);
      out.push(`       valid_lft forever preferred_lft forever`);
    }
  }
  return out.join("\n") + "\n";
}

/** One route as iproute2's print_route writes it. */
export function formatRoute(r: Route): string {
  const parts: string[] = [];
  if (r.type !== RTN_UNICAST) parts.push(RTN_NAMES[r.type] ?? String(r.type));
  parts.push(r.len === 0 ? "default" : r.len === 32 ? formatIpv4(r.dst) : `${formatIpv4(r.dst)}/${r.len}`);
  if (r.gw !== 0) parts.push(`via ${formatIpv4(r.gw)}`);
  if (r.dev !== null) parts.push(`dev ${r.dev.name}`);
  if (r.proto !== RTPROT_BOOT) parts.push(`proto ${RTPROT_NAMES[r.proto] ?? r.proto}`);
  if (r.scope !== RT_SCOPE_UNIVERSE) parts.push(`scope ${scopeName(r.scope)}`);
  if (r.prefsrc !== 0) parts.push(`src ${formatIpv4(r.prefsrc)}`);
  if (r.metric !== 0) parts.push(`metric ${r.metric}`);
  if (r.onlink) parts.push("onlink");
  if (r.dev !== null && r.type === RTN_UNICAST && !r.dev.carrier) parts.push("linkdown");
  return parts.join(" ");
}

/** `ip route [show table ID]` (main by default). */
export function ipRoute(ns: NetNamespace, table = RT_TABLE_MAIN): string {
  const t = ns.tables.get(table);
  if (t === undefined) return "";
  const lines = t.routes().map(formatRoute);
  return lines.length === 0 ? "" : lines.join("\n") + "\n";
}

/** `ip rule` */
export function ipRule(ns: NetNamespace): string {
  const tname = (t: number) => (t === 255 ? "local" : t === 254 ? "main" : t === 253 ? "default" : String(t));
  return (
    ns.rules
      .map((r) => {
        const from = r.srcLen === 0 ? "all" : r.srcLen === 32 ? formatIpv4(r.src) : `${formatIpv4(r.src)}/${r.srcLen}`;
        const to = r.dstLen === 0 ? "" : ` to ${r.dstLen === 32 ? formatIpv4(r.dst) : `${formatIpv4(r.dst)}/${r.dstLen}`}`;
        const iif = r.iif ? ` iif ${r.iif}` : "";
        const mark = r.fwmask !== 0 ? ` fwmark 0x${r.fwmark.toString(16)}${r.fwmask !== 0xffffffff ? `/0x${r.fwmask.toString(16)}` : ""}` : "";
        return `${r.priority}:\tfrom ${from}${to}${iif}${mark} lookup ${tname(r.table)}`;
      })
      .join("\n") + "\n"
  );
}

export function nudName(state: number): string {
  switch (state) {
    case NUD_INCOMPLETE:
      return "INCOMPLETE";
    case NUD_REACHABLE:
      return "REACHABLE";
    case NUD_STALE:
      return "STALE";
    case NUD_DELAY:
      return "DELAY";
    case NUD_PROBE:
      return "PROBE";
    case NUD_FAILED:
      return "FAILED";
    case NUD_NOARP:
      return "NOARP";
    case NUD_PERMANENT:
      return "PERMANENT";
    default:
      return String(state);
  }
}

/** `ip neigh` */
export function ipNeigh(ns: NetNamespace): string {
  const lines = ns.neigh.list().map((n) => {
    const st = ns.neigh.state(n, ns.world.now);
    const ll = st === NUD_INCOMPLETE || st === NUD_FAILED ? "" : ` lladdr ${macToString(n.mac)}`;
    return `${formatIpv4(n.ip)} dev ${n.dev.name}${ll} ${nudName(st)}`;
  });
  return lines.length === 0 ? "" : lines.join("\n") + "\n";
}

/** `bridge fdb show`: bridge entries (master) then VXLAN device entries (self). */
export function bridgeFdb(ns: NetNamespace): string {
  const lines: string[] = [];
  for (const d of ns.deviceList()) {
    if (d.kind === LinkKind.BRIDGE) {
      const br = d as BridgeDevice;
      for (const e of br.fdbEntries()) {
        const flag = e.isLocal ? " permanent" : e.isStatic ? " static" : "";
        lines.push(`${macToString(e.mac)} dev ${e.port.name} master ${br.name}${flag}`);
      }
    } else if (d.kind === LinkKind.VXLAN) {
      const v = d as VxlanDevice;
      for (const list of v.fdb.values()) for (const e of list) lines.push(`${macToString(e.mac)} dev ${v.name} dst ${formatIpv4(e.dst)} self${e.permanent ? " permanent" : ""}`);
    }
  }
  return lines.length === 0 ? "" : lines.join("\n") + "\n";
}

/**
 * `ip route get DST [from SRC] [iif DEV]`: the route a packet would take, as iproute2 prints it
 * (`10.244.1.2 via 10.244.1.0 dev flannel.1 src 10.244.0.0`); `local ...` for our own addresses, or the error.
 */
export function ipRouteGet(ns: NetNamespace, dst: number, opts: { from?: number; iif?: string } = {}): string {
  const iif = opts.iif !== undefined ? ns.dev(opts.iif) : null;
  const r = ns.routeLookup(dst, opts.from ?? 0, iif, 0);
  if (r === null) return "RTNETLINK answers: Network is unreachable\n";
  const type = RTN_NAMES[r.type] ?? String(r.type);
  if (r.type !== RTN_UNICAST && r.type !== 2) return `RTNETLINK answers: ${r.type === 6 ? "Invalid argument" : r.type === 8 ? "Permission denied" : "No route to host"}\n`;
  const parts: string[] = [];
  if (r.type !== RTN_UNICAST) parts.push(type);
  parts.push(formatIpv4(dst));
  if (opts.from !== undefined) parts.push(`from ${formatIpv4(opts.from)}`);
  if (r.gw !== 0) parts.push(`via ${formatIpv4(r.gw)}`);
  parts.push(`dev ${r.type === 2 && iif === null ? "lo" : r.dev!.name}`);
  if (iif === null) parts.push(`src ${formatIpv4(opts.from ?? ns.routeSrc(r, dst))}`);
  else parts.push(`iif ${iif.name}`);
  return parts.join(" ") + "\n";
}
