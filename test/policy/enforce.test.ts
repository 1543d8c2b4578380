// Each generation's enforcement against the reference semantics, on real packets: the e2e-style cases built into
// Gen 1-3 with the Felix-style rules installed, every probe sent through the model (SYN / datagram / INIT).
import { describe, expect, it } from "vitest";
import { buildWithPolicy } from "../../src/gens/policy-iptables.js";
import { probe } from "../../src/gens/policy-probe.js";
import { connectionAllowed, podKeyOf, probeCases } from "../../src/k8s/netpol/semantics.js";
import { CASES } from "../fixtures/netpol/cases.js";
import { xyzCluster } from "../fixtures/netpol/xyz.js";

describe.each([1, 2, 3] as const)("Gen %i enforces NetworkPolicy as the reference says", (gen) => {
  it.each(CASES.map((c) => [c.name, c] as const))("%s", (_n, c) => {
    const g = buildWithPolicy(gen, xyzCluster(c.policies));
    const wrong: string[] = [];
    let denied = 0;
    for (const p of probeCases(g.cluster)) {
      const from = podKeyOf(p.from);
      const to = podKeyOf(p.to);
      const want = connectionAllowed(g.cluster, p.from, p.to, p.port, p.protocol);
      const got = probe(g, { from, to, port: p.port, protocol: p.protocol });
      if (!got) denied++;
      if (got !== want) wrong.push(`${from} -> ${to} ${p.port}/${p.protocol}: got ${got ? "allow" : "deny"}`);
    }
    expect(wrong).toEqual([]);
    if (c.expect.length > 0) expect(denied).toBeGreaterThan(0);
  });
});
