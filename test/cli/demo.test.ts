// tcbox demo (npm start): the side-by-side compare table of the demo cluster and the short benchmark; and the
// human table's rendering: differences marked, reachability disagreements flagged, the summary naming them.
import { afterEach, describe, expect, it, vi } from "vitest";
import { humanTable } from "../../src/cli/compare.js";
import { benchTable } from "../../src/cli/demo.js";
import { totalsOf, type CompareJson } from "../../src/compare/run.js";
import type { FlowResult } from "../../src/compare/engine.js";
import type { BenchResult } from "../../src/perf/run.js";
import { runCli } from "./run.js";

const cli = runCli;
afterEach(() => vi.restoreAllMocks());

const ok = (over: Partial<FlowResult> = {}): FlowResult => ({
  delivered: true, dst_pod: "shop/api-0", dst: "10.244.1.5:8080", src_seen: "10.244.0.2:40000", verdict: "allowed", drop_reason: null,
  encap_bytes: 0, rules_evaluated: 20, map_lookups: 0, conntrack_entries: 1, hops: ["a", "b"], ...over,
});

function sample(): CompareJson {
  const addresses = { pods: { "shop/web-0": "10.244.0.2", "shop/api-0": "10.244.1.5" }, nodes: { "node-1": "10.0.1.10" } };
  const results = { "1": ok({ encap_bytes: 50 }), "4": ok({ delivered: false, dst_pod: null, dst: null, src_seen: null, verdict: "denied", drop_reason: "policy", rules_evaluated: 0, map_lookups: 9 }) };
  const same = { "1": ok({ src_seen: "10.0.1.10:9000" }), "4": ok({ rules_evaluated: 0, map_lookups: 7, dns_queries: 3, dns_nxdomain: 2, resolved: "10.96.5.5" }) };
  const flows = [
    { id: 0, spec: 0, from: "shop/web-0", to: "service/shop/api:8080", protocol: "TCP", results },
    { id: 1, spec: 1, from: "shop/web-0", to: "pod/shop/api-0:8080", protocol: "TCP", results: same },
  ];
  return {
    gens: [1, 4], addresses: { "1": addresses, "4": addresses }, flows,
    summary: {
      connections: 2, reachability_disagreements: 1, reachability_explained: 0,
      disagreements: [
        { id: 0, field: "delivered", values: { "1": true, "4": false } },
        { id: 0, field: "verdict", values: { "1": "allowed", "4": "denied" } },
        { id: 1, field: "src_seen", values: { "1": "10.0.1.10:9000", "4": "10.244.0.2:40000" } },
      ],
      totals: { "1": totalsOf(flows.map((f) => f.results["1"])), "4": totalsOf(flows.map((f) => f.results["4"])) },
    },
  };
}

describe("compare's human table", () => {
  it("marks values that differ between generations, names the columns and flags reachability", () => {
    const t = humanTable(sample());
    const lines = t.split("\n");
    const g1 = lines.find((l) => l.startsWith("  gen1") && l.includes("50B"))!;
    const g4 = lines[lines.indexOf(g1) + 1]!;
    expect(g1).toMatch(/allowed\*/);
    expect(g4).toMatch(/denied\*/);
    expect(g4).toContain("(policy)");
    expect(g1).toMatch(/50B\*/);
    expect(g4).toMatch(/\b9\*/);
    expect(t).toContain("!!! REACHABILITY DISAGREEMENT");
    expect(t).toContain("differs: verdict, delivered to, as, encap, rules, map lookups");
    expect(t).toContain("map lookups");
    expect(t).not.toContain("prog runs");
    // Flow 1: the server saw the node's address in Gen 1 and the client's in Gen 4.
    expect(t).toMatch(/gen1 .*node node-1\*/);
    expect(t).toContain("differs: as, rules, map lookups");
    expect(t).toMatch(/gen4 .*\[DNS: 3 queries, 2 NXDOMAIN -> 10\.96\.5\.5\]/);
    expect(humanTable(sample(), { color: true })).toContain("\x1b[33m");
    expect(t).not.toContain("\x1b[");
  });

  it("the summary says where the generations disagree, with per-generation totals", () => {
    const t = humanTable(sample());
    expect(t).toContain("2 connections; 3 disagreements, 1 in reachability");
    expect(t).toContain("reachability: 1 connection disagree");
    expect(t).toContain("#0 shop/web-0 -> service/shop/api:8080 TCP: gen1 delivered, gen4 not delivered (policy)");
    expect(t).toContain("#1 shop/web-0 -> pod/shop/api-0:8080 TCP: gen1 node node-1, gen4 client");
    expect(t).toMatch(/delivered +2\/2 +1\/2/);
    expect(t).toMatch(/encapsulated \(max bytes\) +1 \(50B\) +0 \(0B\)/);
    expect(t).toMatch(/map lookups +0 +16/);
  });
});

describe("the demo's benchmark table", () => {
  it("packets/s per generation and scale, and Gen 4 over Gen 1", () => {
    const r = (gen: number, services: number, n: number, e: number, mode: BenchResult["mode"]) => ({ gen, services, new_pps: n, established_pps: e, rules_per_new: gen === 4 ? 0 : 21, mode }) as BenchResult;
    const t = benchTable([r(1, 10, 500e3, 1.5e6, "iptables"), r(4, 10, 1.5e6, 9e6, "ebpf"), r(1, 1000, 80e3, 1.4e6, "iptables"), r(4, 1000, 1e6, 7e6, "ebpf")], 3.2);
    expect(t).toMatch(/quick and noisy/);
    expect(t).toContain("tcbox bench");
    expect(t).toMatch(/10 +gen1 \(kube-proxy iptables\) +500k +1\.50M +21/);
    expect(t).toMatch(/gen4 \/ gen1 iptables +3\.0x +6\.0x/);
    expect(t).toMatch(/gen4 \/ gen1 iptables +12\.5x +5\.0x/);
  });
});

describe("tcbox demo", () => {
  it("prints the side-by-side table of the demo cluster, its summary and the short benchmark", async () => {
    const r = await cli(["demo"]);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/^#0 /);
    for (const g of [1, 2, 3, 4]) expect(r.out).toMatch(new RegExp(`^  gen${g} +(allowed|denied|dropped)`, "m"));
    expect(r.out).toMatch(/\d+ connections; \d+ disagreements/);
    expect(r.out).toMatch(/per generation +gen1 +gen2 +gen3 +gen4/);
    expect(r.out).toContain("Short benchmark of the Service hop");
    for (const s of [10, 1000]) {
      expect(r.out).toMatch(new RegExp(`^ +${s} +gen1 \\(kube-proxy iptables\\) +[\\d.]+[kM]? +[\\d.]+[kM]?`, "m"));
      expect(r.out).toMatch(new RegExp(`^ +${s} +gen4 \\(lb4 on tc\\)`, "m"));
    }
    expect(r.out.match(/gen4 \/ gen1 iptables +[\d.]+x +[\d.]+x/g)).toHaveLength(2);
  }, 600_000);
});
