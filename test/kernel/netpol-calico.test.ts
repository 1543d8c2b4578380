// Kernel test: the Felix-style NetworkPolicy rules tcbox generates are accepted by the real iptables-restore and,
// in real namespaces (a Calico-style node: /32 routes per cali veth, proxy_arp for 169.254.1.1), decide TCP
// connections as the reference semantics says. A connection counts as allowed when the SYN reaches the pod (the
// pod answers SYN-ACK or RST, which return through conntrack ESTABLISHED), denied when the connect times out.
// Skips with a message when not root or when `ip netns add` fails. Cleans up in afterAll.
import { execFileSync, spawnSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadCluster } from "../../src/k8s/cluster.js";
import { calicoPolicySave } from "../../src/k8s/netpol/calico.js";
import { connectionAllowed, podKeyOf } from "../../src/k8s/netpol/semantics.js";
import type { Pod } from "../../src/k8s/types.js";

const P = `tcbxnp${process.pid}`;
const NODE = `${P}n`;
const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
let skipReason = "";
const made: string[] = [];

const BASE = `apiVersion: v1
kind: Node
metadata: {name: n1}
status: {addresses: [{type: InternalIP, address: 10.0.1.10}]}
---
apiVersion: v1
kind: Namespace
metadata: {name: x, labels: {ns: x}}
---
apiVersion: v1
kind: Namespace
metadata: {name: y, labels: {ns: y}}
${[["x", "a"], ["x", "b"], ["y", "a"]]
  .map(([ns, p]) => `---\napiVersion: v1\nkind: Pod\nmetadata: {name: ${p}, namespace: ${ns}, labels: {pod: ${p}}}\nspec:\n  nodeName: n1\n  containers: [{name: c, image: agnhost, ports: [{containerPort: 80}, {containerPort: 81}]}]\n`)
  .join("")}`;

const np = (name: string, ns: string, spec: string) => `---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: ${name}, namespace: ${ns}}\nspec:\n${spec}\n`;
const CASES: [string, string][] = [
  ["x/a ingress only from pod=b", np("b-only", "x", "  podSelector: {matchLabels: {pod: a}}\n  ingress: [{from: [{podSelector: {matchLabels: {pod: b}}}]}]")],
  ["x/a egress denied; y/a ingress from namespace x on 81", np("no-egress", "x", "  podSelector: {matchLabels: {pod: a}}\n  policyTypes: [Egress]") + np("from-x-81", "y", "  podSelector: {}\n  ingress: [{from: [{namespaceSelector: {matchLabels: {ns: x}}}], ports: [{port: 81}]}]")],
  ["default deny in x, ipBlock except from y", np("deny", "x", "  podSelector: {}\n  ingress: [{from: [{ipBlock: {cidr: 10.244.0.0/24, except: [10.244.0.2/32]}}]}]")],
];

const podNs = (p: Pod) => `${P}${p.metadata.namespace}${p.metadata.name}`;
const hostIf = (p: Pod) => `cali${p.metadata.namespace}${p.metadata.name}`;

function sh(ns: string, cmd: string, input?: string): string {
  return execFileSync("ip", ["netns", "exec", ns, "sh", "-c", cmd], { encoding: "utf8", input, stdio: ["pipe", "pipe", "pipe"] });
}

const PROBE = `
import socket, sys
for t in sys.argv[1:]:
    ip, port = t.split(":")
    s = socket.socket(); s.settimeout(0.3)
    try:
        s.connect((ip, int(port))); r = "allow"
    except ConnectionRefusedError:
        r = "allow"
    except OSError:
        r = "deny"
    s.close(); print(t, r)
`;

const pods = loadCluster(BASE, "np.yaml").pods;

beforeAll(() => {
  if (!isRoot) {
    skipReason = "not root";
    return;
  }
  const add = spawnSync("ip", ["netns", "add", NODE]);
  if (add.status !== 0) {
    skipReason = `ip netns add failed: ${add.stderr}`;
    return;
  }
  made.push(NODE);
  // proxy_arp answers for 169.254.1.1 only when the node routes it elsewhere: a default route over a veth pair
  // inside the node (no dummy driver here), as net-ptp.test.ts does. Felix sets proxy_delay=0 on each cali veth
// (the default delays proxy ARP replies by up to 0.8 s).
  sh(NODE, "ip link set lo up; sysctl -qw net.ipv4.ip_forward=1; ip link add up0 type veth peer name up0p; ip link set up0p up; ip link set up0 up; ip addr add 192.168.60.1/24 dev up0; ip route add default via 192.168.60.254 dev up0");
  for (const p of pods) {
    execFileSync("ip", ["netns", "add", podNs(p)]);
    made.push(podNs(p));
    sh(NODE, `ip link add ${hostIf(p)} type veth peer name eth0 netns ${podNs(p)} && ip link set ${hostIf(p)} up && sysctl -qw net.ipv4.conf.${hostIf(p)}.proxy_arp=1 net.ipv4.neigh.${hostIf(p)}.proxy_delay=0 && ip route add ${p.podIP} dev ${hostIf(p)} scope link`);
    sh(podNs(p), `ip link set lo up; ip link set eth0 up; ip addr add ${p.podIP}/32 dev eth0; ip route add 169.254.1.1 dev eth0 scope link; ip route add default via 169.254.1.1 dev eth0`);
  }
});

afterAll(() => {
  for (const ns of made.reverse()) spawnSync("ip", ["netns", "del", ns]);
});

describe("Felix-style NetworkPolicy rules in the real kernel", () => {
  it.each(CASES)("%s: restore accepted, every connection as the reference says", (_name, policies) => {
    if (skipReason) {
      process.stderr.write(`netpol-calico: skipped: ${skipReason}\n`);
      return;
    }
    const cluster = loadCluster(BASE + policies, "np.yaml");
    const save = calicoPolicySave(cluster, cluster.pods.map((p) => ({ pod: p, hostIf: hostIf(p) })), { dispatch: "interface" });
    // A fresh filter table per case (iptables-restore without --noflush replaces the table), no old connections.
    sh(NODE, "iptables-restore", save);
    spawnSync("ip", ["netns", "exec", NODE, "conntrack", "-F"], { stdio: "ignore" });
    const wrong: string[] = [];
    let denied = 0;
    let allowed = 0;
    for (const src of cluster.pods) {
      const targets = cluster.pods.filter((d) => d !== src).flatMap((d) => [80, 81].map((port) => ({ d, port })));
      const out = execFileSync("ip", ["netns", "exec", podNs(src), "/usr/bin/python3", "-c", PROBE, ...targets.map((t) => `${t.d.podIP}:${t.port}`)], { encoding: "utf8" });
      const got = new Map(out.trim().split("\n").map((l) => l.split(" ") as [string, string]));
      for (const { d, port } of targets) {
        const v = got.get(`${d.podIP}:${port}`);
        const want = connectionAllowed(cluster, src, d, port, "TCP") ? "allow" : "deny";
        if (v === "deny") denied++;
        else allowed++;
        if (v !== want) wrong.push(`${podKeyOf(src)} -> ${podKeyOf(d)}:${port} kernel ${v}, reference ${want}`);
      }
    }
    expect(wrong).toEqual([]);
    expect(denied).toBeGreaterThan(0);
    expect(allowed).toBeGreaterThan(0);
  });
});
