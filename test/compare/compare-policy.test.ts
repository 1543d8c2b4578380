// The demo cluster's NetworkPolicy (shop/backend-allow-frontend: only app=frontend may reach app=backend) is
// enforced by every generation's own dataplane in `tcbox compare`: Felix-style chains in Gen 1-3, the policy
// program's map in Gen 4. A frontend reaches the backend Service; db-1 is denied; no generation disagrees.
import { describe, expect, it } from "vitest";
import { loadDemoCluster } from "../../src/k8s/demo-cluster.js";
import { compare, defaultWorkload } from "../../src/compare/run.js";

describe("compare enforces NetworkPolicy in every generation", () => {
  it("allows frontend -> backend and denies db-1 -> backend, the same in Gen 1-4", async () => {
    const cluster = loadDemoCluster();
    const wl = defaultWorkload(cluster);
    const frontend = wl.find((w) => w.from.startsWith("shop/frontend-") && w.to === "service/shop/backend:8080");
    const db = wl.find((w) => w.from === "shop/db-1" && w.to === "service/shop/backend:8080");
    expect(frontend).toBeDefined();
    expect(db).toBeDefined();
    const r = await compare(cluster, [frontend!, db!], [1, 2, 3, 4], 1);
    const [fromFrontend, fromDb] = r.flows;
    for (const g of ["1", "2", "3", "4"]) {
      expect(fromFrontend!.results[g]!.verdict).toBe("allowed");
      expect(fromFrontend!.results[g]!.dst_pod).toMatch(/^shop\/backend-/);
      expect(fromDb!.results[g]!.verdict).toBe("denied");
      expect(fromDb!.results[g]!.delivered).toBe(false);
    }
    expect(r.summary.reachability_disagreements).toBe(0);
  }, 600_000);
});
