// A built generation as the tools print it: per node `ip addr`, `ip route`, `bridge fdb`, `ip neigh` and the
// routes the node learned from the control plane (flanneld, BIRD); per pod its sandbox's `ip addr`/`ip route`.
// Used by `tcbox topology`, the golden tests and the kernel differential test.
import { bridgeFdb, ipAddr, ipNeigh, ipRoute, type NetNamespace } from "../net/index.js";
import type { BuiltGeneration } from "./types.js";

export interface NsView {
  name: string;
  ipAddr: string;
  ipRoute: string;
  bridgeFdb: string;
  ipNeigh: string;
}

export interface NodeView extends NsView {
  ip: string;
  learnedRoutes: string[];
  netfilter: { owners: string[]; installed: boolean };
  pods: { key: string; ip: string; hostIf: string | null; hostNetwork: boolean }[];
}

export function nsView(ns: NetNamespace): NsView {
  return { name: ns.name, ipAddr: ipAddr(ns), ipRoute: ipRoute(ns), bridgeFdb: bridgeFdb(ns), ipNeigh: ipNeigh(ns) };
}

export function nodeView(g: BuiltGeneration, name: string): NodeView {
  const n = g.nodes.find((x) => x.name === name);
  if (n === undefined) throw new Error(`no node ${name}`);
  return {
    ...nsView(n.ns),
    ip: n.ip,
    learnedRoutes: [...n.learnedRoutes],
    netfilter: { owners: n.netfilter.payloads.map((p) => p.owner), installed: n.netfilter.installed },
    pods: g.pods.filter((p) => p.node === name).map((p) => ({ key: p.key, ip: p.ip, hostIf: p.hostIf, hostNetwork: p.hostNetwork })),
  };
}

const section = (title: string, body: string) => `  # ${title}\n` + (body === "" ? "  (none)\n" : body.replace(/^(?=.)/gm, "  "));

/** Human text for one node: the four commands and the learned routes. */
export function nodeText(g: BuiltGeneration, name: string): string {
  const v = nodeView(g, name);
  return (
    `node ${v.name} (${v.ip})\n` +
    section("ip addr", v.ipAddr) +
    section("ip route", v.ipRoute) +
    section("bridge fdb", v.bridgeFdb) +
    section("ip neigh", v.ipNeigh) +
    section("learned routes", v.learnedRoutes.map((r) => r + "\n").join("")) +
    section("pods", v.pods.map((p) => `${p.key} ${p.ip}${p.hostNetwork ? " hostNetwork" : ` via ${p.hostIf}`}\n`).join(""))
  );
}

export function generationText(g: BuiltGeneration, node?: string): string {
  const names = node !== undefined ? [node] : g.nodes.map((n) => n.name);
  const head = `gen ${g.gen}: ${g.title}\n`;
  const failed = g.events.map((e) => `${e.type} ${e.reason} ${e.object}: ${e.message}\n`).join("");
  return head + names.map((n) => nodeText(g, n)).join("\n") + (failed === "" ? "" : `\nevents:\n${failed}`);
}
