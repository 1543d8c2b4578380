// The seam that installs NetworkPolicy enforcement into a built Gen 4: per node, the Cilium-style translation of
// the policies for the node's local endpoints, written through that node's PolicyMaps (ipcache CIDR identities,
// endpoint enforcement flags, policy map entries). Typed structurally on what Gen 4 exposes (BuiltGen4.ebpf[] with
// `policy` and `endpoints`, BuiltGen4.identities) so this file does not depend on the builder's internals.
import type { IdentityAllocator } from "../k8s/agent/identity.js";
import type { PolicyMaps } from "../k8s/agent/policy-maps.js";
import { ciliumPolicy, IDENTITY_SCOPE_LOCAL, writeCiliumPolicy, type CiliumEndpoint, type CiliumPolicyState } from "../k8s/netpol/cilium.js";
import type { NetworkPolicy } from "../k8s/types.js";
import type { BuiltGeneration } from "./types.js";

export interface Gen4PolicyTarget {
  cluster: BuiltGeneration["cluster"];
  ebpf: { name: string; policy: PolicyMaps; endpoints: Map<string, number> }[];
  identities: IdentityAllocator;
}

export function hasEbpfPolicy(g: BuiltGeneration): g is BuiltGeneration & Gen4PolicyTarget {
  const x = g as Partial<Gen4PolicyTarget>;
  return Array.isArray(x.ebpf) && x.identities !== undefined;
}

/**
 * Install (or re-sync after a change) the cluster's policies into every node of a built Gen 4, as cilium-agent
 * regenerates endpoints: the new state is written first (so nothing still allowed sees a transient deny), then
 * policy map entries and CIDR identities the new state no longer has are deleted (dump and diff). Conntrack is
 * left alone: the programs re-check every non-reply packet against the maps, so open connections follow the
 * new policy at their next packet. Returns the number of policy map entries wanted.
 */
export function installCiliumPolicy(g: Gen4PolicyTarget): number {
  const byKey = new Map(g.cluster.pods.map((p) => [`${p.metadata.namespace}/${p.metadata.name}`, p]));
  // CIDR identities are cluster-wide (the same CIDR has the same identity on every node).
  const cidrIds = new Map<string, number>();
  let entries = 0;
  for (const n of g.ebpf) {
    const local: CiliumEndpoint[] = [];
    for (const [key, id] of n.endpoints) {
      const pod = byKey.get(key);
      if (pod !== undefined) local.push({ pod, id });
    }
    const s = ciliumPolicy(g.cluster, g.identities, local, cidrIds);
    // Endpoints keep their ifindex: upsertEndpoint rewrites the whole value, so read it back first.
    for (const e of s.endpoints) e.ifindex = endpointIfindex(n.policy, e.ip);
    writeCiliumPolicy(n.policy, s);
    prune(n.policy, s);
    entries += s.entries.length;
  }
  return entries;
}

/** A NetworkPolicy change: the cluster's policies become `policies` and every node's maps follow. */
export function updateCiliumPolicy(g: Gen4PolicyTarget, policies: NetworkPolicy[]): number {
  g.cluster.networkPolicies = policies;
  return installCiliumPolicy(g);
}

const hex = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("hex");

function prune(maps: PolicyMaps, s: CiliumPolicyState): void {
  const want = new Set(s.entries.map((e) => hex(maps.policyKey(e))));
  const stale = [...maps.policy.entries()].map(([k]) => k).filter((k) => !want.has(hex(k)));
  for (const k of stale) {
    maps.policy.delete(k);
    maps.ops.deletes++;
  }
  const cidrs = new Set(s.cidrs.map((c) => hex(maps.ipcacheKey(c.cidr))));
  const gone = [...maps.ipcache.entries()]
    .filter(([k, v]) => new DataView(v.buffer, v.byteOffset).getUint32(0, true) >= IDENTITY_SCOPE_LOCAL && !cidrs.has(hex(k)))
    .map(([k]) => k);
  for (const k of gone) {
    maps.ipcache.delete(k);
    maps.ops.deletes++;
  }
}

function endpointIfindex(maps: PolicyMaps, ip: string): number {
  const k = new Uint8Array(4);
  const [a, b, c, d] = ip.split(".").map(Number);
  k.set([a!, b!, c!, d!]);
  const v = maps.endpoints.lookup(k);
  return v === null || v === undefined ? 0 : new DataView(v.buffer, v.byteOffset).getUint32(0, true);
}
