// The compare engine on the demo cluster (3 nodes, 2 subnets): the same connections through Gen 1-4, the JSON
// contract's fields and types, and issue 5's done-criteria for the flows run here.
import { beforeAll, describe, expect, it } from "vitest";
import { loadDemoCluster } from "../../src/k8s/demo-cluster.js";
import { compare, defaultWorkload, type CompareJson } from "../../src/compare/run.js";

let r: CompareJson;
const cluster = loadDemoCluster();
const wl = defaultWorkload(cluster);
// A few Service flows (TCP and UDP) from one client, plus the internet flow the default workload ends with.
const chosen = [...wl.filter((w) => w.from === wl[0]!.from && w.to.startsWith("service/") && !w.to.startsWith("service/default/kubernetes")).slice(0, 4), wl[wl.length - 1]!];

beforeAll(async () => {
  r = await compare(cluster, chosen, [1, 2, 3, 4], 1);
}, 600_000);

describe("compare", () => {
  it("keeps the JSON contract's field names and types", () => {
    expect(r.gens).toEqual([1, 2, 3, 4]);
    for (const g of ["1", "2", "3", "4"]) {
      expect(Object.keys(r.addresses[g]!).sort()).toEqual(["nodes", "pods"]);
      expect(r.addresses[g]!.nodes["node-1"]).toBe("10.0.1.10");
    }
    expect(r.flows.map((f) => f.id)).toEqual(chosen.map((_, i) => i));
    for (const f of r.flows) {
      expect(Object.keys(f).sort()).toEqual(["from", "id", "protocol", "results", "spec", "to"]);
      for (const x of Object.values(f.results)) {
        expect(Object.keys(x).sort()).toEqual(["conntrack_entries", "delivered", "drop_reason", "dst", "dst_pod", "encap_bytes", "hops", "map_lookups", "rules_evaluated", "src_seen", "verdict"]);
        expect(typeof x.delivered).toBe("boolean");
        expect(["allowed", "denied", "dropped"]).toContain(x.verdict);
        for (const k of ["encap_bytes", "rules_evaluated", "map_lookups", "conntrack_entries"] as const) expect(Number.isInteger(x[k])).toBe(true);
        expect(Array.isArray(x.hops)).toBe(true);
      }
    }
  });

  it("every generation delivers the same flows to backends of the right Service, with the client's pod IP seen", () => {
    expect(r.summary.reachability_disagreements).toBe(0);
    for (const f of r.flows.filter((x) => x.to.startsWith("service/"))) {
      const svc = f.to.split("/")[2]!.split(":")[0]!;
      for (const g of ["1", "2", "3", "4"]) {
        const x = f.results[g]!;
        expect(x.delivered, `${f.to} gen ${g}: ${x.drop_reason}`).toBe(true);
        const backend = cluster.endpointSlices.filter((s) => s.serviceName === svc).flatMap((s) => s.endpoints.map((e) => e.targetRef?.replace(/^Pod /, "")));
        expect(backend).toContain(x.dst_pod);
        expect(x.src_seen!.split(":")[0]).toBe(r.addresses[g]!.pods[f.from]);
      }
    }
  });

  it("the node's IP for the internet; 50 encap bytes only in Gen 1 cross-node; rules only in Gen 1-3, map lookups only in Gen 4", () => {
    const inet = r.flows[r.flows.length - 1]!;
    const node = cluster.pods.find((p) => `${p.metadata.namespace}/${p.metadata.name}` === inet.from)!.nodeName;
    for (const g of ["1", "2", "3", "4"]) {
      expect(inet.results[g]!.delivered).toBe(true);
      expect(inet.results[g]!.src_seen!.split(":")[0]).toBe(r.addresses[g]!.nodes[node]);
    }
    for (const f of r.flows) {
      for (const g of ["2", "3", "4"]) expect(f.results[g]!.encap_bytes).toBe(0);
      for (const g of ["1", "2", "3"]) {
        expect(f.results[g]!.rules_evaluated).toBeGreaterThan(0);
        expect(f.results[g]!.map_lookups).toBe(0);
      }
      expect(f.results["4"]!.rules_evaluated).toBe(0);
      expect(f.results["4"]!.map_lookups).toBeGreaterThan(0);
    }
    const cross = r.flows.filter((f) => {
      const dst = f.results["1"]!.dst_pod;
      const srcNode = cluster.pods.find((p) => `${p.metadata.namespace}/${p.metadata.name}` === f.from)!.nodeName;
      return dst !== null && cluster.pods.find((p) => `${p.metadata.namespace}/${p.metadata.name}` === dst)!.nodeName !== srcNode;
    });
    for (const f of cross) expect(f.results["1"]!.encap_bytes).toBe(50);
  });
});
