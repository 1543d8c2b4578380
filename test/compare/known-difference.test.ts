// Reachability differences the real dataplanes have too are named, not flagged as tcbox bugs: the service
// loopback case (a pod reaching itself through its own Service while an ingress policy selects it).
import { describe, expect, it } from "vitest";
import { humanTable } from "../../src/cli/compare.js";
import type { FlowResult } from "../../src/compare/engine.js";
import { knownDifference, totalsOf, type CompareJson } from "../../src/compare/run.js";

const r = (over: Partial<FlowResult>): FlowResult => ({
  delivered: false, dst_pod: null, dst: null, src_seen: null, verdict: "denied", drop_reason: "SYN lost: netfilter drop in node-1",
  encap_bytes: 0, rules_evaluated: 30, map_lookups: 0, conntrack_entries: 0, hops: [], ...over,
});
const hairpin4 = r({ delivered: true, dst_pod: "shop/api-0", dst: "10.244.1.5:8080", src_seen: "169.254.42.1:40000", verdict: "allowed", drop_reason: null, rules_evaluated: 0, map_lookups: 12 });

describe("known differences between generations", () => {
  it("names Cilium's service loopback policy skip when Gen 1-3 deny a pod reaching itself", () => {
    const res: Record<number, FlowResult> = { 1: r({}), 2: r({}), 4: hairpin4 };
    expect(knownDifference("shop/api-0", [1, 2, 4], (g) => res[g]!)).toMatch(/cilium\/cilium#15321/);
  });

  it("does not explain other differences", () => {
    // Delivered to another pod: not a loopback.
    const other: Record<number, FlowResult> = { 1: r({}), 4: { ...hairpin4, dst_pod: "shop/api-1" } };
    expect(knownDifference("shop/api-0", [1, 4], (g) => other[g]!)).toBeNull();
    // Gen 1 dropped it for another reason than policy.
    const dropped: Record<number, FlowResult> = { 1: r({ verdict: "dropped" }), 4: hairpin4 };
    expect(knownDifference("shop/api-0", [1, 4], (g) => dropped[g]!)).toBeNull();
    // Only one kind of dataplane: nothing to explain.
    expect(knownDifference("shop/api-0", [4], (g) => ({ 4: hairpin4 })[g]!)).toBeNull();
  });

  it("the human summary prints the note instead of the alarm", () => {
    const results = { "1": r({}), "4": hairpin4 };
    const addresses = { pods: { "shop/api-0": "10.244.1.5" }, nodes: { "node-1": "10.0.1.10" } };
    const j: CompareJson = {
      gens: [1, 4], addresses: { "1": addresses, "4": addresses },
      flows: [{ id: 0, spec: 0, from: "shop/api-0", to: "service/shop/api:8080", protocol: "TCP", results }],
      summary: {
        connections: 1, reachability_disagreements: 1, reachability_explained: 1,
        disagreements: [{ id: 0, field: "delivered", values: { "1": false, "4": true }, note: knownDifference("shop/api-0", [1, 4], (g) => (g === 4 ? hairpin4 : r({})))! }],
        totals: { "1": totalsOf([results["1"]]), "4": totalsOf([results["4"]]) },
      },
    };
    const t = humanTable(j);
    expect(t).toContain("1 in reachability (1 as in real clusters, see the note)");
    expect(t).toContain("note: service loopback");
    expect(t).not.toContain("!!!");
  });
});
