// kube-proxy nftables mode (pkg/proxy/nftables, the knftables-based proxier): one `ip kube-proxy` table whose
// services chain dispatches through verdict maps (service-ips, service-nodeports), with per-service chains
// that pick an endpoint with `numgen random mod N vmap`, no-endpoint verdicts in maps, LoadBalancerSourceRanges
// in firewall-* chains and ClientIP affinity in per-endpoint dynamic sets. The transaction printed by
// `nftTransaction` is what kube-proxy feeds to `nft -f`; nftables-list.ts prints what `nft list ruleset` shows.
import type { Cluster } from "../types.js";
import { hash16 } from "./chain-names.js";
import { buildServicePorts, categorizeEndpoints, externallyAccessible, usesClusterEndpoints, type ProxyEndpoint, type ProxyServicePort } from "./service-ports.js";
import { cidrContains, parseCidr, parseIpv4 } from "../../packet/addr.js";

export interface NftProxierOptions {
  nodeName: string;
  /** The node's IPs: the first is proxier.nodeIP; all fill nodeport-ips (--nodeport-addresses "primary"). */
  nodeIPs: string[];
  /** --cluster-cidr for the LocalTrafficDetector; "" = not implemented. */
  clusterCIDR: string;
  /** --masquerade-all. */
  masqueradeAll?: boolean;
  masqueradeBit?: number;
}

export interface NftHook {
  type: "filter" | "nat";
  hook: "prerouting" | "input" | "forward" | "output" | "postrouting";
  priority: number;
}
export interface NftChain {
  name: string;
  hook?: NftHook;
  comment?: string;
  rules: { rule: string; comment?: string }[];
}
export interface NftElement {
  key: string;
  value?: string;
  comment?: string;
}
export interface NftSet {
  name: string;
  map: boolean;
  type: string;
  flags?: string[];
  timeoutSeconds?: number;
  comment?: string;
  elements: NftElement[];
}
/** One `ip kube-proxy` table, sets and chains in creation order. */
export interface NftTable {
  comment: string;
  sets: NftSet[];
  chains: NftChain[];
}

/** hashAndTruncate: base32(sha256(name))[:8] + "-" + name (names here never reach the 240-character limit). */
export function nftNameBase(name: string): string {
  return `${hash16(name).slice(0, 8)}-${name}`;
}
const servicePortBase = (sp: ProxyServicePort) => nftNameBase(`${sp.namespace}/${sp.name}/${sp.proto}/${sp.portName}`);
const endpointBase = (sp: ProxyServicePort, ep: ProxyEndpoint) => nftNameBase(`${sp.namespace}/${sp.name}/${sp.proto}/${sp.portName}__${ep.ip}/${ep.port}`);

const BASE_CHAINS: [string, NftHook][] = [
  ["filter-prerouting-pre-dnat", { type: "filter", hook: "prerouting", priority: -110 }],
  ["filter-output-pre-dnat", { type: "filter", hook: "output", priority: -110 }],
  ["filter-forward", { type: "filter", hook: "forward", priority: 0 }],
  ["filter-input", { type: "filter", hook: "input", priority: 0 }],
  ["filter-output", { type: "filter", hook: "output", priority: 0 }],
  ["nat-output", { type: "nat", hook: "output", priority: -100 }],
  ["nat-postrouting", { type: "nat", hook: "postrouting", priority: 100 }],
  ["nat-prerouting", { type: "nat", hook: "prerouting", priority: -100 }],
];
/** nftablesJumpChains: [dst, src, extra match]. */
const JUMPS: [string, string, string][] = [
  ["nodeport-endpoints-check", "filter-input", "ct state new"],
  ["service-endpoints-check", "filter-input", "ct state new"],
  ["service-endpoints-check", "filter-forward", "ct state new"],
  ["service-endpoints-check", "filter-output", "ct state new"],
  ["firewall-check", "filter-prerouting-pre-dnat", "ct state new"],
  ["firewall-check", "filter-output-pre-dnat", "ct state new"],
  ["services", "nat-output", ""],
  ["services", "nat-prerouting", ""],
  ["masquerading", "nat-postrouting", ""],
  ["cluster-ips-check", "filter-forward", "ct state new"],
  ["cluster-ips-check", "filter-output", "ct state new"],
];

class TableBuilder {
  readonly t: NftTable = { comment: "rules for kube-proxy", sets: [], chains: [] };
  private readonly chains = new Map<string, NftChain>();
  private readonly sets = new Map<string, NftSet>();
  chain(name: string, extra: Partial<NftChain> = {}): NftChain {
    let c = this.chains.get(name);
    if (!c) {
      c = { name, rules: [], ...extra };
      this.chains.set(name, c);
      this.t.chains.push(c);
    }
    return c;
  }
  rule(chain: string, rule: string, comment?: string): void {
    this.chain(chain).rules.push(comment ? { rule, comment } : { rule });
  }
  set(s: Omit<NftSet, "elements">): NftSet {
    let x = this.sets.get(s.name);
    if (!x) {
      x = { ...s, elements: [] };
      this.sets.set(s.name, x);
      this.t.sets.push(x);
    }
    return x;
  }
  /** nftElementStorage.ensureElem: one element per key (a multi-port Service adds its ClusterIP once). */
  element(set: string, e: NftElement): void {
    const s = this.sets.get(set)!;
    let keys = this.keys.get(set);
    if (keys === undefined) this.keys.set(set, (keys = new Set(s.elements.map((x) => x.key))));
    if (keys.has(e.key)) return;
    keys.add(e.key);
    s.elements.push(e);
  }
  /** Keys already in each set (a scan of the elements per add made a sync of n Services quadratic). */
  private readonly keys = new Map<string, Set<string>>();
}

/** syncProxyRules (full sync) for one node. */
export function generateNftables(cluster: Cluster, opts: NftProxierOptions): NftTable {
  const b = new TableBuilder();
  const mark = `0x${(1 << (opts.masqueradeBit ?? 14)).toString(16)}`;
  const local = opts.clusterCIDR;
  const node = cluster.nodes.find((n) => n.metadata.name === opts.nodeName);

  // setupNFTables
  const addrMap = (name: string, comment: string) => b.set({ name, map: true, type: "ipv4_addr . inet_proto . inet_service : verdict", comment });
  b.set({ name: "cluster-ips", map: false, type: "ipv4_addr", comment: "Active ClusterIPs" });
  b.set({ name: "nodeport-ips", map: false, type: "ipv4_addr", comment: "IPs that accept NodePort traffic" });
  addrMap("firewall-ips", "destinations that are subject to LoadBalancerSourceRanges");
  b.set({ name: "no-endpoint-nodeports", map: true, type: "inet_proto . inet_service : verdict", comment: "vmap to drop or reject packets to service nodeports with no endpoints" });
  addrMap("no-endpoint-services", "vmap to drop or reject packets to services with no endpoints");
  addrMap("service-ips", "ClusterIP, ExternalIP and LoadBalancer IP traffic");
  b.set({ name: "service-nodeports", map: true, type: "inet_proto . inet_service : verdict", comment: "NodePort traffic" });
  b.chain("cluster-ips-check");
  for (const [name, hook] of BASE_CHAINS) b.chain(name, { hook });
  for (const name of ["firewall-check", "mark-for-masquerade", "masquerading", "nodeport-endpoints-check"]) b.chain(name);
  b.chain("reject-chain", { comment: "helper for @no-endpoint-services / @no-endpoint-nodeports" });
  b.chain("services");
  b.chain("service-endpoints-check");

  b.rule("cluster-ips-check", "ip daddr @cluster-ips reject", "Reject traffic to invalid ports of ClusterIPs");
  b.rule("cluster-ips-check", `ip daddr { ${cluster.serviceCIDR} } drop`, "Drop traffic to unallocated ClusterIPs");
  for (const [dst, src, extra] of JUMPS) b.rule(src, `${extra ? `${extra} ` : ""}jump ${dst}`);
  b.rule("firewall-check", "ip daddr . meta l4proto . th dport vmap @firewall-ips");
  b.rule("mark-for-masquerade", `mark set mark or ${mark}`);
  b.rule("masquerading", `mark and ${mark} == 0 return`);
  b.rule("masquerading", `mark set mark xor ${mark}`);
  b.rule("masquerading", "masquerade fully-random");
  b.rule("nodeport-endpoints-check", "ip daddr @nodeport-ips meta l4proto . th dport vmap @no-endpoint-nodeports");
  b.rule("reject-chain", "reject");
  b.rule("services", "ip daddr . meta l4proto . th dport vmap @service-ips");
  b.rule("services", "ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports");
  for (const ip of opts.nodeIPs) b.element("nodeport-ips", { key: ip });
  b.rule("service-endpoints-check", "ip daddr . meta l4proto . th dport vmap @no-endpoint-services");

  for (const sp of buildServicePorts(cluster, opts.nodeName)) {
    const base = servicePortBase(sp);
    const proto = sp.proto;
    const port = String(sp.port);
    const { clusterEndpoints, localEndpoints, allReachableEndpoints, hasAnyEndpoints: hasEndpoints } = categorizeEndpoints(sp, node, opts.nodeName);
    const epBase = new Map(allReachableEndpoints.map((ep) => [ep, endpointBase(sp, ep)]));
    const epChain = (ep: ProxyEndpoint) => `endpoint-${epBase.get(ep) ?? endpointBase(sp, ep)}`;
    const affinitySet = (ep: ProxyEndpoint) => `affinity-${epBase.get(ep) ?? endpointBase(sp, ep)}`;

    for (const ep of allReachableEndpoints) b.chain(epChain(ep));
    const clusterPolicyChain = `service-${base}`;
    const usesClusterPolicyChain = clusterEndpoints.length > 0 && usesClusterEndpoints(sp);
    if (usesClusterPolicyChain) b.chain(clusterPolicyChain);
    const localPolicyChain = `local-${base}`;
    const usesLocalPolicyChain = localEndpoints.length > 0 && (sp.internalPolicyLocal || (externallyAccessible(sp) && sp.externalPolicyLocal));
    if (usesLocalPolicyChain) b.chain(localPolicyChain);

    let internalTrafficChain = clusterPolicyChain;
    let hasInternalEndpoints = hasEndpoints;
    if (sp.internalPolicyLocal) {
      internalTrafficChain = localPolicyChain;
      if (localEndpoints.length === 0) hasInternalEndpoints = false;
    }
    let externalPolicyChain = clusterPolicyChain;
    let hasExternalEndpoints = hasEndpoints;
    if (sp.externalPolicyLocal) {
      externalPolicyChain = localPolicyChain;
      if (localEndpoints.length === 0) hasExternalEndpoints = false;
    }
    const externalTrafficChain = `external-${base}`;
    const usesExternalTrafficChain = hasEndpoints && externallyAccessible(sp);
    if (usesExternalTrafficChain) b.chain(externalTrafficChain);

    let internalVerdict = "";
    let externalVerdict = "";
    if (!hasEndpoints) internalVerdict = externalVerdict = "goto reject-chain";
    else {
      if (!hasInternalEndpoints) internalVerdict = "drop";
      if (!hasExternalEndpoints) externalVerdict = "drop";
    }

    b.element("cluster-ips", { key: sp.clusterIP });
    const key = (ip: string) => `${ip} . ${proto} . ${port}`;
    if (hasInternalEndpoints) b.element("service-ips", { key: key(sp.clusterIP), value: `goto ${internalTrafficChain}` });
    else b.element("no-endpoint-services", { key: key(sp.clusterIP), value: internalVerdict, comment: sp.spn });
    for (const ip of sp.externalIPs) {
      if (hasEndpoints) b.element("service-ips", { key: key(ip), value: `goto ${externalTrafficChain}` });
      if (!hasExternalEndpoints) b.element("no-endpoint-services", { key: key(ip), value: externalVerdict, comment: sp.spn });
    }
    const usesFWChain = sp.loadBalancerVIPs.length > 0 && sp.loadBalancerSourceRanges.length > 0;
    const fwChain = `firewall-${base}`;
    if (usesFWChain) b.chain(fwChain);
    for (const ip of sp.loadBalancerVIPs) {
      if (hasEndpoints) b.element("service-ips", { key: key(ip), value: `goto ${externalTrafficChain}` });
      if (usesFWChain) b.element("firewall-ips", { key: key(ip), value: `goto ${fwChain}` });
    }
    if (!hasExternalEndpoints) for (const ip of sp.loadBalancerVIPs) b.element("no-endpoint-services", { key: key(ip), value: externalVerdict, comment: sp.spn });
    if (sp.nodePort !== 0) {
      const npKey = `${proto} . ${sp.nodePort}`;
      if (hasEndpoints) b.element("service-nodeports", { key: npKey, value: `goto ${externalTrafficChain}` });
      if (!hasExternalEndpoints) b.element("no-endpoint-nodeports", { key: npKey, value: externalVerdict, comment: sp.spn });
    }

    if (hasInternalEndpoints) {
      if (opts.masqueradeAll) b.rule(internalTrafficChain, `ip daddr ${sp.clusterIP} jump mark-for-masquerade`);
      else if (local) b.rule(internalTrafficChain, `ip daddr ${sp.clusterIP} ip saddr != ${local} jump mark-for-masquerade`);
    }
    if (usesExternalTrafficChain) {
      if (!sp.externalPolicyLocal) b.rule(externalTrafficChain, "jump mark-for-masquerade");
      else {
        if (local) b.rule(externalTrafficChain, `ip saddr ${local} goto ${clusterPolicyChain}`, "short-circuit pod traffic");
        b.rule(externalTrafficChain, "fib saddr type local jump mark-for-masquerade", "masquerade local traffic");
        b.rule(externalTrafficChain, `fib saddr type local goto ${clusterPolicyChain}`, "short-circuit local traffic");
      }
      if (hasExternalEndpoints) b.rule(externalTrafficChain, `goto ${externalPolicyChain}`);
    }
    if (usesFWChain) {
      const sources = [...sp.loadBalancerSourceRanges];
      const nodeIP = opts.nodeIPs[0];
      if (nodeIP && sp.loadBalancerSourceRanges.some((c) => cidrContains(parseCidr(c), parseIpv4(nodeIP)))) sources.push(...sp.loadBalancerVIPs);
      b.rule(fwChain, `ip saddr != { ${sources.join(" , ")} } drop`);
    }
    if (sp.sessionAffinityClientIP) {
      for (const ep of allReachableEndpoints) {
        b.set({ name: affinitySet(ep), map: false, type: "ipv4_addr", flags: ["dynamic", "timeout"], timeoutSeconds: sp.stickyMaxAgeSeconds });
      }
    }
    const writeServiceToEndpointRules = (chain: string, eps: ProxyEndpoint[]) => {
      if (sp.sessionAffinityClientIP) for (const ep of eps) b.rule(chain, `ip saddr @${affinitySet(ep)} goto ${epChain(ep)}`);
      const vmap = eps.map((ep, i) => `${i} : goto ${epChain(ep)}`).join(" , ");
      b.rule(chain, `numgen random mod ${eps.length} vmap { ${vmap} }`);
    };
    if (usesClusterPolicyChain) writeServiceToEndpointRules(clusterPolicyChain, clusterEndpoints);
    if (usesLocalPolicyChain) writeServiceToEndpointRules(localPolicyChain, localEndpoints);
    for (const ep of allReachableEndpoints) {
      const c = epChain(ep);
      b.rule(c, `ip saddr ${ep.ip} jump mark-for-masquerade`);
      if (sp.sessionAffinityClientIP) b.rule(c, `update @${affinitySet(ep)} { ip saddr }`);
      b.rule(c, `meta l4proto ${proto} dnat to ${ep.str}`);
    }
  }
  return b.t;
}

const q = (s: string) => `"${s}"`;

/** The transaction kube-proxy runs with `nft -f`: table, sets and chains first, then rules and elements. */
export function nftTransaction(t: NftTable): string {
  const out: string[] = [`add table ip kube-proxy { comment ${q(t.comment)} ; }`];
  for (const s of t.sets) {
    const parts = [`type ${s.type}`];
    if (s.flags) parts.push(`flags ${s.flags.join(",")}`);
    if (s.timeoutSeconds !== undefined) parts.push(`timeout ${s.timeoutSeconds}s`);
    if (s.comment) parts.push(`comment ${q(s.comment)}`);
    out.push(`add ${s.map ? "map" : "set"} ip kube-proxy ${s.name} { ${parts.join(" ; ")} ; }`);
  }
  for (const c of t.chains) {
    const parts: string[] = [];
    if (c.hook) parts.push(`type ${c.hook.type} hook ${c.hook.hook} priority ${c.hook.priority}`);
    if (c.comment) parts.push(`comment ${q(c.comment)}`);
    out.push(`add chain ip kube-proxy ${c.name}${parts.length ? ` { ${parts.join(" ; ")} ; }` : ""}`);
  }
  for (const c of t.chains) for (const r of c.rules) out.push(`add rule ip kube-proxy ${c.name} ${r.rule}${r.comment ? ` comment ${q(r.comment)}` : ""}`);
  for (const s of t.sets) {
    for (const e of s.elements) {
      out.push(`add element ip kube-proxy ${s.name} { ${e.key}${e.comment ? ` comment ${q(e.comment)}` : ""}${e.value ? ` : ${e.value}` : ""} }`);
    }
  }
  return out.join("\n") + "\n";
}
