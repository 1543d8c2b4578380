// The reference semantics against truth tables written from the upstream e2e netpol cases.
import { describe, expect, it } from "vitest";
import { connectionAllowed, podKeyOf, probeCases } from "../../src/k8s/netpol/semantics.js";
import { CASES, expected } from "../fixtures/netpol/cases.js";
import { xyzCluster } from "../fixtures/netpol/xyz.js";

describe("NetworkPolicy reference semantics vs the e2e truth tables", () => {
  it.each(CASES.map((c) => [c.name, c] as const))("%s", (_n, c) => {
    const cluster = xyzCluster(c.policies);
    const probes = probeCases(cluster);
    expect(probes).toHaveLength(9 * 8 * 6);
    const wrong: string[] = [];
    for (const p of probes) {
      const from = podKeyOf(p.from);
      const to = podKeyOf(p.to);
      const want = expected(c, from, to, p.port, p.protocol);
      if (connectionAllowed(cluster, p.from, p.to, p.port, p.protocol) !== want) wrong.push(`${from} -> ${to} ${p.port}/${p.protocol} want ${want}`);
    }
    expect(wrong).toEqual([]);
  });

  it("a hostNetwork source on the destination's node passes ingress isolation (kubelet probes)", () => {
    const cluster = xyzCluster(CASES[1]!.policies);
    const xa = cluster.pods.find((p) => podKeyOf(p) === "x/a")!;
    const same = { ...cluster.pods.find((p) => p.nodeName === xa.nodeName && p !== xa)!, hostNetwork: true };
    const other = { ...cluster.pods.find((p) => p.nodeName !== xa.nodeName)!, hostNetwork: true };
    expect(connectionAllowed(cluster, same, xa, 80, "TCP")).toBe(true);
    expect(connectionAllowed(cluster, other, xa, 80, "TCP")).toBe(false);
  });
});
