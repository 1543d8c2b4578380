// The kernel as referee for kube-proxy's IPVS-mode iptables side (the kernel here has no IPVS; ipsets and the
// `set` match it has): in a scratch namespace, `ipset restore` tcbox's `ipset save` text, iptables-legacy-restore
// the IPVS proxier's rules (they reference the sets, so the kernel checks every set name and dimension), save them
// back and compare with tcbox's text; then `ipset test` a table of entries against tcbox's IpSet membership, and
// send TCP SYNs from spoofed sources into the namespace (scapy on a veth peer) to the LB address bound on a dummy
// kube-ipvs0: the kernel's DROP (KUBE-SOURCE-RANGES-FIREWALL) and REJECT (KUBE-IPVS-FILTER) counters must move
// as tcbox's netfilter path decides for the same packet.
// Needs root, `ip netns`, the ipset tool (package ipset) and the xt_set match; skips with the reason otherwise.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import { loadCluster } from "../../src/k8s/cluster.js";
import { generateIpvs } from "../../src/k8s/kube-proxy/ipvs.js";
import { ipvsIptablesSave, ipvsRestorePayload } from "../../src/k8s/kube-proxy/ipvs-rules.js";
import { compileRuleset } from "../../src/netfilter/compile.js";
import { AddrType } from "../../src/netfilter/ctstate.js";
import { NF_ACCEPT } from "../../src/netfilter/eval.js";
import { NetfilterPath, PathResult } from "../../src/netfilter/hooks.js";
import { IpSetRegistry } from "../../src/netfilter/ipset.js";
import { PacketState } from "../../src/netfilter/packet-state.js";
import { RecentTables } from "../../src/netfilter/recent.js";
import { parseIptablesRestore } from "../../src/netfilter/restore.js";
import { formatIpv4, parseIpv4 } from "../../src/packet/addr.js";

const NS = `tcbxipvs${process.pid}`;
const LEGACY = existsSync("/usr/sbin/iptables-legacy-restore");
const RESTORE = LEGACY ? "iptables-legacy-restore" : "iptables-restore";
const SAVE = LEGACY ? "iptables-legacy-save" : "iptables-save";

function probe(): string | null {
  if (process.getuid?.() !== 0) return "not root";
  if (spawnSync("ipset", ["version"]).status !== 0) return "no ipset tool (apt-get install ipset)";
  if (spawnSync("iptables", ["-m", "set", "-h"]).status !== 0) return "iptables has no set match";
  const r = spawnSync("ip", ["netns", "add", NS], { encoding: "utf8" });
  if (r.status !== 0) return `ip netns add failed: ${r.stderr.trim()}`;
  return null;
}
const skipReason = probe();
if (skipReason) process.stderr.write(`test/kernel/iptables-ipvs: skipped (${skipReason})\n`);

afterAll(() => {
  if (!skipReason) spawnSync("ip", ["netns", "del", NS]);
});

function inNs(cmd: string, args: string[], input?: string) {
  return spawnSync("ip", ["netns", "exec", NS, cmd, ...args], { encoding: "utf8", input });
}

const MANIFESTS = `apiVersion: v1
kind: Service
metadata: {namespace: ns1, name: web}
spec:
  type: LoadBalancer
  clusterIP: 172.30.0.41
  externalIPs: [192.168.99.20]
  externalTrafficPolicy: Local
  healthCheckNodePort: 30500
  sessionAffinity: ClientIP
  loadBalancerSourceRanges: [192.168.0.0/24, 203.0.113.77/25, 0.0.0.0/0]
  ports: [{name: p80, port: 80, protocol: TCP, nodePort: 3001}]
status: {loadBalancer: {ingress: [{ip: 1.2.3.4}]}}
---
apiVersion: v1
kind: Service
metadata: {namespace: ns1, name: dns}
spec:
  type: NodePort
  clusterIP: 172.30.0.10
  ports: [{name: dns, port: 53, protocol: UDP, nodePort: 3053}, {name: dns-tcp, port: 53, protocol: TCP}, {name: sig, port: 2905, protocol: SCTP, nodePort: 3905}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {namespace: ns1, name: web-1, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
endpoints:
  - {addresses: [10.180.0.1], nodeName: test-node}
  - {addresses: [10.180.1.1], nodeName: node2}
ports: [{name: p80, port: 8080, protocol: TCP}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {namespace: ns1, name: dns-1, labels: {kubernetes.io/service-name: dns}}
addressType: IPv4
endpoints: [{addresses: [10.180.0.5], nodeName: test-node}]
ports: [{name: dns, port: 53, protocol: UDP}, {name: dns-tcp, port: 53, protocol: TCP}, {name: sig, port: 2905, protocol: SCTP}]
`;

const strip = (t: string) =>
  t.split("\n").filter((l) => l && !l.startsWith("#")).map((l) => l.replace(/\[\d+:\d+\]/g, "[0:0]")).join("\n");

describe.skipIf(skipReason !== null)("kube-proxy IPVS mode: ipsets and iptables rules in the kernel", () => {
  const cluster = loadCluster(MANIFESTS, "ipvs.yaml", { serviceCIDR: "172.30.0.0/16", nodePortRange: [1, 65535], kubernetesService: false });
  const st = generateIpvs(cluster, { nodeName: "test-node", nodeIPs: ["192.168.0.2"], clusterCIDR: "10.0.0.0/8" });

  it("ipset restore accepts tcbox's ipset save; the kernel lists the same sets and members", () => {
    const mineSave = st.ipsets.save();
    const r = inNs("ipset", ["restore"], mineSave);
    expect(r.status, r.stderr).toBe(0);
    const back = inNs("ipset", ["save"]).stdout;
    // The kernel adds bucketsize/initval to hash sets and lists members in hash order: compare as sorted lines.
    const norm = (t: string) => t.split("\n").filter(Boolean).map((l) => l.replace(/ bucketsize \d+ initval 0x[0-9a-f]+/, "")).sort();
    expect(norm(back)).toEqual(norm(mineSave));
  });

  it("iptables-restore accepts the IPVS proxier's rules and iptables-save prints tcbox's text", () => {
    const text = ipvsIptablesSave(st);
    const r = inNs(RESTORE, [], text);
    expect(r.status, r.stderr).toBe(0);
    expect(strip(inNs(SAVE, ["-t", "filter"]).stdout + inNs(SAVE, ["-t", "nat"]).stdout)).toBe(strip(text));
  });

  it("ipset test agrees with tcbox's membership, entry by entry", () => {
    const rows: [string, string, number, number, number, number][] = [
      // set, ipset entry, then tcbox's test arguments: address, protocol, port, third address
      ["KUBE-CLUSTER-IP", "172.30.0.41,tcp:80", parseIpv4("172.30.0.41"), 6, 80, 0],
      ["KUBE-CLUSTER-IP", "172.30.0.41,udp:80", parseIpv4("172.30.0.41"), 17, 80, 0],
      ["KUBE-CLUSTER-IP", "172.30.0.10,udp:53", parseIpv4("172.30.0.10"), 17, 53, 0],
      ["KUBE-CLUSTER-IP", "172.30.0.10,tcp:53", parseIpv4("172.30.0.10"), 6, 53, 0],
      ["KUBE-CLUSTER-IP", "172.30.0.10,tcp:54", parseIpv4("172.30.0.10"), 6, 54, 0],
      ["KUBE-EXTERNAL-IP-LOCAL", "192.168.99.20,tcp:80", parseIpv4("192.168.99.20"), 6, 80, 0],
      ["KUBE-EXTERNAL-IP", "192.168.99.20,tcp:80", parseIpv4("192.168.99.20"), 6, 80, 0],
      ["KUBE-LOAD-BALANCER", "1.2.3.4,tcp:80", parseIpv4("1.2.3.4"), 6, 80, 0],
      ["KUBE-LOAD-BALANCER-LOCAL", "1.2.3.4,tcp:80", parseIpv4("1.2.3.4"), 6, 80, 0],
      ["KUBE-NODE-PORT-TCP", "3001", 0, 6, 3001, 0],
      ["KUBE-NODE-PORT-LOCAL-TCP", "3001", 0, 6, 3001, 0],
      ["KUBE-NODE-PORT-UDP", "3053", 0, 17, 3053, 0],
      ["KUBE-NODE-PORT-UDP", "3001", 0, 17, 3001, 0],
      ["KUBE-HEALTH-CHECK-NODE-PORT", "30500", 0, 6, 30500, 0],
      ["KUBE-LOOP-BACK", "10.180.0.1,tcp:8080,10.180.0.1", parseIpv4("10.180.0.1"), 6, 8080, parseIpv4("10.180.0.1")],
      ["KUBE-LOOP-BACK", "10.180.1.1,tcp:8080,10.180.1.1", parseIpv4("10.180.1.1"), 6, 8080, parseIpv4("10.180.1.1")],
      ["KUBE-LOOP-BACK", "10.180.0.5,udp:53,10.180.0.5", parseIpv4("10.180.0.5"), 17, 53, parseIpv4("10.180.0.5")],
      ["KUBE-LOAD-BALANCER-FW", "1.2.3.4,tcp:80", parseIpv4("1.2.3.4"), 6, 80, 0],
      ["KUBE-LOAD-BALANCER-SOURCE-CIDR", "1.2.3.4,tcp:80,192.168.0.77", parseIpv4("1.2.3.4"), 6, 80, parseIpv4("192.168.0.77")],
      ["KUBE-LOAD-BALANCER-SOURCE-CIDR", "1.2.3.4,tcp:80,203.0.113.1", parseIpv4("1.2.3.4"), 6, 80, parseIpv4("203.0.113.1")],
      ["KUBE-LOAD-BALANCER-SOURCE-CIDR", "1.2.3.4,tcp:80,203.0.113.200", parseIpv4("1.2.3.4"), 6, 80, parseIpv4("203.0.113.200")],
      ["KUBE-LOAD-BALANCER-SOURCE-CIDR", "1.2.3.4,udp:80,192.168.0.77", parseIpv4("1.2.3.4"), 17, 80, parseIpv4("192.168.0.77")],
      ["KUBE-LOAD-BALANCER-SOURCE-CIDR", "1.2.3.4,tcp:81,192.168.0.77", parseIpv4("1.2.3.4"), 6, 81, parseIpv4("192.168.0.77")],
      ["KUBE-LOAD-BALANCER-SOURCE-CIDR", "1.2.3.4,tcp:80,10.1.1.1", parseIpv4("1.2.3.4"), 6, 80, parseIpv4("10.1.1.1")],
      ["KUBE-LOAD-BALANCER-SOURCE-IP", "1.2.3.4,tcp:80,1.2.3.4", parseIpv4("1.2.3.4"), 6, 80, parseIpv4("1.2.3.4")],
      ["KUBE-NODE-PORT-SCTP-HASH", "192.168.0.2,sctp:3905", parseIpv4("192.168.0.2"), 132, 3905, 0],
      ["KUBE-NODE-PORT-SCTP-HASH", "192.168.0.2,tcp:3905", parseIpv4("192.168.0.2"), 6, 3905, 0],
      ["KUBE-IPVS-IPS", "172.30.0.41", parseIpv4("172.30.0.41"), 0, 0, 0],
      ["KUBE-IPVS-IPS", "192.168.0.2", parseIpv4("192.168.0.2"), 0, 0, 0],
    ];
    const got = rows.map(([set, entry]) => `${set} ${entry}: ${inNs("ipset", ["test", set, entry]).status === 0}`);
    const want = rows.map(([set, entry, a, proto, port, b]) => `${set} ${entry}: ${st.ipsets.get(set)!.test(a, proto, port, b)}`);
    expect(want).toEqual(got);
    // Both answers occur in the table (it can fail either way).
    expect(new Set(got.map((g) => g.endsWith("true"))).size).toBe(2);
  });

  it("loadBalancerSourceRanges in the kernel: SYNs from allowed and blocked sources to the LB address meet the verdicts tcbox gives", () => {
    const sets = inNs("ipset", ["restore", "-exist"], st.ipsets.save());
    expect(sets.status, sets.stderr).toBe(0);
    expect(inNs(RESTORE, [], ipvsIptablesSave(st)).status).toBe(0);
    for (const c of [
      "ip link set lo up", "ip link add v0 type veth peer name v1", "ip link set v0 up", "ip link set v1 up",
      "ip addr add 192.168.0.2/24 dev v0", "ip addr add 1.2.3.4/32 dev lo",
      "ip addr add 172.30.0.41/32 dev lo", // (no dummy driver here: lo holds the kube-ipvs0 addresses)
      "sysctl -qw net.ipv4.conf.all.rp_filter=0", "sysctl -qw net.ipv4.conf.v0.rp_filter=0", "sysctl -qw net.ipv4.conf.v0.accept_local=1",
    ]) {
      const r = inNs(c.split(" ")[0]!, c.split(" ").slice(1));
      expect(r.status, `${c}: ${r.stderr}`).toBe(0);
    }
    const flows: [string, string, number][] = [
      ["203.0.113.2", "1.2.3.4", 80], // 203.0.113.77/25 → 203.0.113.0/25
      ["203.0.113.130", "1.2.3.4", 80],
      ["10.0.0.2", "1.2.3.4", 80], // only 0.0.0.0/0 would allow it, and the kernel refused that member
      ["192.168.0.77", "1.2.3.4", 80],
      ["1.2.3.4", "1.2.3.4", 80], // the node to its own LB address (KUBE-LOAD-BALANCER-SOURCE-IP)
      ["203.0.113.2", "1.2.3.4", 81], // not a Service port: KUBE-IPVS-FILTER
      ["203.0.113.130", "172.30.0.41", 80], // the ClusterIP has no source ranges
    ];
    const mac = inNs("cat", ["/sys/class/net/v0/address"]).stdout.trim();
    const py = [
      "import subprocess, time, re",
      "from scapy.all import Ether, IP, TCP, sendp, conf",
      "conf.verb = 0",
      "def counts():",
      `  t = subprocess.run(["${SAVE}", "-c", "-t", "filter"], capture_output=True, text=True).stdout`,
      "  d = re.search(r'^\\[(\\d+):\\d+\\] -A KUBE-SOURCE-RANGES-FIREWALL -j DROP$', t, re.M)",
      "  r = re.search(r'^\\[(\\d+):\\d+\\] -A KUBE-IPVS-FILTER .*-j REJECT', t, re.M)",
      "  return int(d.group(1)), int(r.group(1))",
      `for i, (s, d, p) in enumerate(${JSON.stringify(flows)}):`,
      "  a = counts()",
      `  sendp(Ether(dst="${mac}")/IP(src=s, dst=d)/TCP(sport=41000 + i, dport=p, flags="S"), iface="v1")`,
      "  time.sleep(0.05)",
      "  b = counts()",
      "  print('DROP' if b[0] > a[0] else 'REJECT' if b[1] > a[1] else 'ACCEPT')",
    ].join("\n");
    const r = inNs("/usr/bin/python3", ["-c", py]);
    expect(r.status, r.stderr).toBe(0);
    const kernel = r.stdout.trim().split("\n");
    const recent = new RecentTables();
    const rules = compileRuleset(parseIptablesRestore(ipvsRestorePayload(st)), { ipsets: st.ipsets, recent });
    const local = (a: number) => a === parseIpv4("192.168.0.2") || st.kubeIpvs0.includes(formatIpv4(a));
    const path = new NetfilterPath(rules, {
      randomMatch: () => false, addrType: (a) => (local(a) ? AddrType.LOCAL : AddrType.UNICAST), now: () => 0, recent,
      isLocal: local, masqueradeAddr: () => parseIpv4("192.168.0.2"),
    });
    const mine = flows.map(([src, dst, port], i) => {
      const p = new PacketState();
      p.proto = 6;
      p.src = parseIpv4(src);
      p.dst = parseIpv4(dst);
      p.sport = 41000 + i;
      p.dport = port;
      p.iif = 1;
      const out = new PathResult();
      return path.receive(p, out) === NF_ACCEPT ? "ACCEPT" : out.rejectWith >= 0 ? "REJECT" : "DROP";
    });
    expect(mine).toEqual(kernel);
    expect(new Set(kernel)).toEqual(new Set(["ACCEPT", "DROP", "REJECT"]));
  });

  it("hash:ip,port,net: the kernel refuses a /0 network and a /33, clears host bits and prints /32 bare, as tcbox's IpSet does", () => {
    const set = "tcbx-cidr";
    expect(inNs("ipset", ["create", set, "hash:ip,port,net"]).status).toBe(0);
    const mine = new IpSetRegistry().create(set, "hash:ip,port,net");
    const rows = ["1.2.3.4,tcp:80,0.0.0.0/0", "1.2.3.4,tcp:80,10.1.2.3/8", "1.2.3.4,tcp:80,10.1.2.3/32", "1.2.3.4,tcp:80,10.0.0.0/33", "1.2.3.4,udp:53,172.16.5.5/12"];
    const tcboxAdds = (e: string) => {
      try {
        mine.add(e);
        return true;
      } catch {
        return false;
      }
    };
    expect(rows.map(tcboxAdds)).toEqual(rows.map((e) => inNs("ipset", ["add", set, e]).status === 0));
    const members = (t: string) => t.split("\n").filter((l) => l.startsWith("add ")).sort();
    expect(members(mine.save().join("\n"))).toEqual(members(inNs("ipset", ["save", set]).stdout));
  });
});
