// NetworkPolicy as Cilium's agent renders it into the maps of programs/policy.ts (pkg/policy -> pkg/maps):
//  - identities: a pod's label set in its namespace -> numeric identity (IdentityAllocator); selectors are
//    matched against identities (a peer selects the identities of the pods it matches: same labels, same
//    namespace, same namespace labels, same answer);
//  - ipBlock peers: CIDR identities of local scope (1<<24 | n, as Cilium allocates them) for cidr minus except,
//    written to the ipcache LPM. A pod's own /32 keeps its pod identity (longest prefix), so an ipBlock does not
//    select pods: Cilium documents that CIDR rules do not apply to traffic between cluster endpoints;
//  - per endpoint and direction: the enforcement flag when any policy selects it, and one policy map entry
//    {remote identity (0 = any), dport (0 = any), protocol (0 = any), direction} per allowed combination;
//    endPort ranges are expanded to one entry per port; named ports resolved on the destination pod.
// Setup only (objects fine); the per-packet decision is the program's map lookups.
import type { EndpointSpec, PolicyEntry, PolicyMaps } from "../agent/policy-maps.js";
import type { IdentityAllocator } from "../agent/identity.js";
import type { Cluster, NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort, Pod } from "../types.js";
import { cidrMinus } from "./cidr.js";
import { peerMatchesPod, policySelects, resolveNamedPort } from "./semantics.js";

/** Cilium's IdentityScopeLocal: CIDR identities live above 1<<24. */
export const IDENTITY_SCOPE_LOCAL = 1 << 24;

export interface CiliumEndpoint {
  pod: Pod;
  /** Endpoint id (lxc id) on its node. */
  id: number;
}

export interface CiliumPolicyState {
  /** Endpoints with their enforcement flags and identity. */
  endpoints: EndpointSpec[];
  /** CIDR identities to put in the ipcache. */
  cidrs: { cidr: string; identity: number }[];
  entries: PolicyEntry[];
}

const podsOf = (c: Cluster) => c.pods.filter((p) => !p.hostNetwork && p.podIP !== "" && p.phase !== "Succeeded" && p.phase !== "Failed");

/** The translation for the local endpoints of one node. `cidrIds` keeps CIDR identities stable across nodes. */
export function ciliumPolicy(c: Cluster, ids: IdentityAllocator, local: CiliumEndpoint[], cidrIds = new Map<string, number>()): CiliumPolicyState {
  const idOf = (p: Pod) => ids.allocate(p.metadata.labels, p.metadata.namespace);
  const cidrId = (cidr: string) => {
    let id = cidrIds.get(cidr);
    if (id === undefined) cidrIds.set(cidr, (id = IDENTITY_SCOPE_LOCAL | (cidrIds.size + 1)));
    return id;
  };
  const state: CiliumPolicyState = { endpoints: [], cidrs: [], entries: [] };
  const seen = new Set<string>();
  const add = (e: PolicyEntry) => {
    const k = `${e.endpointId} ${e.direction} ${e.identity ?? 0} ${e.port ?? 0} ${e.protocol ?? 0}`;
    if (!seen.has(k)) {
      seen.add(k);
      state.entries.push(e);
    }
  };
  /** Remote identities of a peer (with the pods behind them, for named ports); null peer = any (identity 0). */
  const remotes = (peer: NetworkPolicyPeer | null, ns: string): { identity: number; pod: Pod | null }[] => {
    if (peer === null) return [{ identity: 0, pod: null }];
    if (peer.ipBlock !== null) return cidrMinus(peer.ipBlock.cidr, peer.ipBlock.except).map((cidr) => ({ identity: cidrId(cidr), pod: null }));
    return podsOf(c).filter((p) => peerMatchesPod(c, peer, ns, p)).map((p) => ({ identity: idOf(p), pod: p }));
  };
  const ports = (pp: NetworkPolicyPort | null, dst: Pod | null): { port: number; protocol: string | number }[] => {
    if (pp === null) return [{ port: 0, protocol: 0 }];
    if (pp.port === null) return [{ port: 0, protocol: pp.protocol }];
    if (typeof pp.port === "string") {
      const p = dst === null ? null : resolveNamedPort(dst, pp.port, pp.protocol);
      return p === null ? [] : [{ port: p, protocol: pp.protocol }];
    }
    const out: { port: number; protocol: string }[] = [];
    for (let p = pp.port; p <= (pp.endPort ?? pp.port); p++) out.push({ port: p, protocol: pp.protocol });
    return out;
  };
  for (const ep of local) {
    const pols = (type: "Ingress" | "Egress") => c.networkPolicies.filter((p) => p.policyTypes.includes(type) && policySelects(p, ep.pod));
    const ing = pols("Ingress");
    const eg = pols("Egress");
    state.endpoints.push({ ip: ep.pod.podIP, id: ep.id, identity: idOf(ep.pod), enforceIngress: ing.length > 0, enforceEgress: eg.length > 0 });
    const rules = (pol: NetworkPolicy, dir: "ingress" | "egress") => {
      for (const rule of dir === "ingress" ? pol.ingress : pol.egress) {
        const peers: (NetworkPolicyPeer | null)[] = rule.peers.length === 0 ? [null] : rule.peers;
        const pps: (NetworkPolicyPort | null)[] = rule.ports.length === 0 ? [null] : rule.ports;
        for (const peer of peers) {
          for (const r of remotes(peer, pol.metadata.namespace)) {
            for (const pp of pps) {
              // Named ports: on the endpoint itself (ingress), on each remote pod (egress); any-peer egress
              // with a named port: one entry per pod of the cluster carrying it.
              if (dir === "egress" && pp !== null && typeof pp.port === "string" && r.pod === null && peer === null) {
                for (const d of podsOf(c)) for (const x of ports(pp, d)) add({ endpointId: ep.id, direction: dir, identity: idOf(d), ...x });
                continue;
              }
              for (const x of ports(pp, dir === "ingress" ? ep.pod : r.pod)) add({ endpointId: ep.id, direction: dir, identity: r.identity, ...x });
            }
          }
        }
      }
    };
    for (const p of ing) rules(p, "ingress");
    for (const p of eg) rules(p, "egress");
  }
  state.cidrs = [...cidrIds].map(([cidr, identity]) => ({ cidr, identity }));
  return state;
}

/** Write the translation through the agent's map writers (ipcache, lxc, policy). */
export function writeCiliumPolicy(maps: PolicyMaps, s: CiliumPolicyState): void {
  for (const x of s.cidrs) maps.upsertIpcache(x.cidr, x.identity);
  for (const e of s.endpoints) maps.upsertEndpoint(e);
  for (const e of s.entries) {
    const { protocol, ...rest } = e;
    maps.upsertPolicy(protocol === 0 ? rest : e);
  }
}
