import { describe, expect, it } from "vitest";
import { loadDemoCluster } from "../../src/k8s/demo-cluster.js";
import { buildGeneration } from "../../src/gens/index.js";
import { candidates, ndotsAmplification, podResolvConf, resolveThrough } from "../../src/compare/scenarios/ndots.js";

describe("scenario ndots", () => {
  it.each([
    // name, ndots, names tried
    ["api.example.com", 5, ["api.example.com.web.svc.cluster.local", "api.example.com.svc.cluster.local", "api.example.com.cluster.local", "api.example.com.ec2.internal", "api.example.com"]],
    ["api.example.com.", 5, ["api.example.com"]],
    ["api.example.com", 2, ["api.example.com", "api.example.com.web.svc.cluster.local", "api.example.com.svc.cluster.local", "api.example.com.cluster.local", "api.example.com.ec2.internal"]],
    ["a.b.c.d.e.f", 5, ["a.b.c.d.e.f", "a.b.c.d.e.f.web.svc.cluster.local", "a.b.c.d.e.f.svc.cluster.local", "a.b.c.d.e.f.cluster.local", "a.b.c.d.e.f.ec2.internal"]],
  ] as [string, number, string[]][])("res_nsearch order for %s (ndots:%i)", (name, ndots, tried) => {
    expect(candidates(name, podResolvConf("web", ndots))).toEqual(tried);
  });

  it.each([1, 2, 3] as const)("Gen %i: the queries are packets through the dataplane: 10 (8 NXDOMAIN) by default, 2 with FQDN or ndots:2", (gen) => {
    const g = buildGeneration(gen, loadDemoCluster());
    const known = new Set(["api.example.com"]);
    const d = resolveThrough(g, "api.example.com", 5, known);
    expect([d.queries, d.nxdomain, d.seen_by_coredns, d.answered_after]).toEqual([10, 8, 10, 10]);
    const f = resolveThrough(g, "api.example.com.", 5, known);
    expect([f.queries, f.nxdomain, f.seen_by_coredns]).toEqual([2, 0, 2]);
    const l = resolveThrough(g, "api.example.com", 2, known);
    expect([l.queries, l.nxdomain, l.seen_by_coredns]).toEqual([2, 0, 2]);
    // A name nobody knows: every candidate fails, 10 NXDOMAIN, no answer.
    const u = resolveThrough(g, "nope.example.com", 5, known);
    expect([u.queries, u.nxdomain, u.answered_after]).toEqual([10, 10, 0]);
  });

  it("scenario run counters", async () => {
    const r = await ndotsAmplification.run([2]);
    expect(r.counters).toMatchObject({ case1_queries: 10, case1_nxdomain: 8, case2_queries: 2, case3_queries: 2 });
  });
});
