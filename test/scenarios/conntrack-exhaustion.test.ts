import { describe, expect, it } from "vitest";
import { conntrackExhaustion, runNetfilter } from "../../src/compare/scenarios/conntrack-exhaustion.js";

describe("scenario conntrack-exhaustion", () => {
  it.each([
    // max, short connections, long-lived
    [64, 200, 8],
    [256, 1000, 32],
  ])("nf_conntrack_max=%i: NEW dropped and counted once full, established unaffected", (max, short, long) => {
    const n = runNetfilter(max, short, long);
    expect(n.count).toBe(max);
    expect(n.new_ok + n.new_dropped).toBe(short);
    expect(n.new_dropped).toBeGreaterThan(short / 2);
    // Every refused SYN is one conntrack -S drop; TIME_WAIT entries are ASSURED, so early_drop finds nothing.
    expect(n.drop).toBe(n.new_dropped);
    expect(n.early_drop).toBe(0);
    expect(n.established_ok).toBe(long);
  });

  it("a table large enough drops nothing", () => {
    const n = runNetfilter(4096, 500, 8);
    expect([n.new_dropped, n.drop]).toEqual([0, 0]);
  });

  it("Gen 4: lb4's LRU CT map refuses no flow, keeps busy flows, evicts idle ones", async () => {
    const r = await conntrackExhaustion.run([1, 4]);
    const g4 = r.gens.find((g) => g.gen === 4)!.counters;
    expect(g4.new_dropped).toBe(0);
    expect(g4.ct_map_count).toBe(g4.ct_map_max);
    expect(g4.active_kept).toBe(16);
    expect(g4.idle_evicted).toBeGreaterThan(8);
    expect(r.counters.nf_new_dropped).toBeGreaterThan(0);
    expect(r.gens.map((g) => g.gen)).toEqual([1, 4]);
  }, 120_000);
});
