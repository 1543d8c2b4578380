// `tcbox policy`'s work: build each generation with its NetworkPolicy enforcement, probe every ordered pair of pods
// (never a pod to itself; hostNetwork pods are the node's own address and are skipped, as the e2e suite only
// probes pod-network pods) on every containerPort of the destination with its protocol, and collect the verdicts
// in the issue-6 JSON shape. Verdicts come from packets through each dataplane only.
import { podKeyOf, probeCases } from "../k8s/netpol/semantics.js";
import type { PolicyReport, PolicyResult } from "../k8s/netpol/truth-table.js";
import type { Cluster } from "../k8s/types.js";
import { buildWithPolicy } from "./policy-iptables.js";
import { probe } from "./policy-probe.js";
import type { GenNumber } from "./types.js";

/** Generations whose NetworkPolicy enforcement is installed by buildWithPolicy. */
export const POLICY_GENS: GenNumber[] = [1, 2, 3];

export function policyReport(cluster: Cluster, gens: GenNumber[], seed?: number): PolicyReport {
  const cases = probeCases(cluster);
  const results: PolicyResult[] = cases.map((c) => ({ from: podKeyOf(c.from), to: podKeyOf(c.to), port: c.port, protocol: c.protocol, verdict: {} }));
  for (const gen of gens) {
    const g = buildWithPolicy(gen, cluster, seed === undefined ? {} : { seed });
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
