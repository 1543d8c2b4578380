// `tcbox policy`'s work: build each generation with its NetworkPolicy enforcement, probe every ordered pair of pods
// (never a pod to itself; hostNetwork pods are the node's own address and are skipped, as the e2e suite only
// probes pod-network pods) on every containerPort of the destination with its protocol, and collect the verdicts
// in the issue-6 JSON shape. Verdicts come from packets through each dataplane only.
import { podKeyOf, probeCases } from "../k8s/netpol/semantics.js";
import type { PolicyReport, PolicyResult } from "../k8s/netpol/truth-table.js";
import type { Cluster } from "../k8s/types.js";
import { buildWithPolicy } from "./policy-iptables.js";
import { installCiliumPolicy } from "./policy-cilium.js";
import { buildGen4, prepareGen4Programs } from "./gen4.js";
import { probe } from "./policy-probe.js";
import type { GenNumber } from "./types.js";

/** Generations whose NetworkPolicy enforcement is installed: iptables (1-3), the policy program's maps (4). */
export const POLICY_GENS: GenNumber[] = [1, 2, 3, 4];

export async function policyReport(cluster: Cluster, gens: GenNumber[], seed?: number): Promise<PolicyReport> {
  if (gens.includes(4)) await prepareGen4Programs();
  const cases = probeCases(cluster);
  const results: PolicyResult[] = cases.map((c) => ({ from: podKeyOf(c.from), to: podKeyOf(c.to), port: c.port, protocol: c.protocol, verdict: {} }));
  for (const gen of gens) {
    const opts = seed === undefined ? {} : { seed };
    let g;
    if (gen === 4) {
      const g4 = buildGen4(cluster, opts);
      installCiliumPolicy(g4);
      g = g4;
    } else g = buildWithPolicy(gen, cluster, opts);
    const running = new Set(g.pods.map((p) => p.key));
    for (const r of results) {
      // A pod that did not start in this generation (its events say why) cannot be reached nor reach anyone.
      const ok = running.has(r.from) && running.has(r.to) && probe(g, r);
      r.verdict[String(gen)] = ok ? "allow" : "deny";
    }
  }
  // Rows in e2e order: grouped by port/protocol (first-seen), then from, then to.
  const portOrder = [...new Set(results.map((r) => `${r.port}/${r.protocol}`))];
  results.sort((a, b) => portOrder.indexOf(`${a.port}/${a.protocol}`) - portOrder.indexOf(`${b.port}/${b.protocol}`) || a.from.localeCompare(b.from) || a.to.localeCompare(b.to));
  return { gens, results };
}
