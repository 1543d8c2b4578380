import { describe, expect, it, vi } from "vitest";
import { main } from "../../src/cli/main.js";

async function run(args: string[]) {
  let out = "";
  const o = vi.spyOn(process.stdout, "write").mockImplementation((s: string | Uint8Array) => ((out += String(s)), true));
  try {
    return { code: await main(args), out };
  } finally {
    o.mockRestore();
  }
}

describe("tcbox scenario", () => {
  it("list names every scenario (text and JSON)", async () => {
    const t = await run(["scenario", "list"]);
    expect(t.code).toBe(0);
    const j = await run(["scenario", "list", "--json"]);
    const names = (JSON.parse(j.out) as { name: string }[]).map((s) => s.name);
    expect(names).toEqual(["conntrack-exhaustion", "udp-dns-race", "ndots", "stale-route", "eni-exhaustion", "hostnetwork-port", "endpoint-churn", "hot-swap"]);
    for (const n of names) expect(t.out).toContain(n);
  });

  it("run --json prints the result object with per-generation verdicts", async () => {
    const r = await run(["scenario", "run", "eni-exhaustion", "--gens", "3,1", "--json"]);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.name).toBe("eni-exhaustion");
    expect(j.gens.map((g: { gen: number }) => g.gen)).toEqual([1, 3]);
    expect(j.counters.OutOfpods).toBe(1);
  });

  it("run prints what happened, counters and generations", async () => {
    const r = await run(["scenario", "run", "stale-route", "--gens", "2"]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/what happened:[\s\S]*counters:[\s\S]*veth_tx_dropped +3[\s\S]*generations:\n  Gen 2: route still present/);
  });
});
