// The seam that installs NetworkPolicy enforcement into a Gen 1-3 node: Felix-style filter rules for the node's
// own workloads, put before the other payloads (Felix inserts its FORWARD jump at the top, `-I FORWARD 1`), then
// the node's netfilter installed as usual (installIptables). Gen 1 dispatches by pod address (bridge), Gen 2/3 by
// the host-side veth.
import { calicoPolicySave, type PolicyEndpoint } from "../k8s/netpol/calico.js";
import { installIptables } from "./cluster-dataplane.js";
import { mergeSave } from "./masquerade.js";
import { IptablesHooks } from "../net/iptables.js";
import type { NetworkPolicy } from "../k8s/types.js";
import { hasEbpfPolicy, installCiliumPolicy } from "./policy-cilium.js";
import { buildGeneration } from "./index.js";
import type { BuildOptions, BuiltGeneration, GenNumber, NodePlane } from "./types.js";
import type { Cluster } from "../k8s/types.js";

export const POLICY_OWNER = "calico-felix-policy";

/** The policy payload for one node of a built generation. */
export function nodePolicySave(node: NodePlane, g: BuiltGeneration): string {
  const byKey = new Map(g.cluster.pods.map((p) => [`${p.metadata.namespace}/${p.metadata.name}`, p]));
  const endpoints: PolicyEndpoint[] = [];
  for (const pp of g.pods) {
    if (pp.node !== node.name || pp.hostIf === null || pp.hostNetwork) continue;
    const pod = byKey.get(pp.key);
    if (pod !== undefined) endpoints.push({ pod, hostIf: pp.hostIf });
  }
  return calicoPolicySave(g.cluster, endpoints, { dispatch: g.gen === 1 ? "address" : "interface" });
}

/** BuildOptions.installNetfilter for Gen 1-3 with NetworkPolicy enforcement. */
export function installPolicyIptables(node: NodePlane, g: BuiltGeneration): void {
  node.netfilter.payloads = node.netfilter.payloads.filter((p) => p.owner !== POLICY_OWNER);
  node.netfilter.payloads.unshift({ owner: POLICY_OWNER, text: nodePolicySave(node, g) });
  installIptables(node);
}

/** Build a generation with its NetworkPolicy enforcement installed. */
export function buildWithPolicy(gen: GenNumber, cluster: Cluster, opts: BuildOptions = {}): BuiltGeneration {
  if (gen === 4) {
    // Gen 4's programs must be compiled first (prepareGen4Programs); policies go into its maps, not iptables.
    const g = buildGeneration(gen, cluster, opts);
    if (hasEbpfPolicy(g)) installCiliumPolicy(g);
    return g;
  }
  return buildGeneration(gen, cluster, { ...opts, installNetfilter: installPolicyIptables });
}

/**
 * Felix reprogramming the node after a NetworkPolicy change: the policy payload is regenerated and the tables
 * replaced (iptables-restore), while the conntrack table stays (it is the kernel's, not iptables'): connections
 * already open pass on the RELATED,ESTABLISHED accept, only new connections see the new policy - what Calico and
 * every iptables-based plugin do. Gen 1-3 only.
 */
export function updatePolicies(g: BuiltGeneration, policies: NetworkPolicy[]): void {
  g.cluster.networkPolicies = policies;
  for (const node of g.nodes) {
    const old = node.ns.netfilter;
    const conntrack = old instanceof IptablesHooks ? old.conntrack : undefined;
    node.netfilter.payloads = node.netfilter.payloads.filter((p) => p.owner !== POLICY_OWNER);
    node.netfilter.payloads.unshift({ owner: POLICY_OWNER, text: nodePolicySave(node, g) });
    const [first, ...rest] = node.netfilter.payloads;
    const text = rest.reduce((acc, p) => mergeSave(acc, p.text), first!.text);
    node.ns.netfilter = new IptablesHooks(node.ns, text, conntrack === undefined ? {} : { conntrack });
  }
}
