import { describe, expect, it } from "vitest";
import { runStale, staleRoute } from "../../src/compare/scenarios/stale-route.js";

describe("scenario stale-route", () => {
  it.each([2, 3] as const)("Gen %i: the /32 route stays, pings die in the dead veth, no ICMP back", (gen) => {
    const s = runStale(gen, 4);
    expect(s.routeLine).toMatch(new RegExp(`^${s.victim.ip.replace(/\./g, "\\.")} dev ${s.victim.hostIf} scope link`));
    expect(s.lastHop).toBe(`${s.victim.node} ${s.victim.hostIf}`);
    expect(s.dropReason).toBe("no peer");
    expect([s.delivered, s.icmpBack, s.txDropped]).toEqual([0, 0, 4]);
    expect(s.hops.at(-1)).toContain("drop: no peer");
  });

  it("scenario run: Gen 2 applies, Gen 1 does not", async () => {
    const r = await staleRoute.run([1, 2]);
    expect(r.gens.map((g) => g.applies)).toEqual([false, true]);
    expect(r.counters).toEqual({ pings: 3, delivered: 0, icmp_back: 0, veth_tx_dropped: 3, route_present: 1 });
  });
});
