// The generated kube-proxy ruleset moving real connections: in a scratch namespace holding the node's address,
// the real kernel runs tcbox's iptables-save output for upstream's TestOverallIPTablesRules cluster, and connections
// opened from the node (a TCP connect from a local socket) must be DNATed, masqueraded, rejected or dropped as
// upstream's packet-flow tests say for node-originated traffic (TestInternalExternalMasquerade "node to ..." rows).
// The kernel's answer is read from conntrack (the reply tuple's source is the endpoint) and from the MASQUERADE
// rule's counter.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadCluster } from "../../src/k8s/cluster.js";
import { generateIptables } from "../../src/k8s/kube-proxy/iptables.js";
import { iptablesSave } from "../../src/k8s/kube-proxy/iptables-save.js";

const NS = `tcbxkppk${process.pid}`;
let skipReason = "";

function sh(args: string[], input?: string): { status: number | null; out: string; err: string } {
  const r = spawnSync(args[0]!, args.slice(1), { input, encoding: "utf8" });
  return { status: r.status, out: r.stdout ?? "", err: r.stderr ?? "" };
}
const inNs = (...args: string[]) => sh(["ip", "netns", "exec", NS, ...args]);

beforeAll(() => {
  if (process.getuid?.() !== 0) return void (skipReason = "not root");
  for (const bin of ["/usr/sbin/iptables-legacy-restore", "/usr/bin/python3"]) if (!existsSync(bin)) return void (skipReason = `${bin} missing`);
  if (sh(["sh", "-c", "command -v conntrack"]).status !== 0) return void (skipReason = "conntrack tool missing");
  if (sh(["ip", "netns", "add", NS]).status !== 0) return void (skipReason = "ip netns add failed");
  const setup = [
    "ip link set lo up",
    "ip link add v0 type veth peer name v1",
    "ip addr add 192.168.0.2/24 dev v0",
    "ip link set v0 up",
    "ip link set v1 up",
    // kube-proxy sets route_localnet so NodePorts answer on 127.0.0.1 (--iptables-localhost-nodeports).
    "sysctl -qw net.ipv4.conf.all.route_localnet=1",
    "ip route add 10.0.0.0/8 dev v0",
    "ip route add 172.30.0.0/16 dev v0",
    "ip route add 1.2.3.4/32 dev v0",
    "ip route add 5.6.7.8/32 dev v0",
    "ip route add 192.168.99.0/24 dev v0",
  ];
  for (const c of setup) {
    const r = inNs(...c.split(" "));
    if (r.status !== 0) return void (skipReason = `${c}: ${r.err.trim()}`);
  }
  const cluster = loadCluster(readFileSync(new URL("../fixtures/k8s/kube-proxy/overall.yaml", import.meta.url), "utf8"), "overall.yaml", {
    serviceCIDR: "172.30.0.0/16",
    nodePortRange: [1, 65535],
    kubernetesService: false,
  });
  const rules = iptablesSave(generateIptables(cluster, { nodeName: "test-node", nodeIPs: ["192.168.0.2"], clusterCIDR: "10.0.0.0/8" }));
  const restore = spawnSync("ip", ["netns", "exec", NS, "iptables-legacy-restore"], { input: rules, encoding: "utf8" });
  if (restore.status !== 0) skipReason = `iptables-legacy-restore failed: ${restore.stderr}`;
});

afterAll(() => {
  sh(["ip", "netns", "del", NS]);
});

/** Open one TCP connection from the node; "refused" (REJECT), "timeout" (SYN sent or dropped). */
function connect(ip: string, port: number): string {
  const py = `import socket\ns=socket.socket(); s.settimeout(0.3)\ntry:\n  s.connect((${JSON.stringify(ip)}, ${port})); print("connected")\nexcept ConnectionRefusedError: print("refused")\nexcept OSError: print("timeout")`;
  return inNs("/usr/bin/python3", "-c", py).out.trim();
}

function masqueradeCount(): number {
  const save = inNs("iptables-legacy-save", "-c", "-t", "nat").out;
  const m = /^\[(\d+):\d+\] -A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE/m.exec(save);
  return m ? Number(m[1]) : -1;
}

/** The endpoint the kernel chose: the reply-direction source of the connection to ip:port. */
function dnatTarget(ip: string, port: number): string | null {
  const out = inNs("conntrack", "-L", "-p", "tcp", "--orig-dst", ip, "--dport", String(port)).out;
  const m = /dport=\d+ .*?\[UNREPLIED\] src=(\S+) dst=\S+ sport=(\d+)/.exec(out);
  return m ? `${m[1]}:${m[2]}` : null;
}

// Node-originated rows of upstream's tables for this cluster (svc2: eTP Local without local endpoints, svc5:
// loadBalancerSourceRanges that exclude the node, svc6: no endpoints).
const flows: { name: string; ip: string; port: number; output: string[] | "REJECT" | "DROP"; masq?: boolean }[] = [
  { name: "node to ClusterIP", ip: "172.30.0.41", port: 80, output: ["10.180.0.1:80"], masq: true },
  { name: "node to ClusterIP with two endpoints", ip: "172.30.0.44", port: 80, output: ["10.180.0.4:80", "10.180.0.5:80"], masq: true },
  { name: "node to NodePort", ip: "192.168.0.2", port: 3003, output: ["10.180.0.3:80"], masq: true },
  { name: "localhost to NodePort", ip: "127.0.0.1", port: 3003, output: ["10.180.0.3:80"], masq: true },
  { name: "node to eTP:Local NodePort without local endpoints (short-circuit)", ip: "192.168.0.2", port: 3001, output: ["10.180.0.2:80"], masq: true },
  { name: "node to eTP:Local LB IP (short-circuit)", ip: "1.2.3.4", port: 80, output: ["10.180.0.2:80"], masq: true },
  { name: "node to eTP:Local external IP (short-circuit)", ip: "192.168.99.22", port: 80, output: ["10.180.0.2:80"], masq: true },
  { name: "node to external IP, eTP Cluster", ip: "192.168.99.33", port: 80, output: ["10.180.0.4:80", "10.180.0.5:80"], masq: true },
  { name: "node to LB IP outside loadBalancerSourceRanges", ip: "5.6.7.8", port: 80, output: "DROP" },
  { name: "node to ClusterIP without endpoints", ip: "172.30.0.46", port: 80, output: "REJECT" },
];

describe("kube-proxy ruleset in the real kernel: node-originated connections", () => {
  for (const f of flows) {
    it(f.name, (ctx) => {
      if (skipReason) return ctx.skip(`kernel test skipped: ${skipReason}`);
      inNs("conntrack", "-F");
      inNs("iptables-legacy", "-t", "nat", "-Z");
      const result = connect(f.ip, f.port);
      if (f.output === "REJECT") {
        expect(result).toBe("refused");
        return;
      }
      expect(result).toBe("timeout");
      const target = dnatTarget(f.ip, f.port);
      if (f.output === "DROP") {
        expect(target).toBeNull();
        return;
      }
      expect(f.output).toContain(target);
      expect(masqueradeCount() > 0).toBe(f.masq ?? false);
    });
  }
});
