// The seed's walks through each generation's kernel model: which hops, which rewrites, how many bytes on the wire.
// (Service DNAT, SNAT to the internet and replies via conntrack need netfilter installed in the node namespaces:
// see BuildOptions.installNetfilter; here the walks that routing, bridging and encapsulation decide.)
import { describe, expect, it } from "vitest";
import { loadDemoCluster } from "../../src/k8s/demo-cluster.js";
import { buildGeneration, nodeOf, type BuiltGeneration, type PodPlane } from "../../src/gens/index.js";
import { IPPROTO_UDP, sendUdp, summarize, type NetNamespace } from "../../src/net/index.js";
import { parseIpv4, formatIpv4 } from "../../src/packet/addr.js";
import { get32 } from "../../src/packet/checksum.js";

interface Seen {
  src: string;
  ttl: number;
  len: number;
}

/** Send one UDP datagram and report where it arrived, as the receiver saw it. */
function walk(g: BuiltGeneration, from: NetNamespace, to: NetNamespace, dst: string, port = 7000) {
  const seen: Seen[] = [];
  const sock = to.bind(IPPROTO_UDP, 0, port);
  sock.onReceive = (p) => {
    const l3 = p.off + 14;
    seen.push({ src: formatIpv4(get32(p.buf, l3 + 12)), ttl: p.buf[l3 + 8]!, len: p.len });
  };
  const id = sendUdp(from, { dst: parseIpv4(dst), sport: 40000, dport: port, payload: 16 });
  g.world.run();
  return { s: summarize(g.world, id), seen };
}

const pod = (g: BuiltGeneration, prefix: string, node: string): PodPlane => g.pods.find((p) => p.key.startsWith(prefix) && p.node === node)!;
const inOrder = (hops: string[], want: string[]) => {
  let i = 0;
  for (const h of hops) if (i < want.length && h === want[i]) i++;
  expect(want.slice(i), `missing hops in order; path was:\n${hops.join("\n")}`).toEqual([]);
};

const gens = [1, 2, 3] as const;
const built = new Map(gens.map((n) => [n, buildGeneration(n, loadDemoCluster())]));

describe.each(gens)("Gen %i walks on the demo cluster", (n) => {
  const g = built.get(n)!;

  it("container -> container on one host: source kept, no encapsulation", () => {
    const a = pod(g, "shop/frontend", "node-1");
    const b = pod(g, "shop/backend", "node-1");
    const { s, seen } = walk(g, a.ns, b.ns, b.ip);
    expect(seen).toHaveLength(1);
    expect(seen[0]!.src).toBe(a.ip);
    expect(s.encapBytes).toBe(0);
    if (n === 1) {
      // Pure L2 on cni0: the bridge forwards between ports, nothing is routed, the TTL is untouched.
      inOrder(s.hops, [`node-1 ${a.hostIf} rx 58`, `node-1 ${b.hostIf} bridge forward`, `${b.ns.name} eth0 rx 58`]);
      expect(seen[0]!.ttl).toBe(64);
      expect(s.forwards).toBe(0);
    } else {
      // Point to point: routed by the host from one veth to the other.
      inOrder(s.hops, [`node-1 ${a.hostIf} rx 58`, `node-1 ${b.hostIf} route unicast nexthop ${b.ip}`, `node-1 ${b.hostIf} tx 58`, `${b.ns.name} eth0 rx 58`]);
      expect(seen[0]!.ttl).toBe(63);
    }
  });

  it("container -> host: delivered to the node's stack with the pod's source", () => {
    const a = pod(g, "shop/frontend", "node-1");
    const node = nodeOf(g, "node-1");
    const dst = n === 1 ? "10.244.0.1" : node.ip; // Gen 1: the bridge address is the pod's gateway
    const { seen, s } = walk(g, a.ns, node.ns, dst);
    expect(seen).toEqual([{ src: a.ip, ttl: 64, len: seen[0]!.len }]);
    expect(s.deliveredIn).toEqual(["node-1"]);
  });

  it("cross-node pod -> pod: Gen 1 over VXLAN (+50 bytes), Gen 2 over BGP routes, Gen 3 natively", () => {
    const a = pod(g, "shop/frontend", "node-1");
    const b = g.pods.find((p) => p.key === "shop/db-0")!; // node-3, the other subnet
    const { s, seen } = walk(g, a.ns, b.ns, b.ip);
    expect(seen).toHaveLength(1);
    expect(seen[0]!.src).toBe(a.ip);
    if (n === 1) {
      expect(s.encapBytes).toBe(50);
      inOrder(s.hops, ["node-1 flannel.1 route unicast nexthop 10.244.2.0", "node-1 flannel.1 vxlan encap vni 1 to 10.0.2.10", "node-1 eth0 tx 108", "node-3 eth0 local udp 4789", "node-3 flannel.1 vxlan decap vni 1", "node-3 flannel.1 rx 58"]);
      expect(seen[0]!.ttl).toBe(62); // node-1 and node-3 route the inner packet; the router routes only the outer one
    } else {
      expect(s.encapBytes).toBe(0);
      expect(s.encaps).toBe(0);
      const nextHop = n === 2 ? "10.0.1.1" : "10.0.1.1";
      inOrder(s.hops, [`node-1 eth0 route unicast nexthop ${nextHop}`, "node-1 eth0 tx 58", "vpc-router eth1 route unicast nexthop 10.0.2.10", "node-3 eth0 rx 58", `node-3 ${b.hostIf} tx 58`]);
      expect(seen[0]!.ttl).toBe(61); // node-1, the router, node-3
    }
  });

  it("same-subnet cross-node: Gen 2 straight to the peer node; Gen 3 to the node answering ARP for its pod", () => {
    const a = pod(g, "shop/frontend", "node-1");
    const b = pod(g, "shop/frontend", "node-2");
    const { s, seen } = walk(g, a.ns, b.ns, b.ip);
    expect(seen.map((x) => x.src)).toEqual([a.ip]);
    expect(s.hops.some((h) => h.startsWith("vpc-router"))).toBe(false);
    if (n === 2) inOrder(s.hops, ["node-1 eth0 route unicast nexthop 10.0.1.11", "node-2 eth0 rx 58"]);
    if (n === 3) inOrder(s.hops, [`node-1 eth0 route unicast nexthop ${b.ip}`, "node-2 eth0 rx 58"]);
  });

  it("pod -> internet leaves by the node's uplink and the router (SNAT belongs to the node's netfilter rules)", () => {
    const a = pod(g, "shop/frontend", "node-2");
    const { s, seen } = walk(g, a.ns, g.external.ns, "8.8.8.8", 53);
    expect(seen).toHaveLength(1);
    inOrder(s.hops, ["node-2 eth0 tx 58", "vpc-router uplink tx 58", "internet eth0 rx 58"]);
    const payloads = nodeOf(g, "node-2").netfilter.payloads.map((p) => p.text).join("");
    expect(payloads).toContain(n === 1 ? "-j MASQUERADE --random-fully" : n === 2 ? "-j MASQUERADE --random-fully" : `-j SNAT --to-source ${nodeOf(g, "node-2").ip}`);
  });
});
