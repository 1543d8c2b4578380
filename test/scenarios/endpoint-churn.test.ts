import { describe, expect, it } from "vitest";
import { endpointChurn, reassignment, runNetfilterChurn } from "../../src/compare/scenarios/endpoint-churn.js";

describe("scenario endpoint-churn", () => {
  it("Gen 1-3: conntrack keeps every established connection on its backend, even the removed one; new ones never go there", () => {
    const n = runNetfilterChurn(120, 300);
    expect(n.kept).toBe(120);
    expect(n.on_removed_backend).toBe(120 - n.survivors);
    expect(n.on_removed_backend).toBeGreaterThan(0);
    expect(n.new_spread["10.244.9.4"]).toBeUndefined();
    expect(Object.keys(n.new_spread).sort()).toEqual(["10.244.9.1", "10.244.9.2", "10.244.9.3", "10.244.9.5"]);
  });

  it("Maglev moves about the removed backend's share; modulo and random move most flows", () => {
    const r = reassignment();
    expect(Math.abs(r.maglev_moved - r.removed_share)).toBeLessThan(0.02);
    expect(r.modulo_moved).toBeGreaterThan(0.6);
    expect(r.random_moved).toBeGreaterThan(0.6);
  });

  it("Gen 4: the CT map keeps every connection whose backend survived; the deleted backend's are re-balanced", async () => {
    const r = await endpointChurn.run([1, 4]);
    const c = r.counters;
    expect(c.lb4_random_on_removed).toBe(0);
    expect(c.lb4_maglev_on_removed).toBe(0);
    expect(c.lb4_random_new_to_removed).toBe(0);
    const g4 = r.gens.find((g) => g.gen === 4)!;
    expect(g4.counters.random_kept).toBeGreaterThan(100);
    expect(r.happened.join("\n")).toMatch(/lb4 \(random\): established kept (\d+)\/200 \(\1 had a surviving backend/);
    expect(r.happened.join("\n")).toMatch(/lb4 \(maglev\): established kept (\d+)\/200 \(\1 had a surviving backend/);
    expect(c.nf_kept).toBe(200);
  }, 120_000);
});
