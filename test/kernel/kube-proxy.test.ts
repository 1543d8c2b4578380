// Kernel acceptance of the generated kube-proxy ruleset: in a fresh network namespace, the real
// iptables-restore (legacy and nft backends, when installed) must accept `tcbox kube-proxy` output for clusters
// with every Service kind, and iptables-save must print it back exactly (ignoring header comments and counters).
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadCluster } from "../../src/k8s/cluster.js";
import { loadDemoCluster } from "../../src/k8s/demo-cluster.js";
import { generateIptables } from "../../src/k8s/kube-proxy/iptables.js";
import { iptablesSave } from "../../src/k8s/kube-proxy/iptables-save.js";
import type { Cluster } from "../../src/k8s/types.js";

const NS = `tcbxkp${process.pid}`;
const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
let nsReady = false;
let skipReason = "";

function which(bin: string): string | null {
  for (const dir of ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]) if (existsSync(`${dir}/${bin}`)) return `${dir}/${bin}`;
  return null;
}

beforeAll(() => {
  if (!isRoot) {
    skipReason = "not root";
    return;
  }
  const r = spawnSync("ip", ["netns", "add", NS]);
  if (r.status !== 0) {
    skipReason = `ip netns add failed: ${r.stderr.toString().trim()}`;
    return;
  }
  nsReady = true;
});

afterAll(() => {
  if (nsReady) spawnSync("ip", ["netns", "del", NS]);
});

/** Per-table blocks without comments and with counters zeroed, keyed by table name. */
function tablesOf(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  let cur: string[] | null = null;
  let name = "";
  for (const raw of text.split("\n")) {
    const line = raw.replace(/\[\d+:\d+\]$/, "[0:0]");
    if (line === "" || line.startsWith("#")) continue;
    if (line.startsWith("*")) {
      name = line.slice(1);
      cur = [line];
    } else if (line === "COMMIT") {
      cur!.push(line);
      out[name] = cur!.join("\n");
      cur = null;
    } else cur!.push(line);
  }
  return out;
}

function roundTrip(backend: "legacy" | "nft", text: string): string {
  const restore = which(`iptables-${backend}-restore`)!;
  const save = which(`iptables-${backend}-save`)!;
  execFileSync("ip", ["netns", "exec", NS, restore], { input: text });
  try {
    return execFileSync("ip", ["netns", "exec", NS, save], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  } finally {
    // Leave the namespace clean for the next case: flush and delete every chain of the tables we used.
    const flush = ["mangle", "filter", "nat"].map((t) => `*${t}\nCOMMIT`).join("\n") + "\n";
    execFileSync("ip", ["netns", "exec", NS, restore], { input: flush });
  }
}

const fixture = (name: string) => readFileSync(new URL(`../fixtures/k8s/${name}`, import.meta.url), "utf8");

const cases: { name: string; cluster: () => Cluster; node: string; ip: string; cidr: string; localhostNodePorts?: boolean }[] = [
  { name: "every service kind on node-a", cluster: () => loadCluster(fixture("all-kinds.yaml"), "all-kinds.yaml"), node: "node-a", ip: "192.168.0.2", cidr: "10.244.0.0/16" },
  { name: "every service kind on node-b", cluster: () => loadCluster(fixture("all-kinds.yaml"), "all-kinds.yaml"), node: "node-b", ip: "192.168.0.3", cidr: "10.244.0.0/16" },
  { name: "every service kind, localhost NodePorts off", cluster: () => loadCluster(fixture("all-kinds.yaml"), "all-kinds.yaml"), node: "node-a", ip: "192.168.0.2", cidr: "10.244.0.0/16", localhostNodePorts: false },
  { name: "demo cluster on node-3", cluster: () => loadDemoCluster(), node: "node-3", ip: "10.0.2.10", cidr: "10.244.0.0/16" },
];

describe("kube-proxy ruleset through the real iptables-restore / iptables-save", () => {
  for (const backend of ["legacy", "nft"] as const) {
    for (const c of cases) {
      it(`${backend}: ${c.name}`, (ctx) => {
        if (!nsReady) return ctx.skip(`kernel test skipped: ${skipReason}`);
        if (!which(`iptables-${backend}-restore`) || !which(`iptables-${backend}-save`)) return ctx.skip(`iptables-${backend} not installed`);
        const ours = iptablesSave(generateIptables(c.cluster(), { nodeName: c.node, nodeIPs: [c.ip], clusterCIDR: c.cidr, localhostNodePorts: c.localhostNodePorts }));
        const kernel = roundTrip(backend, ours);
        const a = tablesOf(ours);
        const b = tablesOf(kernel);
        for (const t of ["mangle", "filter", "nat"]) expect(b[t], `table ${t}`).toBe(a[t]);
      });
    }
  }
});
