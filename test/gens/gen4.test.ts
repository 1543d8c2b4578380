// Gen 4 (eBPF on tc hooks): topology, maps, and the seed's walks with their rewrites done by the programs
// (lb4 DNAT + reverse NAT in the CT map, snat masquerade + reverse via the SNAT map), native routing.
import { beforeAll, describe, expect, it } from "vitest";
import { loadDemoCluster } from "../../src/k8s/demo-cluster.js";
import { buildGen4, prepareGen4Programs, type BuiltGen4 } from "../../src/gens/gen4.js";
import { nodeOf, type PodPlane } from "../../src/gens/index.js";
import { IPPROTO_UDP, ipRoute, sendUdp, summarize, type NetNamespace } from "../../src/net/index.js";
import { formatIpv4, parseIpv4 } from "../../src/packet/addr.js";
import { get16, get32 } from "../../src/packet/checksum.js";

let g: BuiltGen4;
beforeAll(async () => {
  await prepareGen4Programs();
  g = buildGen4(loadDemoCluster());
}, 600_000);

/** One UDP datagram and its reply; what each receiver saw as its peer. */
function exchange(from: NetNamespace, to: NetNamespace, dst: string, dport: number) {
  const seen: { src: string; dst: string }[] = [];
  const srv = to.bind(IPPROTO_UDP, 0, dport);
  const cli = from.bind(IPPROTO_UDP, 0, 41000);
  const peer = { addr: 0, port: 0, local: 0 };
  srv.onReceive = (p) => {
    const l3 = p.off + 14;
    peer.addr = get32(p.buf, l3 + 12);
    peer.port = get16(p.buf, l3 + 20);
    peer.local = get32(p.buf, l3 + 16);
    seen.push({ src: `${formatIpv4(peer.addr)}:${peer.port}`, dst: `${formatIpv4(get32(p.buf, l3 + 16))}:${get16(p.buf, l3 + 22)}` });
  };
  cli.onReceive = (p) => {
    const l3 = p.off + 14;
    seen.push({ src: `${formatIpv4(get32(p.buf, l3 + 12))}:${get16(p.buf, l3 + 20)}`, dst: `${formatIpv4(get32(p.buf, l3 + 16))}:${get16(p.buf, l3 + 22)}` });
  };
  try {
    const id = sendUdp(from, { dst: parseIpv4(dst), sport: 41000, dport, payload: 16 });
    g.world.run();
    const s = summarize(g.world, id);
    if (seen.length === 1) {
      sendUdp(to, { src: peer.local, dst: peer.addr, sport: dport, dport: peer.port, payload: 16 });
      g.world.run();
    }
    return { s, seen };
  } finally {
    to.sockets.close(srv);
    from.sockets.close(cli);
  }
}

const pod = (prefix: string, node?: string): PodPlane => g.pods.find((p) => p.key.startsWith(prefix) && (node === undefined || p.node === node))!;

describe("Gen 4 topology and maps", () => {
  it("lxc veths with /32 routes, native routes to the other nodes' pod CIDRs, no netfilter, programs on tc", () => {
    const n1 = nodeOf(g, "node-1");
    const a = pod("shop/frontend", "node-1");
    expect(a.hostIf).toMatch(/^lxc[0-9a-f]{11}$/);
    const routes = ipRoute(n1.ns);
    expect(routes).toContain(`${a.ip} dev ${a.hostIf} scope link`);
    for (const peer of g.nodes.filter((n) => n !== n1)) for (const r of peer.podRanges) expect(routes).toContain(r);
    expect(n1.netfilter.installed).toBe(false);
    expect(n1.ns.dev(a.hostIf!).tcIngress).not.toBeNull();
    expect(n1.ns.dev("eth0").tcEgress).not.toBeNull();
    expect(g.encapsulation).toBe("none");
  });

  it("the agent wrote every Service frontend into each node's lb4 services map and every pod into the ipcache", () => {
    const frontends = g.cluster.services.filter((s) => s.clusterIP !== "None" && s.clusterIP !== "").reduce((n, s) => n + s.ports.length, 0);
    for (const n of g.ebpf) {
      expect(n.lb.maps.services.count).toBeGreaterThanOrEqual(frontends);
      expect(n.policy.ipcache.count).toBeGreaterThanOrEqual(g.pods.filter((p) => !p.hostNetwork).length);
    }
  });
});

describe("Gen 4 walks", () => {
  it("cross-node pod -> pod natively: no encapsulation, the pod's source kept, programs ran on both lxc", () => {
    const a = pod("shop/frontend", "node-1");
    const b = pod("shop/db-0");
    const { s, seen } = exchange(a.ns, b.ns, b.ip, 7000);
    expect(seen[0]).toEqual({ src: `${a.ip}:41000`, dst: `${b.ip}:7000` });
    expect(seen[1]).toEqual({ src: `${b.ip}:7000`, dst: `${a.ip}:41000` });
    expect(s.encapBytes).toBe(0);
    expect(s.hops).toContain(`node-1 ${a.hostIf} tc_ingress OK`);
    expect(s.hops).toContain(`node-3 ${b.hostIf} tc_egress OK`);
  });

  it("pod -> Service: lb4 DNATs at the client's lxc, the backend sees the pod IP, the reply is reverse-NATed", () => {
    const a = pod("shop/frontend", "node-1");
    const dns = g.cluster.services.find((s) => s.metadata.namespace === "kube-system" && s.metadata.name === "kube-dns")!;
    const backends = g.pods.filter((p) => p.key.startsWith("kube-system/coredns"));
    let got: { s: ReturnType<typeof summarize>; seen: { src: string; dst: string }[] } | null = null;
    for (const b of backends) {
      const r = exchange(a.ns, b.ns, dns.clusterIP, 53);
      if (r.seen.length > 0) {
        got = r;
        expect(r.seen[0]).toEqual({ src: `${a.ip}:41000`, dst: `${b.ip}:53` });
        expect(r.seen[1]).toEqual({ src: `${dns.clusterIP}:53`, dst: `${a.ip}:41000` });
        break;
      }
    }
    expect(got, "no CoreDNS backend received the query").not.toBeNull();
  });

  it("pod -> internet: snat masquerades to the node IP at the uplink egress, the reply returns via the SNAT map", () => {
    const a = pod("shop/frontend", "node-1");
    const n1 = nodeOf(g, "node-1");
    const { seen, s } = exchange(a.ns, g.external.ns, "8.8.8.8", 53);
    expect(seen[0]).toEqual({ src: `${n1.ip}:41000`, dst: "8.8.8.8:53" });
    expect(s.hops).toContain("node-1 eth0 tc_egress OK");
    expect(seen[1]).toEqual({ src: "8.8.8.8:53", dst: `${a.ip}:41000` });
  });
});
