// The nftables evaluator against the real kernel: in a scratch namespace holding the node's address, `nft -f` loads
// the table tcbox generates for upstream's TestOverallNFTablesRules cluster, a local socket opens one TCP connection
// per flow, and what the kernel did (DNAT target and source NAT from `conntrack -L`, connection refused = reject,
// no entry = drop) must be one of the outcomes nftables-eval.ts gives for the same first packet (every numgen
// choice enumerated; it is a set when a Service has several endpoints).
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadCluster } from "../../src/k8s/cluster.js";
import { generateNftables, nftTransaction } from "../../src/k8s/kube-proxy/nftables.js";
import { compileNft, NftPath } from "../../src/k8s/kube-proxy/nftables-eval.js";
import { NatKind } from "../../src/netfilter/compiled.js";
import { PathResult } from "../../src/netfilter/hooks.js";
import { PacketState } from "../../src/netfilter/packet-state.js";
import { formatIpv4, parseIpv4 } from "../../src/packet/addr.js";

const NS = `tcbxkpne${process.pid}`;
const NODE = "192.168.0.2";
let skipReason = "";

function sh(args: string[], input?: string): { status: number | null; out: string; err: string } {
  const r = spawnSync(args[0]!, args.slice(1), { input, encoding: "utf8" });
  return { status: r.status, out: r.stdout ?? "", err: r.stderr ?? "" };
}
const inNs = (...args: string[]) => sh(["ip", "netns", "exec", NS, ...args]);

const cluster = loadCluster(readFileSync(new URL("../fixtures/k8s/kube-proxy/overall.yaml", import.meta.url), "utf8"), "overall.yaml", {
  serviceCIDR: "172.30.0.0/16",
  nodePortRange: [1, 65535],
  kubernetesService: false,
});
const table = generateNftables(cluster, { nodeName: "test-node", nodeIPs: [NODE], clusterCIDR: "10.0.0.0/8" });

beforeAll(() => {
  if (process.getuid?.() !== 0) return void (skipReason = "not root");
  for (const bin of ["/usr/sbin/nft", "/usr/bin/python3"]) if (!existsSync(bin)) return void (skipReason = `${bin} missing`);
  if (sh(["sh", "-c", "command -v conntrack"]).status !== 0) return void (skipReason = "conntrack tool missing");
  if (sh(["ip", "netns", "add", NS]).status !== 0) return void (skipReason = "ip netns add failed");
  const setup = [
    "ip link set lo up",
    "ip link add v0 type veth peer name v1",
    `ip addr add ${NODE}/24 dev v0`,
    "ip link set v0 up",
    "ip link set v1 up",
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
  const r = spawnSync("ip", ["netns", "exec", NS, "/usr/sbin/nft", "-f", "-"], { input: nftTransaction(table), encoding: "utf8" });
  if (r.status !== 0) skipReason = `nft -f failed: ${r.stderr}`;
});

afterAll(() => {
  sh(["ip", "netns", "del", NS]);
});

/**
 * Open one TCP connection from the node, with a listener on the port on every local address (a packet nft leaves
 * alone is delivered locally and connects): "connected", "refused" (reject), "timeout" (SYN sent, or dropped).
 */
function connect(ip: string, port: number): string {
  const py = `import socket\nl=socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); l.bind(("0.0.0.0", ${port})); l.listen()\ns=socket.socket(); s.settimeout(0.3)\ntry:\n  s.connect((${JSON.stringify(ip)}, ${port})); print("connected")\nexcept ConnectionRefusedError: print("refused")\nexcept OSError: print("timeout")`;
  return inNs("/usr/bin/python3", "-c", py).out.trim();
}

/** The kernel's outcome as "DNAT[ masq]" from the connection's conntrack entry ("-" when not DNATed), or "DROP" (none). */
function kernelOutcome(ip: string, port: number): string {
  const out = inNs("conntrack", "-L", "-p", "tcp", "--orig-dst", ip, "--dport", String(port)).out;
  const m = /src=(\S+) dst=\S+ sport=(\d+) dport=\d+ (?:\[UNREPLIED\] )?src=(\S+) dst=(\S+) sport=(\d+) dport=(\d+)/.exec(out);
  if (!m) return "DROP";
  const dnat = m[3] === ip && m[5] === String(port) ? "-" : `${m[3]}:${m[5]}`;
  // Source NAT: the reply goes to another address or port than the original source (masquerade fully-random).
  const masq = m[4] !== m[1] || m[6] !== m[2];
  return `${dnat}${masq ? " masq" : ""}`;
}

/** The evaluator's outcomes for the node's first packet to ip:port, every numgen choice. */
function evalOutcomes(ip: string, port: number): Set<string> {
  let pick = 0;
  let mod = 1;
  const isLocal = (a: number) => a >>> 24 === 127 || a === parseIpv4(NODE);
  const path = new NftPath(compileNft(table), {
    isLocal,
    masqueradeAddr: () => parseIpv4(NODE),
    numgen: (m) => ((mod = m), pick),
    now: () => 0,
  });
  const p = new PacketState();
  const out = new PathResult();
  const outcomes = new Set<string>();
  for (pick = 0; pick < mod; pick++) {
    path.resetDynamic();
    p.reset();
    p.proto = 6;
    p.src = parseIpv4(NODE);
    p.sport = 40000;
    p.dst = parseIpv4(ip);
    p.dport = port;
    const v = path.output(p, out);
    if (v !== 1) outcomes.add(out.rejectWith >= 0 ? "REJECT" : "DROP");
    else outcomes.add(`${out.dnat ? `${formatIpv4(out.dnatIp)}:${out.dnatPort}` : "-"}${out.snatKind === NatKind.MASQUERADE ? " masq" : ""}`);
  }
  return outcomes;
}

const flows: [string, string, number][] = [
  ["node to ClusterIP", "172.30.0.41", 80],
  ["node to ClusterIP with two endpoints", "172.30.0.44", 80],
  ["node to ClusterIP with session affinity", "172.30.0.45", 80],
  ["node to NodePort", NODE, 3003],
  ["node to eTP:Local NodePort (short-circuit)", NODE, 3001],
  ["node to eTP:Local LB IP (short-circuit)", "1.2.3.4", 80],
  ["node to eTP:Local external IP (short-circuit)", "192.168.99.22", 80],
  ["node to external IP, eTP Cluster", "192.168.99.33", 80],
  ["node to LB IP outside loadBalancerSourceRanges", "5.6.7.8", 80],
  ["node to ClusterIP without endpoints", "172.30.0.46", 80],
  ["node to a ClusterIP port no Service uses", "172.30.0.41", 81],
  ["node to an unallocated ClusterIP", "172.30.9.9", 80],
  ["node to an unused port of the node", NODE, 3999],
];

describe("kube-proxy nftables evaluator against the real kernel: node-originated connections", () => {
  for (const [name, ip, port] of flows) {
    it(name, (ctx) => {
      if (skipReason) return ctx.skip(`kernel test skipped: ${skipReason}`);
      inNs("conntrack", "-F");
      const want = evalOutcomes(ip, port);
      const result = connect(ip, port);
      let got: string;
      if (result === "refused") got = "REJECT";
      else {
        expect(["timeout", "connected"]).toContain(result);
        got = kernelOutcome(ip, port);
        if (result === "connected") expect(got).toBe("-");
      }
      expect([...want]).toContain(got);
    });
  }
});
