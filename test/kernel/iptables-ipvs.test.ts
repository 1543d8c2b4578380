// The kernel as referee for kube-proxy's IPVS-mode iptables side (the kernel here has no IPVS; ipsets and the
// `set` match it has): in a scratch namespace, `ipset restore` tcbox's `ipset save` text, iptables-legacy-restore
// the IPVS proxier's rules (they reference the sets, so the kernel checks every set name and dimension), save them
// back and compare with tcbox's text; then `ipset test` a table of entries against tcbox's IpSet membership.
// Needs root, `ip netns`, the ipset tool (package ipset) and the xt_set match; skips with the reason otherwise.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import { loadCluster } from "../../src/k8s/cluster.js";
import { generateIpvs } from "../../src/k8s/kube-proxy/ipvs.js";
import { ipvsIptablesSave } from "../../src/k8s/kube-proxy/ipvs-rules.js";
import { IpSetRegistry } from "../../src/netfilter/ipset.js";
import { parseIpv4 } from "../../src/packet/addr.js";

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
  ports: [{name: dns, port: 53, protocol: UDP, nodePort: 3053}, {name: dns-tcp, port: 53, protocol: TCP}]
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
ports: [{name: dns, port: 53, protocol: UDP}, {name: dns-tcp, port: 53, protocol: TCP}]
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
      ["KUBE-IPVS-IPS", "172.30.0.41", parseIpv4("172.30.0.41"), 0, 0, 0],
      ["KUBE-IPVS-IPS", "192.168.0.2", parseIpv4("192.168.0.2"), 0, 0, 0],
    ];
    const got = rows.map(([set, entry]) => `${set} ${entry}: ${inNs("ipset", ["test", set, entry]).status === 0}`);
    const want = rows.map(([set, entry, a, proto, port, b]) => `${set} ${entry}: ${st.ipsets.get(set)!.test(a, proto, port, b)}`);
    expect(want).toEqual(got);
    // Both answers occur in the table (it can fail either way).
    expect(new Set(got.map((g) => g.endsWith("true"))).size).toBe(2);
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
