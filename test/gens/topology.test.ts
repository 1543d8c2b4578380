// Each generation's topology as `ip route`, `bridge fdb`, `ip neigh` and `ip addr` print it, per node, on the demo
// cluster (3 nodes, 2 subnets) and a 3-node single-subnet cluster. Expected text is written from what the real
// agents program (flanneld, the bridge plugin, Calico/BIRD, aws-cni); only generated names and MACs are read
// back from the model.
import { describe, expect, it } from "vitest";
import { loadDemoCluster } from "../../src/k8s/demo-cluster.js";
import { buildGen1, buildGen2, buildGen3, nodeOf, nodeView, podOf, type BuiltGeneration } from "../../src/gens/index.js";
import { ipAddr, ipRoute, ipNeigh, macToString, sendUdp } from "../../src/net/index.js";
import { parseIpv4 } from "../../src/packet/index.js";
import { threeNodes } from "./fixtures.js";

const lines = (...l: string[]) => l.join("\n") + "\n";
const mac = (g: BuiltGeneration, node: string, dev: string) => macToString(nodeOf(g, node).ns.dev(dev).mac);
const podsOn = (g: BuiltGeneration, node: string) => g.pods.filter((p) => p.node === node && !p.hostNetwork);

describe("Gen 1 (Flannel VXLAN + cni0)", () => {
  const g = buildGen1(loadDemoCluster());

  it("node-1: cni0 subnet, a flannel route per remote node, kernel routes for eth0", () => {
    expect(nodeView(g, "node-1").ipRoute).toBe(
      lines(
        "default via 10.0.1.1 dev eth0",
        "10.0.1.0/24 dev eth0 proto kernel scope link src 10.0.1.10",
        "10.244.0.0/24 dev cni0 proto kernel scope link src 10.244.0.1",
        "10.244.1.0/24 via 10.244.1.0 dev flannel.1 onlink",
        "10.244.2.0/24 via 10.244.2.0 dev flannel.1 onlink",
      ),
    );
    expect(nodeOf(g, "node-1").learnedRoutes).toEqual(["10.244.1.0/24 via 10.244.1.0 dev flannel.1 onlink", "10.244.2.0/24 via 10.244.2.0 dev flannel.1 onlink"]);
  });

  it("node-2: bridge fdb holds each remote VTEP (self permanent) and the local ports; ip neigh the VTEP MACs", () => {
    const v = nodeView(g, "node-2");
    const ports = podsOn(g, "node-2").map((p) => `${mac(g, "node-2", p.hostIf!)} dev ${p.hostIf} master cni0 permanent`);
    expect(v.bridgeFdb).toBe(
      lines(
        `${mac(g, "node-1", "flannel.1")} dev flannel.1 dst 10.0.1.10 self permanent`,
        `${mac(g, "node-3", "flannel.1")} dev flannel.1 dst 10.0.2.10 self permanent`,
        `${mac(g, "node-2", "cni0")} dev cni0 master cni0 permanent`,
        ...ports,
      ),
    );
    expect(v.ipNeigh).toBe(lines(`10.244.0.0 dev flannel.1 lladdr ${mac(g, "node-1", "flannel.1")} PERMANENT`, `10.244.2.0 dev flannel.1 lladdr ${mac(g, "node-3", "flannel.1")} PERMANENT`));
    expect(ipAddr(nodeOf(g, "node-2").ns, "flannel.1")).toContain("mtu 1450");
    expect(ipAddr(nodeOf(g, "node-2").ns, "flannel.1")).toContain("inet 10.244.1.0/32 scope global flannel.1");
  });

  it("pods keep the cluster's addresses; a pod routes to the cluster CIDR and the default via cni0", () => {
    const view = loadDemoCluster();
    for (const p of g.pods) expect(p.ip).toBe(view.pods.find((x) => `${x.metadata.namespace}/${x.metadata.name}` === p.key)!.podIP);
    const pod = podsOn(g, "node-3")[0]!;
    expect(ipRoute(pod.ns)).toBe(lines("default via 10.244.2.1 dev eth0", "10.244.0.0/16 via 10.244.2.1 dev eth0", `10.244.2.0/24 dev eth0 proto kernel scope link src ${pod.ip}`));
    expect(ipAddr(pod.ns, "eth0")).toContain("mtu 1450");
    expect(nodeOf(g, "node-3").ns.dev(pod.hostIf!).hairpin).toBe(true);
  });

  it("the VXLAN port is 4789 unless asked (Flannel's own default is 8472)", () => {
    expect(nodeOf(g, "node-1").ns.dev("flannel.1")).toMatchObject({ dstport: 4789, vni: 1, remoteLearning: false });
    const g8472 = buildGen1(loadDemoCluster(), { vxlanPort: 8472 });
    expect(nodeOf(g8472, "node-1").ns.dev("flannel.1")).toMatchObject({ dstport: 8472 });
  });

  it("is deterministic for a seed", () => {
    const again = buildGen1(loadDemoCluster());
    for (const n of g.nodes) expect(nodeView(again, n.name)).toEqual(nodeView(g, n.name));
  });
});

describe("Gen 2 (Calico /32 routes + BGP)", () => {
  it("demo: own block blackholed, /32 per pod via cali, other subnets' blocks via the router (recursive next hop)", () => {
    const g = buildGen2(loadDemoCluster());
    const n1 = podsOn(g, "node-1");
    expect(n1.map((p) => p.ip)).toEqual(["10.244.0.0", "10.244.0.1", "10.244.0.2"]);
    expect(nodeView(g, "node-1").ipRoute).toBe(
      lines(
        "default via 10.0.1.1 dev eth0",
        "10.0.1.0/24 dev eth0 proto kernel scope link src 10.0.1.10",
        `10.244.0.0 dev ${n1[0]!.hostIf} scope link`,
        "blackhole 10.244.0.0/26 proto bird",
        `10.244.0.1 dev ${n1[1]!.hostIf} scope link`,
        `10.244.0.2 dev ${n1[2]!.hostIf} scope link`,
        "10.244.1.0/26 via 10.0.1.11 dev eth0 proto bird",
        "10.244.2.0/26 via 10.0.1.1 dev eth0 proto bird",
      ),
    );
    expect(nodeOf(g, "node-3").learnedRoutes).toEqual(["10.244.0.0/26 via 10.0.2.1 dev eth0 proto bird", "10.244.1.0/26 via 10.0.2.1 dev eth0 proto bird"]);
    // The ToR/VPC router peers with every node.
    expect(ipRoute(g.router)).toContain("10.244.2.0/26 via 10.0.2.10 dev eth1 proto bird");
    for (const p of n1) {
      expect(p.hostIf).toMatch(/^cali[0-9a-f]{11}$/);
      expect(nodeOf(g, "node-1").ns.dev(p.hostIf!).proxyArp).toBe(true);
      expect(macToString(nodeOf(g, "node-1").ns.dev(p.hostIf!).mac)).toBe("ee:ee:ee:ee:ee:ee");
      expect(ipRoute(p.ns)).toBe(lines("default via 169.254.1.1 dev eth0", "169.254.1.1 dev eth0 scope link"));
      expect(ipAddr(p.ns, "eth0")).toContain(`inet ${p.ip}/32 scope global eth0`);
    }
    expect(nodeView(g, "node-1").bridgeFdb).toBe("");
  });

  it("one subnet: every block is learned straight from its node (full-mesh iBGP next hop)", () => {
    const g = buildGen2(threeNodes());
    expect(nodeOf(g, "a").learnedRoutes).toEqual(["10.244.1.0/26 via 192.168.1.11 dev eth0 proto bird", "10.244.2.0/26 via 192.168.1.12 dev eth0 proto bird"]);
    expect(nodeOf(g, "c").learnedRoutes).toEqual(["10.244.0.0/26 via 192.168.1.10 dev eth0 proto bird", "10.244.1.0/26 via 192.168.1.11 dev eth0 proto bird"]);
  });

  it("Felix's static ARP: each node's ip neigh holds every local workload's IP and eth0 MAC on its cali, PERMANENT", () => {
    const g = buildGen2(loadDemoCluster());
    for (const n of g.nodes) {
      const want = podsOn(g, n.name).map((p) => `${p.ip} dev ${p.hostIf} lladdr ${macToString(p.ns.dev("eth0").mac)} PERMANENT`);
      expect(want.length).toBeGreaterThan(0);
      expect(nodeView(g, n.name).ipNeigh).toBe(lines(...want));
    }
    // The pod side: 169.254.1.1 resolves through the cali's proxy_arp (the cali's MAC, learned, not static).
    const pod = podsOn(g, "node-1")[0]!;
    const node = nodeOf(g, "node-1");
    expect(node.ns.dev(pod.hostIf!).proxyArp).toBe(true);
    expect(ipNeigh(pod.ns)).toBe("");
    sendUdp(pod.ns, { dst: parseIpv4(podsOn(g, "node-1")[1]!.ip), sport: 1000, dport: 53, payload: 4 });
    g.world.run();
    expect(ipNeigh(pod.ns)).toBe(`169.254.1.1 dev eth0 lladdr ${macToString(node.ns.dev(pod.hostIf!).mac)} REACHABLE\n`);
    // ... and the node never had to ask for the workload: its entries are still the permanent ones.
    expect(nodeView(g, "node-1").ipNeigh).not.toMatch(/REACHABLE|STALE|INCOMPLETE/);
  });

  it("endpoints follow the generation's pod addresses", () => {
    const g = buildGen2(loadDemoCluster());
    const slice = g.cluster.endpointSlices.find((s) => s.serviceName === "backend")!;
    const ips = g.pods.filter((p) => p.key.startsWith("shop/backend")).map((p) => p.ip);
    expect(slice.endpoints.flatMap((e) => e.addresses).sort()).toEqual(ips.sort());
  });
});

describe("Gen 3 (AWS VPC CNI)", () => {
  it("pods get VPC addresses of their node's subnet; the router has a /32 per pod; the pod's ARP for 169.254.1.1 is static", () => {
    const g = buildGen3(loadDemoCluster());
    for (const p of g.pods.filter((x) => !x.hostNetwork)) {
      const n = nodeOf(g, p.node);
      expect(p.ip.split(".").slice(0, 3).join(".")).toBe(n.ip.split(".").slice(0, 3).join("."));
      expect(ipRoute(g.router)).toContain(`${p.ip} via ${n.ip} dev`);
      expect(ipNeigh(p.ns)).toBe(`169.254.1.1 dev eth0 lladdr ${macToString(n.ns.dev(p.hostIf!).mac)} PERMANENT\n`);
    }
    const n3 = podsOn(g, "node-3");
    expect(nodeView(g, "node-3").ipRoute).toBe(
      lines("default via 10.0.2.1 dev eth0", "10.0.2.0/24 dev eth0 proto kernel scope link src 10.0.2.10", ...n3.map((p) => `${p.ip} dev ${p.hostIf} scope link`)),
    );
    // ENIs come from the subnet with the first 4 addresses reserved and the nodes' own addresses skipped.
    expect(nodeOf(g, "node-1").podRanges.slice(0, 7)).toEqual(["10.0.1.4/32", "10.0.1.5/32", "10.0.1.6/32", "10.0.1.7/32", "10.0.1.8/32", "10.0.1.9/32", "10.0.1.12/32"]);
    expect(nodeOf(g, "node-2").podRanges[0]).toBe(`10.0.1.${4 + 27 + 2 + 2}/32`); // after node-1 27 secondaries + 2 ENI primaries, skipping .10/.11
    expect(podOf(g, "kube-system/node-exporter-node-1").ip).toBe("10.0.1.10");
  });
});

describe("addresses per generation (compare JSON)", () => {
  it("pods and nodes by name; pod addresses differ by generation, node addresses do not", async () => {
    const { addressesOf } = await import("../../src/gens/index.js");
    const [a1, a2, a3] = [buildGen1, buildGen2, buildGen3].map((b) => addressesOf(b(loadDemoCluster())));
    expect(a1!.nodes).toEqual({ "node-1": "10.0.1.10", "node-2": "10.0.1.11", "node-3": "10.0.2.10" });
    expect(a2!.nodes).toEqual(a1!.nodes);
    expect(a3!.nodes).toEqual(a1!.nodes);
    expect(a1!.pods["shop/db-0"]).toBe("10.244.2.4");
    expect(a2!.pods["shop/db-0"]).toBe("10.244.2.2");
    expect(a3!.pods["shop/db-0"]).toBe("10.0.2.6");
    expect(a3!.pods["kube-system/node-exporter-node-1"]).toBe("10.0.1.10");
  });
});
