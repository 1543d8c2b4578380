// tcbox compare: the same connections through each generation, each built fresh from the same cluster and seed,
// in the JSON contract of issue 5 item 6 (gens, addresses, flows[].results[gen], summary).
import { addressesOf, buildGeneration, type BuiltGeneration, type GenNumber } from "../gens/index.js";
import { buildGen4, prepareGen4Programs, type Gen4Tunnel } from "../gens/gen4.js";
import { installCiliumPolicy } from "../gens/policy-cilium.js";
import { buildWithPolicy } from "../gens/policy-iptables.js";
import type { Cluster } from "../k8s/types.js";
import { join } from "node:path";
import { GenerationCapture } from "./capture.js";
import { runConnection, type FlowResult, type FlowSpec } from "./engine.js";

export interface WorkloadEntry extends FlowSpec {
  count: number;
}

export interface CompareJson {
  gens: number[];
  addresses: Record<string, { pods: Record<string, string>; nodes: Record<string, string> }>;
  flows: { id: number; spec: number; from: string; to: string; protocol: string; results: Record<string, FlowResult> }[];
  summary: {
    connections: number;
    /** `note`: a difference real dataplanes have too (see knownDifference), not a tcbox bug. */
    disagreements: { id: number; field: string; values: Record<string, unknown>; note?: string }[];
    reachability_disagreements: number;
    /** How many of the reachability disagreements are known differences of the real dataplanes (with a note). */
    reachability_explained: number;
    /** Additive: per generation, the connections' results summed (see GenTotals). */
    totals: Record<string, GenTotals>;
  };
}

/** One generation's results over every connection. */
export interface GenTotals {
  /** Connections delivered to a receiver, and those denied by policy or dropped. */
  delivered: number;
  denied: number;
  dropped: number;
  /** Sums of the per-connection counters. */
  rules_evaluated: number;
  map_lookups: number;
  conntrack_entries: number;
  /** The largest per-packet encapsulation overhead seen (bytes), and how many connections were encapsulated. */
  encap_bytes: number;
  encapsulated: number;
}

export function totalsOf(results: FlowResult[]): GenTotals {
  const t: GenTotals = { delivered: 0, denied: 0, dropped: 0, rules_evaluated: 0, map_lookups: 0, conntrack_entries: 0, encap_bytes: 0, encapsulated: 0 };
  for (const x of results) {
    if (x.delivered) t.delivered++;
    if (x.verdict === "denied") t.denied++;
    else if (x.verdict === "dropped") t.dropped++;
    t.rules_evaluated += x.rules_evaluated;
    t.map_lookups += x.map_lookups;
    t.conntrack_entries += x.conntrack_entries;
    t.encap_bytes = Math.max(t.encap_bytes, x.encap_bytes);
    if (x.encap_bytes > 0) t.encapsulated++;
  }
  return t;
}

/** Every client pod (not hostNetwork, not a Service backend of kube-system) to every Service port, plus the internet. */
export function defaultWorkload(c: Cluster): WorkloadEntry[] {
  const out: WorkloadEntry[] = [];
  const clients = c.pods.filter((p) => !p.hostNetwork && p.podIP !== "" && p.metadata.namespace !== "kube-system");
  for (const p of clients) {
    for (const s of c.services) {
      if (s.clusterIP === "None" || s.clusterIP === "") continue;
      for (const sp of s.ports) {
        if (sp.protocol !== "TCP" && sp.protocol !== "UDP") continue;
        out.push({ from: `${p.metadata.namespace}/${p.metadata.name}`, to: `service/${s.metadata.namespace}/${s.metadata.name}:${sp.port}`, protocol: sp.protocol, count: 1 });
      }
    }
  }
  if (clients[0] !== undefined) out.push({ from: `${clients[0].metadata.namespace}/${clients[0].metadata.name}`, to: "8.8.8.8:53", protocol: "UDP", count: 1 });
  return out;
}

/** Each generation with its NetworkPolicy enforcement where it really enforces it: Felix-style iptables chains in
 *  Gen 1-3, identities and policy map entries in Gen 4. */
async function build(gen: GenNumber, c: Cluster, seed: number, opts: CompareOptions): Promise<BuiltGeneration> {
  if (gen === 4) {
    await prepareGen4Programs();
    const g4 = buildGen4(c, { seed, tunnel: opts.gen4Tunnel });
    installCiliumPolicy(g4);
    return g4;
  }
  return buildWithPolicy(gen, c, { seed });
}

export interface CompareOptions {
  /** Gen 4's routing mode: "disabled" (native routing, the default, as GKE Dataplane V2) or "vxlan" (cilium_vxlan). */
  gen4Tunnel?: Gen4Tunnel;
  /** Write DIR/gen{N}.pcapng: every frame on every interface while the workload runs (src/compare/capture.ts). */
  pcapDir?: string;
}

export async function compare(c: Cluster, workload: WorkloadEntry[], gens: GenNumber[], seed: number, opts: CompareOptions = {}): Promise<CompareJson> {
  const out: CompareJson = { gens: [...gens], addresses: {}, flows: [], summary: { connections: 0, disagreements: [], reachability_disagreements: 0, reachability_explained: 0, totals: {} } };
  let id = 0;
  workload.forEach((w, spec) => {
    for (let k = 0; k < w.count; k++) out.flows.push({ id: id++, spec, from: w.from, to: w.to, protocol: w.protocol, results: {} });
  });
  for (const gen of gens) {
    const g = await build(gen, c, seed, opts);
    out.addresses[String(gen)] = addressesOf(g);
    // The same seeded source ports in every generation.
    let sport = 32768 + (seed % 1000);
    const cap = opts.pcapDir === undefined ? null : new GenerationCapture(g, join(opts.pcapDir, `gen${gen}.pcapng`));
    try {
      for (const f of out.flows) {
        f.results[String(gen)] = runConnection(g, workload[f.spec]!, sport++, `workload entry ${f.spec}`);
      }
    } finally {
      cap?.close();
    }
  }
  out.summary.connections = out.flows.length;
  for (const g of gens) out.summary.totals[String(g)] = totalsOf(out.flows.map((f) => f.results[String(g)]!));
  for (const f of out.flows) {
    for (const field of ["delivered", "verdict", "dst_pod", "src_seen"] as const) {
      // dst_pod: a pod or not (each generation picks its own backend); src_seen: whose address the receiver saw.
      const key = (g: number) => {
        const r = f.results[String(g)]!;
        if (field === "dst_pod") return r.dst_pod === null ? null : "pod";
        if (field === "src_seen") return seenAs(r.src_seen, out.addresses[String(g)]!, f.from);
        return r[field];
      };
      if (new Set(gens.map(key)).size > 1) {
        const note = field === "src_seen" ? null : knownDifference(f.from, gens, (g) => f.results[String(g)]!);
        out.summary.disagreements.push({ id: f.id, field, values: Object.fromEntries(gens.map((g) => [String(g), f.results[String(g)]![field]])), ...(note !== null ? { note } : {}) });
        if (field === "delivered") {
          out.summary.reachability_disagreements++;
          if (note !== null) out.summary.reachability_explained++;
        }
      }
    }
  }
  return out;
}

/** Service loopback (hairpin) under an ingress policy: a pod that reaches itself through a Service. Cilium
 *  skips policy for it (the flow carries the service loopback address 169.254.42.1, whose identity no policy
 *  names; cilium/cilium#15321, "bpf: Skip policy enforcements for service loopback case"), while iptables-based
 *  policy (Calico/kube-router style, Gen 1-3) checks the pod's own address against its ingress rules, so a pod
 *  whose policy does not admit itself is denied. Both are what the real dataplanes do: NetworkPolicy leaves service
 *  hairpin implementation-defined (kubernetes-sigs/network-policy-api#343). */
const SERVICE_LOOPBACK_NOTE =
  "service loopback, implementation-defined in NetworkPolicy (kubernetes-sigs/network-policy-api#343): Cilium skips policy when a pod reaches itself through a Service (cilium/cilium#15321); iptables policy checks the pod's own address against its ingress rules";

/** A note when the generations' difference on this connection is one the real dataplanes have, else null. */
export function knownDifference(from: string, gens: number[], result: (g: number) => FlowResult): string | null {
  const ebpf = gens.filter((g) => g === 4);
  const netfilter = gens.filter((g) => g !== 4);
  if (ebpf.length === 0 || netfilter.length === 0) return null;
  const r4 = result(4);
  const hairpin = r4.delivered && r4.dst_pod === from && r4.src_seen !== null && r4.src_seen.startsWith("169.254.42.1:");
  if (hairpin && netfilter.every((g) => !result(g).delivered && result(g).verdict === "denied")) return SERVICE_LOOPBACK_NOTE;
  return null;
}

/** Whose address a receiver saw as the source: "client" (the sending pod's), "node NAME", "pod NS/NAME", the
 *  address itself when it is none of these, or null when nothing was received. */
export function seenAs(srcSeen: string | null, addrs: CompareJson["addresses"][string], client: string): string | null {
  if (srcSeen === null) return null;
  const colon = srcSeen.indexOf(":");
  const ip = colon < 0 ? srcSeen : srcSeen.slice(0, colon);
  if (addrs.pods[client] === ip) return "client";
  for (const [n, a] of Object.entries(addrs.nodes)) if (a === ip) return `node ${n}`;
  for (const [p, a] of Object.entries(addrs.pods)) if (a === ip) return `pod ${p}`;
  return ip;
}
