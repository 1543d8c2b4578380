import { describe, expect, it } from "vitest";
import { get16, get32, ipv4HeaderChecksum } from "../../src/packet/checksum.js";
import { Ev, World, bridgeFdb, macToString, sendIcmpEcho, sendUdp, summarize, IPPROTO_UDP, type BridgeDevice } from "../../src/net/index.js";
import { bridgeNode, bridgePod, ip, run } from "./topo.js";

function setup() {
  const w = new World();
  const node = bridgeNode(w, "node1", "10.244.0.1/24");
  const a = bridgePod(w, node, "pod-a", "10.244.0.2/24", "10.244.0.1", "veth-a");
  const b = bridgePod(w, node, "pod-b", "10.244.0.3/24", "10.244.0.1", "veth-b");
  return { w, node, a, b, br: node.dev("cni0") as BridgeDevice };
}

describe("bridge: container to container on one node", () => {
  it("resolves the peer with ARP through the bridge, then delivers and replies", () => {
    const { w, a, b } = setup();
    const id = sendIcmpEcho(a, { dst: ip("10.244.0.3"), id: 7, seq: 1 });
    w.run();
    const s = summarize(w, id);
    expect(s.deliveredIn).toEqual(["pod-b"]);
    expect(s.forwards).toBe(0); // switched, not routed
    expect(s.hops.some((h) => h.includes("arp who-has 10.244.0.3"))).toBe(true);
    expect(s.hops.some((h) => h.includes("neigh queue 10.244.0.3"))).toBe(true);
    // The echo reply derived from it is delivered back in pod-a.
    const reply = s.derived.map((d) => summarize(w, d)).find((d) => d.deliveredIn.includes("pod-a"));
    expect(reply).toBeDefined();
    expect(a.neigh.get(a.dev("eth0"), ip("10.244.0.3"))?.mac).toBe(b.dev("eth0").mac);
  });

  it("learns both pods' MACs on their ports", () => {
    const { w, a, b, br, node } = setup();
    sendIcmpEcho(a, { dst: ip("10.244.0.3") });
    w.run();
    expect(br.fdbLookup(a.dev("eth0").mac)?.port.name).toBe("veth-a");
    expect(br.fdbLookup(b.dev("eth0").mac)?.port.name).toBe("veth-b");
    const fdb = bridgeFdb(node);
    expect(fdb).toContain(`${macToString(a.dev("eth0").mac)} dev veth-a master cni0\n`);
    expect(fdb).toContain(`${macToString(node.dev("veth-a").mac)} dev veth-a master cni0 permanent`);
  });

  it("ages learned entries after 300 s and floods unknown unicast", () => {
    const { w, a, b, br } = setup();
    sendIcmpEcho(a, { dst: ip("10.244.0.3") });
    w.run();
    const bmac = b.dev("eth0").mac;
    w.advance(299);
    expect(br.fdbLookup(bmac)).toBeDefined();
    w.advance(2);
    expect(br.fdbLookup(bmac)).toBeUndefined();
    // pod-a's neighbour entry is still usable (STALE), so it sends unicast to an unknown MAC: the bridge floods.
    const id = sendUdp(a, { dst: ip("10.244.0.3"), sport: 1000, dport: 53, payload: 4 });
    w.run();
    const s = summarize(w, id);
    expect(s.hops.some((h) => h.includes("bridge flood"))).toBe(true);
    expect(s.deliveredIn).toContain("pod-b");
  });

  it("a frame whose destination sits behind the ingress port leaves only with hairpin on", () => {
    for (const hairpin of [false, true]) {
      const { w, a, node, br } = setup();
      sendIcmpEcho(a, { dst: ip("10.244.0.3") });
      w.run();
      if (hairpin) run(node, "bridge link set dev veth-a hairpin on");
      // A frame from pod-a addressed to pod-a's own MAC (what a DNAT back to the sender looks like on the wire).
      const amac = a.dev("eth0").mac;
      const pkt = w.alloc();
      const f = pkt.buf;
      const o = pkt.off;
      for (let i = 0; i < 6; i++) f[o + i] = Math.floor(amac / 2 ** (8 * (5 - i))) & 255;
      for (let i = 0; i < 6; i++) f[o + 6 + i] = Math.floor(amac / 2 ** (8 * (5 - i))) & 255;
      f[o + 12] = 0x08;
      f[o + 13] = 0x06; // ARP ethertype keeps br_netfilter out of it
      pkt.len = 60;
      const id = pkt.id;
      w.enqueueRx(node.dev("veth-a"), pkt);
      w.run();
      const recs = w.trace.forPacket(id);
      expect(recs.some((r) => r.ev === Ev.BR_FORWARD && r.ifindex === node.dev("veth-a").ifindex)).toBe(hairpin);
      expect(br.ports.length).toBe(2);
    }
  });

  it("container to host: the bridge IP is a local address of the node", () => {
    const { w, a, node } = setup();
    const sock = node.bind(IPPROTO_UDP, 0, 8080, "test");
    const id = sendUdp(a, { dst: ip("10.244.0.1"), sport: 40000, dport: 8080, payload: 10 });
    w.run();
    expect(summarize(w, id).deliveredIn).toEqual(["node1"]);
    expect(sock.rx).toBe(1);
    expect(sock.lastSrc).toBe(ip("10.244.0.2"));
  });

  it("packets arriving in the peer namespace keep valid IPv4 checksums and TTL 64 (switched, no decrement)", () => {
    const { w, a, b } = setup();
    let seen = 0;
    b.bind(IPPROTO_UDP, 0, 9000).onReceive = (pkt) => {
      const l3 = pkt.off + 14;
      expect(ipv4HeaderChecksum(pkt.buf, l3, 20)).toBe(get16(pkt.buf, l3 + 10));
      expect(pkt.buf[l3 + 8]).toBe(64);
      expect(get32(pkt.buf, l3 + 12)).toBe(ip("10.244.0.2"));
      seen++;
    };
    sendUdp(a, { dst: ip("10.244.0.3"), sport: 1, dport: 9000, payload: 3 });
    w.run();
    expect(seen).toBe(1);
  });
});
