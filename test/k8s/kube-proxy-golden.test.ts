// Golden kube-proxy outputs ported from upstream proxier_test.go: manifests written from the Go test's
// Service/EndpointSlice literals, expected text copied from its expected dump (already in sorted form).
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { loadCluster } from "../../src/k8s/cluster.js";
import { generateIptables, probability, restorePayload } from "../../src/k8s/kube-proxy/iptables.js";
import { iptablesSave } from "../../src/k8s/kube-proxy/iptables-save.js";
import { generateNftables, nftTransaction } from "../../src/k8s/kube-proxy/nftables.js";
import { sortIPTablesRules } from "./upstream-sort.js";

const fixture = (name: string) => readFileSync(new URL(`../fixtures/k8s/kube-proxy/${name}`, import.meta.url), "utf8");

/** NewFakeProxier's settings. */
const UPSTREAM_FAKE = { nodeName: "test-node", nodeIPs: ["192.168.0.2"], clusterCIDR: "10.0.0.0/8", nfacct: true, randomFully: false };
const UPSTREAM_CLUSTER = { serviceCIDR: "172.30.0.0/16", nodePortRange: [1, 65535] as [number, number], kubernetesService: false };

describe("kube-proxy iptables golden dumps (upstream proxier_test.go)", () => {
  const cases: [string, Partial<typeof UPSTREAM_FAKE>][] = [
    ["overall", {}],
    ["repeated-initial", { nfacct: false }],
  ];
  for (const [name, over] of cases) {
    it(name, () => {
      const cluster = loadCluster(fixture(`${name}.yaml`), `${name}.yaml`, UPSTREAM_CLUSTER);
      const out = restorePayload(generateIptables(cluster, { ...UPSTREAM_FAKE, ...over }));
      expect(sortIPTablesRules(out)).toBe(fixture(`${name}.expected`));
    });
  }
});

// tcbox's own goldens (iptables-save form) for a cluster with every Service kind; reviewed rule by rule against
// proxier.go, and accepted and printed back identically by the real iptables-save in test/kernel/kube-proxy.test.ts.
describe("kube-proxy iptables-save goldens (every Service kind)", () => {
  for (const [node, ip] of [
    ["node-a", "192.168.0.2"],
    ["node-b", "192.168.0.3"],
  ] as const) {
    it(node, () => {
      const cluster = loadCluster(readFileSync(new URL("../fixtures/k8s/all-kinds.yaml", import.meta.url), "utf8"), "all-kinds.yaml");
      const out = iptablesSave(generateIptables(cluster, { nodeName: node, nodeIPs: [ip], clusterCIDR: "10.244.0.0/16" }));
      expect(out).toBe(fixture(`all-kinds.${node}.save`));
    });
  }
});

describe("large cluster mode (more than 1000 endpoints)", () => {
  const manifest = (n: number) =>
    `apiVersion: v1\nkind: Service\nmetadata: {name: big, namespace: ns}\nspec: {clusterIP: 172.30.0.9, ports: [{name: p, port: 80}]}\n` +
    Array.from({ length: n }, (_, i) =>
      (i % 500 === 0
        ? `---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: big-${i}, namespace: ns, labels: {kubernetes.io/service-name: big}}\naddressType: IPv4\nports: [{name: p, port: 80}]\nendpoints:\n`
        : "") + `  - addresses: [10.1.${i >> 8}.${i & 255}]\n`,
    ).join("");
  const cases: [number, boolean][] = [
    [1000, false],
    [1001, true],
  ];
  for (const [n, large] of cases) {
    it(`${n} endpoints: per-endpoint comments ${large ? "dropped" : "kept"}`, () => {
      const t = generateIptables(loadCluster(manifest(n), "big.yaml", UPSTREAM_CLUSTER), UPSTREAM_FAKE);
      expect(t.stats.largeClusterMode).toBe(large);
      const sepRules = t.natRules.filter((r) => r.chain.startsWith("KUBE-SEP-"));
      const svcToSep = t.natRules.filter((r) => r.chain.startsWith("KUBE-SVC-") && r.args.split(" ").at(-1)!.startsWith("KUBE-SEP-"));
      expect(sepRules).toHaveLength(2 * n);
      expect(svcToSep).toHaveLength(n);
      for (const r of [...sepRules, ...svcToSep]) expect(r.args.includes("-m comment")).toBe(!large);
      // The probability of the i-th of n rules is 1/(n-i); the last rule has none.
      expect(svcToSep[0]!.args).toContain(probability(n));
      expect(svcToSep[n - 2]!.args).toContain("0.5000000000");
      expect(svcToSep[n - 1]!.args).not.toContain("statistic");
    });
  }
});

// Upstream pkg/proxy/nftables/proxier_test.go TestOverallNFTablesRules: same Services and EndpointSlices as the
// iptables test (overall.yaml); its expected transaction compared as a set of lines (knftables' fake dump order
// is not an executable order, ours is).
describe("kube-proxy nftables golden (upstream TestOverallNFTablesRules)", () => {
  it("overall", () => {
    const cluster = loadCluster(fixture("overall.yaml"), "overall.yaml", UPSTREAM_CLUSTER);
    const lines = (text: string) => text.split("\n").filter((l) => l !== "" && !l.startsWith("#")).sort();
    const tx = nftTransaction(generateNftables(cluster, { nodeName: "test-node", nodeIPs: ["192.168.0.2"], clusterCIDR: "10.0.0.0/8" }));
    expect(lines(tx)).toEqual(lines(fixture("overall.nft.expected")));
  });
});
