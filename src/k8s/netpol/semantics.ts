// NetworkPolicy (networking.k8s.io/v1) semantics as the API documents them: the REFERENCE the tests compare each
// generation's enforcement against. It is never used to decide a verdict in a dataplane (the dataplanes decide on
// real packets with their own rules and maps). Setup and tests only: objects and strings are fine here.
//
// Facts modelled (k8s.io/api/networking/v1 types.go, the "Network Policies" concept page):
// - a pod is isolated for ingress (egress) when any policy in its namespace selects it with "Ingress" ("Egress")
//   in policyTypes; a non-isolated pod allows everything in that direction;
// - policies add up: a connection is allowed when any rule of any selecting policy allows it;
// - a rule matches when one of its ports matches (empty ports = all) AND one of its peers matches (empty = all);
// - within one peer, podSelector and namespaceSelector are AND'ed; podSelector alone means the policy's namespace;
//   ipBlock matches by address (cidr minus except) - CNI plugins apply it to pod addresses too (Calico, Cilium for
//   world/CIDR identities of pod IPs vary; we follow Calico: the address decides);
// - ports: protocol (default TCP), port by number (with endPort a range) or by name, a name resolved on the
//   destination pod's containerPorts with that protocol;
// - both the source's egress and the destination's ingress must allow a connection; replies pass (stateful);
// - traffic from a node to its own pods is allowed (kubelet probes) whatever the policies say.
import { cidrContains, parseCidr, parseIpv4 } from "../../packet/addr.js";
import { selectorMatches } from "../parse-core.js";
import type { Cluster, NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort, NetworkPolicyRule, Pod, Protocol } from "../types.js";

export type Direction = "Ingress" | "Egress";

/** The pods a policy applies to: its namespace, its podSelector. */
export function policySelects(pol: NetworkPolicy, pod: Pod): boolean {
  return pol.metadata.namespace === pod.metadata.namespace && selectorMatches(pol.podSelector, pod.metadata.labels);
}

/** Policies that isolate `pod` in `dir`. */
export function isolatingPolicies(cluster: Cluster, pod: Pod, dir: Direction): NetworkPolicy[] {
  return cluster.networkPolicies.filter((p) => p.policyTypes.includes(dir) && policySelects(p, pod));
}

function nsLabels(cluster: Cluster, name: string): Record<string, string> {
  const ns = cluster.namespaces.find((n) => n.metadata.name === name);
  // A namespace object always carries kubernetes.io/metadata.name (set by the apiserver since 1.21).
  return { ...(ns?.metadata.labels ?? {}), "kubernetes.io/metadata.name": name };
}

/** Does this peer match a pod (by selectors, or by its address for ipBlock) in a policy of namespace `policyNs`? */
export function peerMatchesPod(cluster: Cluster, peer: NetworkPolicyPeer, policyNs: string, pod: Pod): boolean {
  if (peer.ipBlock !== null) return ipBlockContains(peer.ipBlock, parseIpv4(pod.podIP));
  if (peer.namespaceSelector === null) {
    if (pod.metadata.namespace !== policyNs) return false;
  } else if (!selectorMatches(peer.namespaceSelector, nsLabels(cluster, pod.metadata.namespace))) return false;
  return peer.podSelector === null || selectorMatches(peer.podSelector, pod.metadata.labels);
}

export function ipBlockContains(b: { cidr: string; except: string[] }, ip: number): boolean {
  if (!cidrContains(parseCidr(b.cidr), ip)) return false;
  return !b.except.some((e) => cidrContains(parseCidr(e), ip));
}

/** Does a policy port match (port, protocol) on the destination pod `dst` (named ports resolved there)? */
export function portMatches(pp: NetworkPolicyPort, dst: Pod | null, port: number, protocol: Protocol): boolean {
  if (pp.protocol !== protocol) return false;
  if (pp.port === null) return true;
  if (typeof pp.port === "number") return port >= pp.port && port <= (pp.endPort ?? pp.port);
  if (dst === null) return false;
  return resolveNamedPort(dst, pp.port, protocol) === port;
}

/** A named port on a pod: the containerPort of that name and protocol, or null. */
export function resolveNamedPort(pod: Pod, name: string, protocol: Protocol): number | null {
  for (const c of pod.containers) for (const p of c.ports) if (p.name === name && p.protocol === protocol) return p.containerPort;
  return null;
}

function ruleAllows(cluster: Cluster, pol: NetworkPolicy, rule: NetworkPolicyRule, peer: Pod, dst: Pod, port: number, protocol: Protocol): boolean {
  if (rule.ports.length > 0 && !rule.ports.some((pp) => portMatches(pp, dst, port, protocol))) return false;
  if (rule.peers.length === 0) return true;
  return rule.peers.some((p) => peerMatchesPod(cluster, p, pol.metadata.namespace, peer));
}

/** Does `pod`'s side allow the connection in `dir` (peer = the other end)? */
export function sideAllows(cluster: Cluster, pod: Pod, dir: Direction, peer: Pod, dst: Pod, port: number, protocol: Protocol): boolean {
  const pols = isolatingPolicies(cluster, pod, dir);
  if (pols.length === 0) return true;
  return pols.some((pol) => (dir === "Ingress" ? pol.ingress : pol.egress).some((r) => ruleAllows(cluster, pol, r, peer, dst, port, protocol)));
}

/** The reference verdict for a new connection from pod `src` to pod `dst` on (port, protocol). */
export function connectionAllowed(cluster: Cluster, src: Pod, dst: Pod, port: number, protocol: Protocol): boolean {
  if (src.hostNetwork) return dst.nodeName === src.nodeName || sideAllows(cluster, dst, "Ingress", src, dst, port, protocol);
  return sideAllows(cluster, src, "Egress", dst, dst, port, protocol) && sideAllows(cluster, dst, "Ingress", src, dst, port, protocol);
}

/** The probes of the e2e suite: every ordered pair of non-hostNetwork pods, every containerPort of the destination. */
export interface ProbeCase {
  from: Pod;
  to: Pod;
  port: number;
  protocol: Protocol;
}

export function probeCases(cluster: Cluster): ProbeCase[] {
  const pods = cluster.pods.filter((p) => !p.hostNetwork && p.podIP !== "" && p.phase === "Running");
  const out: ProbeCase[] = [];
  for (const to of pods) {
    for (const c of to.containers) {
      for (const cp of c.ports) {
        for (const from of pods) if (from !== to) out.push({ from, to, port: cp.containerPort, protocol: cp.protocol });
      }
    }
  }
  return out;
}

export const podKeyOf = (p: Pod): string => `${p.metadata.namespace}/${p.metadata.name}`;
