// kube-proxy iptables mode: the ruleset syncProxyRules writes for one node (kubernetes pkg/proxy/iptables,
// v1.30+ structure). Rules are token lists in kube-proxy's own argument order, so `restorePayload` prints exactly
// what kube-proxy hands to iptables-restore; iptables-save.ts prints what the kernel then reports.
import type { Cluster } from "../types.js";
import { buildServicePorts, categorizeEndpoints, externallyAccessible, usesClusterEndpoints, type ProxyEndpoint, type ProxyServicePort } from "./service-ports.js";
import { cidrContains, parseCidr, parseIpv4 } from "../../packet/addr.js";

export const KUBE_SERVICES = "KUBE-SERVICES";
export const KUBE_EXTERNAL_SERVICES = "KUBE-EXTERNAL-SERVICES";
export const KUBE_NODEPORTS = "KUBE-NODEPORTS";
export const KUBE_POSTROUTING = "KUBE-POSTROUTING";
export const KUBE_MARK_MASQ = "KUBE-MARK-MASQ";
export const KUBE_FORWARD = "KUBE-FORWARD";
export const KUBE_PROXY_FIREWALL = "KUBE-PROXY-FIREWALL";
export const KUBE_PROXY_CANARY = "KUBE-PROXY-CANARY";
export const KUBE_FIREWALL = "KUBE-FIREWALL";
/** Above this many endpoints kube-proxy drops per-endpoint comments ("large cluster mode"). */
export const LARGE_CLUSTER_ENDPOINTS_THRESHOLD = 1000;
/** metrics.IPTablesCTStateInvalidDroppedNFAcctCounter / LocalhostNodePortAcceptedNFAcctCounter. */
export const NFACCT_CT_INVALID = "ct_state_invalid_dropped_pkts";
export const NFACCT_LOCALHOST_NODEPORT = "localhost_nps_accepted_pkts";

export interface IptablesProxierOptions {
  nodeName: string;
  /** The node's IPs; the first is proxier.nodeIP (used for loadBalancerSourceRanges "allow from node"). */
  nodeIPs: string[];
  /** --cluster-cidr for the LocalTrafficDetector (detect-local-mode ClusterCIDR); "" = not implemented. */
  clusterCIDR: string;
  /** --iptables-masquerade-bit, default 14 (0x4000). */
  masqueradeBit?: number;
  /** --masquerade-all. */
  masqueradeAll?: boolean;
  /** --iptables-localhost-nodeports, default true. */
  localhostNodePorts?: boolean;
  /** nfacct counters exist (kube-proxy created them): adds the -m nfacct rules. Default false. */
  nfacct?: boolean;
  /** iptables supports MASQUERADE --random-fully (any iptables >= 1.6.2). Default true. */
  randomFully?: boolean;
  /** nf_conntrack_tcp_be_liberal is set: no INVALID drop rule. Default false. */
  conntrackTCPLiberal?: boolean;
}

/**
 * One rule as kube-proxy writes it: the arguments after "-A CHAIN" joined by spaces, comments with spaces in
 * double quotes (kept as one string per rule: a 10k-Service sync holds ~100k rules, and token arrays were most
 * of its garbage).
 */
export interface KubeRule {
  chain: string;
  args: string;
}

export interface KubeProxyTables {
  filterChains: string[];
  filterRules: KubeRule[];
  natChains: string[];
  natRules: KubeRule[];
  /** Counters the sync reports (for tests and bench). */
  stats: { services: number; endpoints: number; largeClusterMode: boolean };
}

/** iptablesJumpChains + iptablesKubeletJumpChains: the jumps EnsureRule(Prepend) installs in built-in chains. */
export const JUMP_CHAINS: { table: "filter" | "nat"; dst: string; src: string; comment: string; extra: string[] }[] = [
  { table: "filter", dst: KUBE_EXTERNAL_SERVICES, src: "INPUT", comment: "kubernetes externally-visible service portals", extra: ["-m", "conntrack", "--ctstate", "NEW"] },
  { table: "filter", dst: KUBE_EXTERNAL_SERVICES, src: "FORWARD", comment: "kubernetes externally-visible service portals", extra: ["-m", "conntrack", "--ctstate", "NEW"] },
  { table: "filter", dst: KUBE_NODEPORTS, src: "INPUT", comment: "kubernetes health check service ports", extra: [] },
  { table: "filter", dst: KUBE_SERVICES, src: "FORWARD", comment: "kubernetes service portals", extra: ["-m", "conntrack", "--ctstate", "NEW"] },
  { table: "filter", dst: KUBE_SERVICES, src: "OUTPUT", comment: "kubernetes service portals", extra: ["-m", "conntrack", "--ctstate", "NEW"] },
  { table: "filter", dst: KUBE_FORWARD, src: "FORWARD", comment: "kubernetes forwarding rules", extra: [] },
  { table: "filter", dst: KUBE_PROXY_FIREWALL, src: "INPUT", comment: "kubernetes load balancer firewall", extra: ["-m", "conntrack", "--ctstate", "NEW"] },
  { table: "filter", dst: KUBE_PROXY_FIREWALL, src: "OUTPUT", comment: "kubernetes load balancer firewall", extra: ["-m", "conntrack", "--ctstate", "NEW"] },
  { table: "filter", dst: KUBE_PROXY_FIREWALL, src: "FORWARD", comment: "kubernetes load balancer firewall", extra: ["-m", "conntrack", "--ctstate", "NEW"] },
  { table: "nat", dst: KUBE_SERVICES, src: "OUTPUT", comment: "kubernetes service portals", extra: [] },
  { table: "nat", dst: KUBE_SERVICES, src: "PREROUTING", comment: "kubernetes service portals", extra: [] },
  { table: "nat", dst: KUBE_POSTROUTING, src: "POSTROUTING", comment: "kubernetes postrouting rules", extra: [] },
  { table: "filter", dst: KUBE_FIREWALL, src: "INPUT", comment: "", extra: [] },
  { table: "filter", dst: KUBE_FIREWALL, src: "OUTPUT", comment: "", extra: [] },
];

const q = (s: string) => `"${s}"`;

/** computeProbability: fmt.Sprintf("%0.10f", 1/n). */
export function probability(n: number): string {
  return (1 / n).toFixed(10);
}

/** syncProxyRules for one node. */
export function generateIptables(cluster: Cluster, opts: IptablesProxierOptions): KubeProxyTables {
  const mark = `0x${(1 << (opts.masqueradeBit ?? 14)).toString(16)}`;
  const markMask = `${mark}/${mark}`;
  const localhostNodePorts = opts.localhostNodePorts ?? true;
  const nfacct = opts.nfacct ?? false;
  const nodeIP = opts.nodeIPs[0] ?? "";
  const detectLocal = opts.clusterCIDR;
  const node = cluster.nodes.find((n) => n.metadata.name === opts.nodeName);

  const filterChains = [KUBE_SERVICES, KUBE_EXTERNAL_SERVICES, KUBE_FORWARD, KUBE_NODEPORTS, KUBE_PROXY_FIREWALL];
  const natChains = [KUBE_SERVICES, KUBE_NODEPORTS, KUBE_POSTROUTING, KUBE_MARK_MASQ];
  const filterRules: KubeRule[] = [];
  const natRules: KubeRule[] = [];
  const nat = (chain: string, ...args: string[]) => natRules.push({ chain, args: args.join(" ") });
  const filter = (chain: string, ...args: string[]) => filterRules.push({ chain, args: args.join(" ") });

  nat(KUBE_POSTROUTING, "-m", "mark", "!", "--mark", markMask, "-j", "RETURN");
  nat(KUBE_POSTROUTING, "-j", "MARK", "--xor-mark", mark);
  nat(KUBE_POSTROUTING, "-m", "comment", "--comment", q("kubernetes service traffic requiring SNAT"), "-j", "MASQUERADE", ...(opts.randomFully ?? true ? ["--random-fully"] : []));
  nat(KUBE_MARK_MASQ, "-j", "MARK", "--or-mark", mark);
  if (localhostNodePorts) {
    // route_localnet makes NodePorts reachable on 127.0.0.1; this rule closes the hole it opens (issue 90259).
    filterChains.push(KUBE_FIREWALL);
    filter(KUBE_FIREWALL, "-m", "comment", "--comment", q("block incoming localnet connections"), "-d", "127.0.0.0/8", "!", "-s", "127.0.0.0/8", "-m", "conntrack", "!", "--ctstate", "RELATED,ESTABLISHED,DNAT", "-j", "DROP");
  }

  const ports = buildServicePorts(cluster, opts.nodeName);
  let totalEndpoints = 0;
  for (const sp of ports) totalEndpoints += sp.endpoints.length;
  const largeClusterMode = totalEndpoints > LARGE_CLUSTER_ENDPOINTS_THRESHOLD;
  const svcComment = (args: string[], comment: string) => (largeClusterMode ? args : [...args, "-m", "comment", "--comment", comment]);

  for (const sp of ports) {
    const proto = sp.proto;
    const name = sp.spn;
    const { clusterEndpoints, localEndpoints, allReachableEndpoints, hasAnyEndpoints: hasEndpoints } = categorizeEndpoints(sp, node, opts.nodeName);
    const clusterPolicyChain = sp.clusterPolicyChain;
    const usesClusterPolicyChain = clusterEndpoints.length > 0 && usesClusterEndpoints(sp);
    const localPolicyChain = sp.localPolicyChain;
    const usesLocalPolicyChain = localEndpoints.length > 0 && (sp.internalPolicyLocal || (externallyAccessible(sp) && sp.externalPolicyLocal));

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
    const externalTrafficChain = sp.externalChain;
    // Based on hasEndpoints, not hasExternalEndpoints: the short-circuit rules for local traffic are needed
    // even when no endpoint is usable by external traffic.
    const usesExternalTrafficChain = hasEndpoints && externallyAccessible(sp);
    const fwChain = sp.firewallChain;
    const usesFWChain = hasEndpoints && sp.loadBalancerVIPs.length > 0 && sp.loadBalancerSourceRanges.length > 0;
    const loadBalancerTrafficChain = usesFWChain ? fwChain : externalTrafficChain;

    let internalTarget = "";
    let internalComment = "";
    let externalTarget = "";
    let externalComment = "";
    if (!hasEndpoints) {
      internalTarget = externalTarget = "REJECT";
      internalComment = externalComment = q(`${name} has no endpoints`);
    } else {
      if (!hasInternalEndpoints) {
        internalTarget = "DROP";
        internalComment = q(`${name} has no local endpoints`);
      }
      if (!hasExternalEndpoints) {
        externalTarget = "DROP";
        externalComment = q(`${name} has no local endpoints`);
      }
    }
    const port = String(sp.port);

    // Capture the ClusterIP.
    if (hasInternalEndpoints) {
      nat(KUBE_SERVICES, "-m", "comment", "--comment", q(`${name} cluster IP`), "-m", proto, "-p", proto, "-d", sp.clusterIP, "--dport", port, "-j", internalTrafficChain);
    } else {
      filter(KUBE_SERVICES, "-m", "comment", "--comment", internalComment, "-m", proto, "-p", proto, "-d", sp.clusterIP, "--dport", port, "-j", internalTarget);
    }
    // Capture externalIPs.
    for (const ip of sp.externalIPs) {
      if (hasEndpoints) nat(KUBE_SERVICES, "-m", "comment", "--comment", q(`${name} external IP`), "-m", proto, "-p", proto, "-d", ip, "--dport", port, "-j", externalTrafficChain);
      if (!hasExternalEndpoints) filter(KUBE_EXTERNAL_SERVICES, "-m", "comment", "--comment", externalComment, "-m", proto, "-p", proto, "-d", ip, "--dport", port, "-j", externalTarget);
    }
    // Capture load-balancer ingress.
    for (const ip of sp.loadBalancerVIPs) {
      if (hasEndpoints) nat(KUBE_SERVICES, "-m", "comment", "--comment", q(`${name} loadbalancer IP`), "-m", proto, "-p", proto, "-d", ip, "--dport", port, "-j", loadBalancerTrafficChain);
      if (usesFWChain) filter(KUBE_PROXY_FIREWALL, "-m", "comment", "--comment", q(`${name} traffic not accepted by ${fwChain}`), "-m", proto, "-p", proto, "-d", ip, "--dport", port, "-j", "DROP");
    }
    if (!hasExternalEndpoints) {
      for (const ip of sp.loadBalancerVIPs) filter(KUBE_EXTERNAL_SERVICES, "-m", "comment", "--comment", externalComment, "-m", proto, "-p", proto, "-d", ip, "--dport", port, "-j", externalTarget);
    }
    // Capture node ports.
    if (sp.nodePort !== 0) {
      const np = String(sp.nodePort);
      if (hasEndpoints) {
        if (localhostNodePorts && nfacct) {
          nat(KUBE_NODEPORTS, "-m", "comment", "--comment", name, "-m", proto, "-p", proto, "-d", "127.0.0.0/8", "--dport", np, "-m", "nfacct", "--nfacct-name", NFACCT_LOCALHOST_NODEPORT, "-j", externalTrafficChain);
        }
        nat(KUBE_NODEPORTS, "-m", "comment", "--comment", name, "-m", proto, "-p", proto, "--dport", np, "-j", externalTrafficChain);
      }
      if (!hasExternalEndpoints) {
        filter(KUBE_EXTERNAL_SERVICES, "-m", "comment", "--comment", externalComment, "-m", "addrtype", "--dst-type", "LOCAL", "-m", proto, "-p", proto, "--dport", np, "-j", externalTarget);
      }
    }
    // Health-check node port: accepted whether or not this node has local endpoints.
    if (sp.healthCheckNodePort !== 0) {
      filter(KUBE_NODEPORTS, "-m", "comment", "--comment", q(`${name} health check node port`), "-m", "tcp", "-p", "tcp", "--dport", String(sp.healthCheckNodePort), "-j", "ACCEPT");
    }

    // Internal traffic: masquerade off-cluster sources reaching the ClusterIP (they may bounce off-node).
    if (hasInternalEndpoints) {
      const args = ["-m", "comment", "--comment", q(`${name} cluster IP`), "-m", proto, "-p", proto, "-d", sp.clusterIP, "--dport", port];
      if (opts.masqueradeAll) nat(internalTrafficChain, ...args, "-j", KUBE_MARK_MASQ);
      else if (detectLocal) nat(internalTrafficChain, ...args, "!", "-s", detectLocal, "-j", KUBE_MARK_MASQ);
    }

    if (usesExternalTrafficChain) {
      natChains.push(externalTrafficChain);
      if (!sp.externalPolicyLocal) {
        nat(externalTrafficChain, "-m", "comment", "--comment", q(`masquerade traffic for ${name} external destinations`), "-j", KUBE_MARK_MASQ);
      } else {
        if (detectLocal) {
          nat(externalTrafficChain, "-m", "comment", "--comment", q(`pod traffic for ${name} external destinations`), "-s", detectLocal, "-j", clusterPolicyChain);
        }
        nat(externalTrafficChain, "-m", "comment", "--comment", q(`masquerade LOCAL traffic for ${name} external destinations`), "-m", "addrtype", "--src-type", "LOCAL", "-j", KUBE_MARK_MASQ);
        nat(externalTrafficChain, "-m", "comment", "--comment", q(`route LOCAL traffic for ${name} external destinations`), "-m", "addrtype", "--src-type", "LOCAL", "-j", clusterPolicyChain);
      }
      if (hasExternalEndpoints) nat(externalTrafficChain, "-j", externalPolicyChain);
    }

    if (usesFWChain) {
      natChains.push(fwChain);
      const base = ["-m", "comment", "--comment", q(`${name} loadbalancer IP`)];
      let allowFromNode = false;
      for (const cidr of sp.loadBalancerSourceRanges) {
        nat(fwChain, ...base, "-s", cidr, "-j", externalTrafficChain);
        if (nodeIP && cidrContains(parseCidr(cidr), parseIpv4(nodeIP))) allowFromNode = true;
      }
      // A VIP bound locally loops a node's own request back with the VIP as source: let it through.
      if (allowFromNode) for (const ip of sp.loadBalancerVIPs) nat(fwChain, ...base, "-s", ip, "-j", externalTrafficChain);
      nat(fwChain, "-m", "comment", "--comment", q(`other traffic to ${name} will be dropped by KUBE-PROXY-FIREWALL`));
    }

    if (usesClusterPolicyChain) {
      natChains.push(clusterPolicyChain);
      writeServiceToEndpointRules(nat, sp, clusterPolicyChain, clusterEndpoints, svcComment);
    }
    if (usesLocalPolicyChain) {
      natChains.push(localPolicyChain);
      writeServiceToEndpointRules(nat, sp, localPolicyChain, localEndpoints, svcComment);
    }
    for (const ep of allReachableEndpoints) {
      natChains.push(ep.chain);
      const args = svcComment([], name);
      // Hairpin: a pod reaching its own Service through this endpoint is masqueraded so the reply returns here.
      nat(ep.chain, ...args, "-s", ep.ip, "-j", KUBE_MARK_MASQ);
      const dnat = [...args];
      if (sp.sessionAffinityClientIP) dnat.push("-m", "recent", "--name", ep.chain, "--set");
      dnat.push("-m", proto, "-p", proto, "-j", "DNAT", "--to-destination", ep.str);
      nat(ep.chain, ...dnat);
    }
  }

  // Tail call into KUBE-NODEPORTS: must be the last rule of KUBE-SERVICES (nodePortAddresses matches all).
  nat(KUBE_SERVICES, "-m", "comment", "--comment", q("kubernetes service nodeports; NOTE: this must be the last rule in this chain"), "-m", "addrtype", "--dst-type", "LOCAL", ...(localhostNodePorts ? [] : ["!", "-d", "127.0.0.0/8"]), "-j", KUBE_NODEPORTS);

  if (!opts.conntrackTCPLiberal) {
    filter(KUBE_FORWARD, "-m", "conntrack", "--ctstate", "INVALID", ...(nfacct ? ["-m", "nfacct", "--nfacct-name", NFACCT_CT_INVALID] : []), "-j", "DROP");
  }
  filter(KUBE_FORWARD, "-m", "comment", "--comment", q("kubernetes forwarding rules"), "-m", "mark", "--mark", markMask, "-j", "ACCEPT");
  filter(KUBE_FORWARD, "-m", "comment", "--comment", q("kubernetes forwarding conntrack rule"), "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT");

  return { filterChains, filterRules, natChains, natRules, stats: { services: ports.length, endpoints: totalEndpoints, largeClusterMode } };
}

function writeServiceToEndpointRules(
  nat: (chain: string, ...args: string[]) => void,
  sp: ProxyServicePort,
  chain: string,
  endpoints: ProxyEndpoint[],
  svcComment: (args: string[], comment: string) => string[],
): void {
  if (sp.sessionAffinityClientIP) {
    for (const ep of endpoints) {
      const args = svcComment([], q(`${sp.spn} -> ${ep.str}`));
      nat(chain, ...args, "-m", "recent", "--name", ep.chain, "--rcheck", "--seconds", String(sp.stickyMaxAgeSeconds), "--reap", "-j", ep.chain);
    }
  }
  // Probabilities 1/(n-i): each rule takes its share of what the previous rules left; the last always matches.
  const n = endpoints.length;
  endpoints.forEach((ep, i) => {
    const args = svcComment([], q(`${sp.spn} -> ${ep.str}`));
    if (i < n - 1) args.push("-m", "statistic", "--mode", "random", "--probability", probability(n - i));
    nat(chain, ...args, "-j", ep.chain);
  });
}

/** The exact text kube-proxy passes to `iptables-restore --noflush --counters`. */
export function restorePayload(t: KubeProxyTables): string {
  const lines: string[] = ["*filter"];
  for (const c of t.filterChains) lines.push(`:${c} - [0:0]`);
  for (const r of t.filterRules) lines.push(r.args ? `-A ${r.chain} ${r.args}` : `-A ${r.chain}`);
  lines.push("COMMIT", "*nat");
  for (const c of t.natChains) lines.push(`:${c} - [0:0]`);
  for (const r of t.natRules) lines.push(r.args ? `-A ${r.chain} ${r.args}` : `-A ${r.chain}`);
  lines.push("COMMIT");
  return lines.join("\n") + "\n";
}
