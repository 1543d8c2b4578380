// Golden kube-proxy outputs ported from upstream proxier_test.go: manifests written from the Go test's
// Service/EndpointSlice literals, expected text copied from its expected dump (already in sorted form).
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { loadCluster } from "../../src/k8s/cluster.js";
import { generateIptables, restorePayload } from "../../src/k8s/kube-proxy/iptables.js";
import { sortIPTablesRules } from "./upstream-sort.js";

const fixture = (name: string) => readFileSync(new URL(`../fixtures/k8s/kube-proxy/${name}`, import.meta.url), "utf8");

/** NewFakeProxier's settings. */
const UPSTREAM_FAKE = { nodeName: "test-node", nodeIPs: ["192.168.0.2"], clusterCIDR: "10.0.0.0/8", nfacct: true, randomFully: false };
const UPSTREAM_CLUSTER = { serviceCIDR: "172.30.0.0/16", nodePortRange: [1, 65535] as [number, number], kubernetesService: false };

describe("kube-proxy iptables golden dumps (upstream proxier_test.go)", () => {
  for (const name of ["overall"]) {
    it(name, () => {
      const cluster = loadCluster(fixture(`${name}.yaml`), `${name}.yaml`, UPSTREAM_CLUSTER);
      const out = restorePayload(generateIptables(cluster, UPSTREAM_FAKE));
      expect(sortIPTablesRules(out)).toBe(fixture(`${name}.expected`));
    });
  }
});
