import { describe, expect, it } from "vitest";
import { get16, get32, ipv4HeaderChecksum, l4Checksum } from "../../src/packet/checksum.js";
import { IPPROTO_UDP, World, bridgeFdb, ipLink, ipRoute, ipRouteGet, sendUdp, summarize, flowSrcPort } from "../../src/net/index.js";
import { flannelCluster, ip } from "./topo.js";

describe("VXLAN between two nodes (Flannel style)", () => {
  it("encapsulates with 50 bytes, keeps the inner frame intact and decapsulates on the other node", () => {
    const w = new World();
    const { nodes } = flannelCluster(w);
    const inner: Uint8Array[] = [];
    const outer: Uint8Array[] = [];
    w.tap = (dev, pkt, dir) => {
      if (dir !== 1) return;
      if (dev.name === "flannel.1" && dev.ns.name === "node1") inner.push(pkt.frame().slice());
      if (dev.name === "eth0" && dev.ns.name === "node1" && pkt.buf[pkt.off + 23] === IPPROTO_UDP) outer.push(pkt.frame().slice());
    };
    let ttl = 0;
    nodes[1]!.pod.bind(IPPROTO_UDP, 0, 8080).onReceive = (p) => {
      ttl = p.buf[p.off + 22]!;
    };
    const id = sendUdp(nodes[0]!.pod, { dst: ip("10.244.1.2"), sport: 33333, dport: 8080, payload: 100 });
    w.run();
    const s = summarize(w, id);
    expect(s.deliveredIn).toEqual(["node2", "pod2"]); // the outer packet reaches node2's VXLAN socket, the inner one the pod
    expect(s.encaps).toBe(1);
    expect(s.forwards).toBe(2);
    expect(ttl).toBe(62);
    expect(inner.length).toBe(1);
    expect(outer.length).toBe(1);
    const o = outer[0]!;
    expect(o.length - inner[0]!.length).toBe(50);
    // Outer IPv4: node1 -> node2, UDP, valid header checksum, no DF.
    expect(get32(o, 26)).toBe(ip("192.168.1.11"));
    expect(get32(o, 30)).toBe(ip("192.168.1.12"));
    expect(ipv4HeaderChecksum(o, 14, 20)).toBe(get16(o, 24));
    expect(get16(o, 20) & 0x4000).toBe(0);
    // Outer UDP: dport 4789, sport from the flow hash in the local port range, a valid checksum (udpcsum).
    expect(get16(o, 36)).toBe(4789);
    expect(get16(o, 34)).toBeGreaterThanOrEqual(32768);
    expect(get16(o, 34)).toBeLessThan(61000);
    expect(l4Checksum(o, 34, o.length - 34, 6, ip("192.168.1.11"), ip("192.168.1.12"), 17)).toBe(get16(o, 40));
    expect(get16(o, 38)).toBe(o.length - 34);
    // VXLAN: I flag, VNI 1; then the inner frame byte for byte.
    expect(o[42]).toBe(0x08);
    expect((o[46]! << 16) | (o[47]! << 8) | o[48]!).toBe(1);
    expect(Buffer.from(o.subarray(50)).equals(Buffer.from(inner[0]!))).toBe(true);
  });

  it("one flow keeps one outer source port; different flows spread", () => {
    const w = new World();
    const { nodes } = flannelCluster(w);
    const ports = new Map<number, Set<number>>();
    w.tap = (dev, pkt, dir) => {
      if (dir === 1 && dev.name === "eth0" && dev.ns.name === "node1" && pkt.buf[pkt.off + 23] === IPPROTO_UDP) {
        const innerSport = get16(pkt.buf, pkt.off + 50 + 34);
        const set = ports.get(innerSport) ?? new Set();
        set.add(get16(pkt.buf, pkt.off + 34));
        ports.set(innerSport, set);
      }
    };
    for (let sport = 1000; sport < 1010; sport++) for (let k = 0; k < 3; k++) sendUdp(nodes[0]!.pod, { dst: ip("10.244.1.2"), sport, dport: 9, payload: 1 });
    w.run();
    expect([...ports.values()].every((s) => s.size === 1)).toBe(true);
    expect(new Set([...ports.values()].map((s) => [...s][0])).size).toBeGreaterThan(5);
    void flowSrcPort;
  });

  it("prints the node's routes, the VXLAN device and its FDB as iproute2 does", () => {
    const w = new World();
    const { nodes } = flannelCluster(w);
    const n1 = nodes[0]!.node;
    expect(ipRoute(n1)).toBe(
      [
        "default via 192.168.1.1 dev eth0",
        "10.244.0.0/24 dev cni0 proto kernel scope link src 10.244.0.1",
        "10.244.1.0/24 via 10.244.1.0 dev flannel.1 onlink",
        "192.168.1.0/24 dev eth0 proto kernel scope link src 192.168.1.11",
        "",
      ].join("\n"),
    );
    expect(ipLink(n1, { details: true, dev: "flannel.1" })).toContain("vxlan id 1 local 192.168.1.11 dev eth0 srcport 0 0 dstport 4789 nolearning ttl auto ageing 300 udpcsum");
    expect(ipLink(n1, { dev: "flannel.1" })).toMatch(/mtu 1450 /);
    expect(bridgeFdb(n1)).toMatch(/ dev flannel\.1 dst 192\.168\.1\.12 self permanent\n/);
  });

  it("container to the outside goes out of the node's default route", () => {
    const w = new World();
    const { nodes, internet } = flannelCluster(w);
    const sock = internet.bind(IPPROTO_UDP, 0, 53);
    const id = sendUdp(nodes[0]!.pod, { dst: ip("8.8.8.8"), sport: 5353, dport: 53, payload: 30 });
    w.run();
    const s = summarize(w, id);
    expect(s.deliveredIn).toEqual(["internet"]);
    expect(s.encaps).toBe(0);
    expect(sock.lastSrc).toBe(ip("10.244.0.2")); // no masquerade in the bare model: iptables adds it
  });
});

describe("ip route get", () => {
  const cases = [
    { ns: "node1", dst: "10.244.1.2", out: "10.244.1.2 via 10.244.1.0 dev flannel.1 src 10.244.0.0" },
    { ns: "node1", dst: "10.244.0.2", out: "10.244.0.2 dev cni0 src 10.244.0.1" },
    { ns: "node1", dst: "8.8.8.8", out: "8.8.8.8 via 192.168.1.1 dev eth0 src 192.168.1.11" },
    { ns: "node1", dst: "192.168.1.11", out: "local 192.168.1.11 dev lo src 192.168.1.11" },
    { ns: "pod1", dst: "10.244.1.2", out: "10.244.1.2 via 10.244.0.1 dev eth0 src 10.244.0.2" },
  ];
  for (const c of cases) {
    it(`${c.ns}: ${c.dst}`, () => {
      const w = new World();
      flannelCluster(w);
      expect(ipRouteGet(w.ns(c.ns), ip(c.dst))).toBe(c.out + "\n");
    });
  }
});
