// Walks that need each node's netfilter (kube-proxy + the CNI agent's rules, compiled into the node namespaces by
// the default installer): pod -> Service DNAT to a backend, pod -> internet SNAT to the node's address and the
// reply un-NATed by conntrack back to the pod.
import { describe, expect, it } from "vitest";
import { loadDemoCluster } from "../../src/k8s/demo-cluster.js";
import { buildGeneration, nodeOf, type BuiltGeneration } from "../../src/gens/index.js";
import { IPPROTO_UDP, sendUdp } from "../../src/net/index.js";
import { formatIpv4, parseIpv4 } from "../../src/packet/addr.js";
import { get16, get32 } from "../../src/packet/checksum.js";

interface Seen {
  where: string;
  src: string;
  dst: string;
}

function listen(g: BuiltGeneration, nsName: string, port: number, seen: Seen[], reply = false) {
  const ns = g.world.ns(nsName);
  ns.bind(IPPROTO_UDP, 0, port).onReceive = (p) => {
    const l3 = p.off + 14;
    const l4 = l3 + (p.buf[l3]! & 15) * 4;
    const src = formatIpv4(get32(p.buf, l3 + 12));
    const sport = get16(p.buf, l4);
    seen.push({ where: nsName, src: `${src}:${sport}`, dst: `${formatIpv4(get32(p.buf, l3 + 16))}:${get16(p.buf, l4 + 2)}` });
    if (reply) sendUdp(ns, { src: get32(p.buf, l3 + 16), dst: parseIpv4(src), sport: port, dport: sport, payload: 4 });
  };
}

describe.each([1, 2, 3] as const)("Gen %i with netfilter installed", (n) => {
  it("pod -> kube-dns ClusterIP: DNATed to a CoreDNS pod, the client's pod IP seen, the reply comes from the ClusterIP", () => {
    const g = buildGeneration(n, loadDemoCluster());
    const client = g.pods.find((p) => p.key.startsWith("shop/frontend") && p.node === "node-1")!;
    const dns = g.pods.filter((p) => p.key.startsWith("kube-system/coredns"));
    const seen: Seen[] = [];
    for (const d of dns) listen(g, d.ns.name, 53, seen, true);
    listen(g, client.ns.name, 40001, seen);
    sendUdp(client.ns, { dst: parseIpv4("10.96.0.10"), sport: 40001, dport: 53, payload: 12 });
    g.world.run();
    expect(seen).toHaveLength(2);
    expect(dns.map((d) => d.ns.name)).toContain(seen[0]!.where);
    const backend = dns.find((d) => d.ns.name === seen[0]!.where)!;
    expect(seen[0]).toEqual({ where: backend.ns.name, src: `${client.ip}:40001`, dst: `${backend.ip}:53` });
    expect(seen[1]).toEqual({ where: client.ns.name, src: "10.96.0.10:53", dst: `${client.ip}:40001` });
  });

  it("pod -> 8.8.8.8: the internet sees the node's address; the reply returns to the pod through conntrack", () => {
    const g = buildGeneration(n, loadDemoCluster());
    const client = g.pods.find((p) => p.key.startsWith("shop/backend") && p.node === "node-2")!;
    const seen: Seen[] = [];
    listen(g, "internet", 53, seen, true);
    listen(g, client.ns.name, 40002, seen);
    sendUdp(client.ns, { dst: parseIpv4("8.8.8.8"), sport: 40002, dport: 53, payload: 12 });
    g.world.run();
    expect(seen.map((s) => s.where)).toEqual(["internet", client.ns.name]);
    expect(seen[0]!.src.split(":")[0]).toBe(nodeOf(g, "node-2").ip);
    expect(seen[1]).toEqual({ where: client.ns.name, src: "8.8.8.8:53", dst: `${client.ip}:40002` });
  });

  it("pod -> pod across nodes is not masqueraded", () => {
    const g = buildGeneration(n, loadDemoCluster());
    const a = g.pods.find((p) => p.key.startsWith("shop/frontend") && p.node === "node-3")!;
    const b = g.pods.find((p) => p.key.startsWith("shop/backend") && p.node === "node-1")!;
    const seen: Seen[] = [];
    listen(g, b.ns.name, 9090, seen);
    sendUdp(a.ns, { dst: parseIpv4(b.ip), sport: 40003, dport: 9090, payload: 12 });
    g.world.run();
    expect(seen).toEqual([{ where: b.ns.name, src: `${a.ip}:40003`, dst: `${b.ip}:9090` }]);
  });
});

const SOLO = `apiVersion: v1
kind: Node
metadata: {name: n1}
status: {addresses: [{type: InternalIP, address: 10.0.1.10}]}
---
apiVersion: v1
kind: Pod
metadata: {name: solo, namespace: default, labels: {app: solo}}
spec:
  nodeName: n1
  containers: [{name: c, image: c, ports: [{containerPort: 8080, protocol: UDP}]}]
---
apiVersion: v1
kind: Service
metadata: {name: solo, namespace: default}
spec:
  clusterIP: 10.96.0.50
  selector: {app: solo}
  ports: [{port: 80, targetPort: 8080, protocol: UDP}]
`;

describe.each([1, 2, 3] as const)("Gen %i hairpin", (n) => {
  it("a pod reaching its own Service comes back to itself, masqueraded (KUBE-MARK-MASQ on the endpoint's own source)", async () => {
    const { loadCluster } = await import("../../src/k8s/cluster.js");
    const g = buildGeneration(n, loadCluster(SOLO, "solo.yaml"));
    const pod = g.pods.find((p) => p.key === "default/solo")!;
    const seen: Seen[] = [];
    listen(g, pod.ns.name, 8080, seen);
    sendUdp(pod.ns, { dst: parseIpv4("10.96.0.50"), sport: 40004, dport: 80, payload: 8 });
    g.world.run();
    expect(seen).toHaveLength(1);
    // Gen 1: hairpin on the cni0 port, source masqueraded to cni0's address; Gen 2/3: routed back out of the
    // pod's own veth, masqueraded to the node's address (the host veth has none).
    const masq = n === 1 ? "10.244.0.1" : "10.0.1.10";
    expect(seen[0]!.src.split(":")[0]).toBe(masq);
    expect(seen[0]!.dst).toBe(`${pod.ip}:8080`);
  });
});
