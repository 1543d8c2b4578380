// Kernel acceptance of kube-proxy's nftables mode: in a fresh network namespace the real `nft -f` must accept the
// transaction tcbox generates, and `nft list ruleset` must print exactly tcbox's listing, except for the order of
// elements inside named sets and maps (the kernel's hash order) and nft's line wrapping of long element lists.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadCluster } from "../../src/k8s/cluster.js";
import { loadDemoCluster } from "../../src/k8s/demo-cluster.js";
import { generateNftables, nftTransaction } from "../../src/k8s/kube-proxy/nftables.js";
import { nftListRuleset } from "../../src/k8s/kube-proxy/nftables-list.js";
import type { Cluster } from "../../src/k8s/types.js";

const NS = `tcbxkpnft${process.pid}`;
const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
const NFT = ["/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft"].find((p) => existsSync(p));
let ready = false;
let skipReason = "";

beforeAll(() => {
  if (!isRoot) return void (skipReason = "not root");
  if (!NFT) return void (skipReason = "nft not installed");
  const r = spawnSync("ip", ["netns", "add", NS]);
  if (r.status !== 0) return void (skipReason = `ip netns add failed: ${r.stderr.toString().trim()}`);
  ready = true;
});
afterAll(() => {
  if (ready) spawnSync("ip", ["netns", "del", NS]);
});

/** Join nft's wrapped element lines and sort the elements of each named set/map. */
function normalize(listing: string): string {
  return listing
    .replace(/,\n\t+\s*/g, ", ")
    .replace(/elements = \{ (.*?) \}\n/g, (_, body: string) => `elements = { ${body.split(", ").sort().join(", ")} }\n`);
}

const fixture = (p: string) => readFileSync(new URL(`../fixtures/k8s/${p}`, import.meta.url), "utf8");
const cases: { name: string; cluster: () => Cluster; node: string; ip: string; cidr: string }[] = [
  { name: "every service kind on node-a", cluster: () => loadCluster(fixture("all-kinds.yaml"), "all-kinds.yaml"), node: "node-a", ip: "192.168.0.2", cidr: "10.244.0.0/16" },
  { name: "every service kind on node-b", cluster: () => loadCluster(fixture("all-kinds.yaml"), "all-kinds.yaml"), node: "node-b", ip: "192.168.0.3", cidr: "10.244.0.0/16" },
  { name: "demo cluster on node-1", cluster: () => loadDemoCluster(), node: "node-1", ip: "10.0.1.10", cidr: "10.244.0.0/16" },
  {
    name: "upstream TestOverallNFTablesRules cluster",
    cluster: () => loadCluster(fixture("kube-proxy/overall.yaml"), "overall.yaml", { serviceCIDR: "172.30.0.0/16", nodePortRange: [1, 65535], kubernetesService: false }),
    node: "test-node",
    ip: "192.168.0.2",
    cidr: "10.0.0.0/8",
  },
];

describe("kube-proxy nftables mode through the real nft", () => {
  for (const c of cases) {
    it(c.name, (ctx) => {
      if (!ready) return ctx.skip(`kernel test skipped: ${skipReason}`);
      const table = generateNftables(c.cluster(), { nodeName: c.node, nodeIPs: [c.ip], clusterCIDR: c.cidr });
      execFileSync("ip", ["netns", "exec", NS, NFT!, "-f", "-"], { input: nftTransaction(table) });
      try {
        const listed = execFileSync("ip", ["netns", "exec", NS, NFT!, "list", "ruleset"], { encoding: "utf8" });
        expect(normalize(nftListRuleset(table))).toBe(normalize(listed));
      } finally {
        execFileSync("ip", ["netns", "exec", NS, NFT!, "flush", "ruleset"]);
      }
    });
  }
});
