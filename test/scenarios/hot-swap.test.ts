import { describe, expect, it } from "vitest";
import { hotSwap } from "../../src/compare/scenarios/hot-swap.js";

describe("scenario hot-swap", () => {
  it("lb4 replaced mid-run: both versions ran, no packet lost, no connection moved, pinned maps the same objects and counts", async () => {
    const r = await hotSwap.run([1, 4]);
    const c = r.counters;
    expect(r.gens[0]!.applies).toBe(false);
    expect(c.packets).toBe(c.flows! * c.batches!);
    expect(c.lost).toBe(0);
    expect(c.by_v1).toBeGreaterThan(0);
    expect(c.by_v2).toBeGreaterThan(0);
    expect(c.by_v1! + c.by_v2!).toBe(c.packets);
    expect(c.backend_changed).toBe(0);
    expect(c.ct_after).toBe(c.ct_before);
    expect(c.ct_before).toBe(2 * c.flows!);
    expect([c.services_after, c.backends_after]).toEqual([c.services_before, c.backends_before]);
    expect(c.same_map_objects).toBeGreaterThan(5);
  }, 120_000);
});
