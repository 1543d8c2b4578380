// The control plane's allocations and the workload controllers' naming: host-local pod IPs from .2, node podCIDRs
// in node order, the kubernetes Service on the first ClusterIP, Deployment/StatefulSet pod names, the scheduler's
// spread, and the demo cluster every other part uses.
import { describe, expect, it } from "vitest";
import { HostLocalIpam, NodePortAllocator, PodCIDRAllocator, ServiceIPAllocator } from "../../src/k8s/allocators.js";
import { loadCluster } from "../../src/k8s/cluster.js";
import { loadDemoCluster } from "../../src/k8s/demo-cluster.js";
import { Rng } from "../../src/k8s/rand.js";
import { cidrContains, parseCidr, parseIpv4 } from "../../src/packet/addr.js";

describe("allocators", () => {
  it("host-local: gateway .1 reserved, sequential from .2, given IPs skipped, broadcast never", () => {
    const ipam = new HostLocalIpam("10.244.1.0/30");
    expect(ipam.next()).toBe("10.244.1.2");
    expect(() => ipam.next()).toThrow("no IP addresses available in range set: 10.244.1.0/30");
    const b = new HostLocalIpam("10.244.2.0/24");
    b.occupy("10.244.2.2");
    expect([b.next(), b.next()]).toEqual(["10.244.2.3", "10.244.2.4"]);
  });
  it("node podCIDRs: consecutive /24s of the cluster CIDR, skipping given ones", () => {
    const a = new PodCIDRAllocator("10.244.0.0/16");
    a.occupy("10.244.1.0/24");
    expect([a.next(), a.next(), a.next()]).toEqual(["10.244.0.0/24", "10.244.2.0/24", "10.244.3.0/24"]);
  });
  it("service IPs: first address is the kubernetes Service's; dynamic ones stay in range and above the static band", () => {
    const a = new ServiceIPAllocator("10.96.0.0/12", new Rng(1));
    expect(a.kubernetesServiceIP).toBe("10.96.0.1");
    const range = parseCidr("10.96.0.0/12");
    const seen = new Set<string>();
    for (let i = 0; i < 1000; i++) {
      const ip = a.next();
      expect(cidrContains(range, parseIpv4(ip))).toBe(true);
      expect(parseIpv4(ip) - range.addr).toBeGreaterThan(256);
      expect(seen.has(ip)).toBe(false);
      seen.add(ip);
    }
  });
  it("service IPs: a small range fills the static band last, then reports full", () => {
    const a = new ServiceIPAllocator("10.0.0.0/28", new Rng(3)); // 14 usable, static band 16 -> everything in it
    const got = new Set(Array.from({ length: 14 }, () => a.next()));
    expect(got.size).toBe(14);
    expect(() => a.next()).toThrow("range is full");
  });
  it("node ports: in range, unique", () => {
    const a = new NodePortAllocator(30000, 30099, new Rng(9));
    const got = new Set(Array.from({ length: 100 }, () => a.next()));
    expect(got.size).toBe(100);
    for (const p of got) expect(p >= 30000 && p <= 30099).toBe(true);
    expect(() => a.next()).toThrow("range is full");
  });
});

describe("workloads", () => {
  const text = `apiVersion: v1
kind: Node
metadata: {name: a}
status: {addresses: [{type: InternalIP, address: 192.168.0.1}]}
---
apiVersion: v1
kind: Node
metadata: {name: b}
status: {addresses: [{type: InternalIP, address: 192.168.0.2}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  replicas: 4
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, ports: [{containerPort: 80}]}]}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  replicas: 3
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec: {containers: [{name: c}]}
---
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: rs}
spec:
  replicas: 1
  selector: {matchLabels: {app: rs}}
  template:
    metadata: {labels: {app: rs}}
    spec: {nodeName: b, hostNetwork: true, containers: [{name: c}]}
`;
  it("names pods as their controllers do and spreads them over nodes", () => {
    const c = loadCluster(text, "w.yaml");
    const web = c.pods.filter((p) => p.metadata.labels.app === "web");
    expect(web).toHaveLength(4);
    const hash = web[0]!.metadata.labels["pod-template-hash"]!;
    expect(hash).toMatch(/^[bcdfghjklmnpqrstvwxz2456789]+$/);
    for (const p of web) expect(p.metadata.name).toMatch(new RegExp(`^web-${hash}-[bcdfghjklmnpqrstvwxz2456789]{5}$`));
    expect(web.filter((p) => p.nodeName === "a")).toHaveLength(2);
    expect(c.pods.filter((p) => p.metadata.labels.app === "db").map((p) => p.metadata.name)).toEqual(["db-0", "db-1", "db-2"]);
    const rs = c.pods.find((p) => p.metadata.labels.app === "rs")!;
    expect(rs.metadata.name).toMatch(/^rs-[bcdfghjklmnpqrstvwxz2456789]{5}$/);
    expect([rs.nodeName, rs.podIP]).toEqual(["b", "192.168.0.2"]);
    for (const p of c.pods.filter((p) => !p.hostNetwork)) {
      const node = c.nodes.find((n) => n.metadata.name === p.nodeName)!;
      expect(cidrContains(parseCidr(node.podCIDR), parseIpv4(p.podIP))).toBe(true);
    }
  });
  it("changing the template changes the pod-template-hash; the seed changes only the random suffixes", () => {
    const a = loadCluster(text, "w.yaml", { seed: 1 }).pods[0]!;
    const b = loadCluster(text.replace("containerPort: 80", "containerPort: 81"), "w.yaml", { seed: 1 }).pods[0]!;
    const c = loadCluster(text, "w.yaml", { seed: 2 }).pods[0]!;
    expect(a.metadata.labels["pod-template-hash"]).not.toBe(b.metadata.labels["pod-template-hash"]);
    expect(a.metadata.labels["pod-template-hash"]).toBe(c.metadata.labels["pod-template-hash"]);
    expect(a.metadata.name).not.toBe(c.metadata.name);
  });
});

describe("demo cluster", () => {
  const c = loadDemoCluster();
  it("has 3 m5.large nodes in 2 zones", () => {
    expect(c.nodes.map((n) => [n.metadata.name, n.zone, n.instanceType])).toEqual([
      ["node-1", "us-east-1a", "m5.large"],
      ["node-2", "us-east-1a", "m5.large"],
      ["node-3", "us-east-1b", "m5.large"],
    ]);
  });
  it("runs CoreDNS as kube-system/kube-dns: 2 ready endpoints on UDP and TCP 53", () => {
    const dns = c.services.find((s) => s.metadata.namespace === "kube-system" && s.metadata.name === "kube-dns")!;
    expect(dns.clusterIP).toBe("10.96.0.10");
    expect(dns.ports.filter((p) => p.port === 53).map((p) => p.protocol).sort()).toEqual(["TCP", "UDP"]);
    const slices = c.endpointSlices.filter((s) => s.metadata.namespace === "kube-system" && s.serviceName === "kube-dns");
    const eps = slices.flatMap((s) => s.endpoints);
    expect(eps).toHaveLength(2);
    for (const e of eps) expect(e.conditions.ready).toBe(true);
  });
  it("has every Service kind the generations need, one NetworkPolicy and a hostNetwork pod", () => {
    const kinds = new Set(c.services.map((s) => (s.clusterIP === "None" ? "headless" : s.type)));
    expect([...kinds].sort()).toEqual(["ClusterIP", "LoadBalancer", "NodePort", "headless"]);
    expect(c.networkPolicies).toHaveLength(1);
    expect(c.pods.some((p) => p.hostNetwork)).toBe(true);
    expect(c.services.find((s) => s.metadata.name === "kubernetes")!.clusterIP).toBe("10.96.0.1");
  });
});
