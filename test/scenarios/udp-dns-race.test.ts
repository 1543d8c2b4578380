import { describe, expect, it } from "vitest";
import { runRace, udpDnsRace, RES_TIMEOUT_S } from "../../src/compare/scenarios/udp-dns-race.js";

describe("scenario udp-dns-race", () => {
  const table: [string, "classic" | "6.x", "none" | "single-request-reopen" | "nodelocal-dnscache", [number, number], number, number, number][] = [
    // name, kernel, mitigation, backends, delivered, insert_failed, clash_resolve
    ["classic, same backend", "classic", "none", [0, 0], 1, 1, 0],
    ["classic, different backends", "classic", "none", [0, 1], 1, 1, 0],
    ["6.x, same backend: attached to the winner", "6.x", "none", [0, 0], 2, 0, 1],
    ["6.x, different backends: NAT_CLASH entry", "6.x", "none", [0, 1], 2, 0, 1],
    ["classic + single-request-reopen", "classic", "single-request-reopen", [0, 1], 2, 0, 0],
    ["classic + NodeLocal DNSCache (NOTRACK)", "classic", "nodelocal-dnscache", [0, 1], 2, 0, 0],
  ];
  it.each(table)("%s", (_n, era, m, b, delivered, insertFailed, clash) => {
    const r = runRace(era, m, b);
    expect([r.delivered, r.insert_failed, r.clash_resolve]).toEqual([delivered, insertFailed, clash]);
    expect(r.lookup_ms >= RES_TIMEOUT_S * 1000).toBe(delivered < 2);
  });

  it("CLI-level run: classic drops, Gen 4 lb4 delivers both to one backend", async () => {
    const r = await udpDnsRace.run([1, 4]);
    expect(r.counters).toMatchObject({ classic_dropped: 2, classic_insert_failed: 2, v6_insert_failed: 0, reopen_dropped: 0, nodelocal_dropped: 0, lb4_delivered: 2, lb4_dropped: 0 });
    expect(r.gens.find((g) => g.gen === 4)!.counters.backends).toBe(1);
  }, 60_000);
});
