import { describe, expect, it } from "vitest";
import { get16, get32, ipv4HeaderChecksum } from "../../src/packet/checksum.js";
import { IPPROTO_TCP, IPPROTO_UDP, Ev, World, sendIcmpEcho, sendTcp, sendUdp, summarize, type Pkt } from "../../src/net/index.js";
import { ip, routedPair, run } from "./topo.js";

/** Capture the IPv4 bytes of every packet a namespace's sockets or local stack receive. */
function captureIcmp(w: World, nsName: string): Uint8Array[] {
  const got: Uint8Array[] = [];
  const ns = w.ns(nsName);
  ns.bind(1, 0, 0, "capture").onReceive = (p: Pkt) => {
    got.push(p.buf.slice(p.off + 14, p.off + p.len));
  };
  return got;
}

describe("routing: one routed hop", () => {
  it("forwards with TTL decremented and a valid header checksum", () => {
    const w = new World();
    const { client, server } = routedPair(w);
    const seen: { ttl: number; ok: boolean }[] = [];
    server.bind(IPPROTO_UDP, 0, 5000).onReceive = (p) => {
      const l3 = p.off + 14;
      seen.push({ ttl: p.buf[l3 + 8]!, ok: ipv4HeaderChecksum(p.buf, l3, 20) === get16(p.buf, l3 + 10) });
    };
    const id = sendUdp(client, { dst: ip("10.0.2.2"), sport: 1234, dport: 5000, payload: 20, ttl: 64 });
    w.run();
    expect(seen).toEqual([{ ttl: 63, ok: true }]);
    const s = summarize(w, id);
    expect(s.forwards).toBe(1);
    expect(s.hops).toContain("router r2 forward ttl 63");
    expect(s.hops.filter((h) => h.includes("FORWARD"))).toEqual(["router r1 FORWARD ACCEPT"]);
  });

  const ttlCases = [
    { name: "TTL 1 expires at the router", ttl: 1, delivered: false, icmp: { type: 11, code: 0, from: "10.0.1.1" } },
    { name: "TTL 2 reaches the server with TTL 1", ttl: 2, delivered: true, icmp: null },
  ];
  for (const c of ttlCases) {
    it(c.name, () => {
      const w = new World();
      const { client } = routedPair(w);
      const errors = captureIcmp(w, "client");
      w.ns("server").bind(IPPROTO_UDP, 0, 5000);
      const id = sendUdp(client, { dst: ip("10.0.2.2"), sport: 1234, dport: 5000, payload: 12, ttl: c.ttl });
      w.run();
      expect(summarize(w, id).deliveredIn.includes("server")).toBe(c.delivered);
      if (c.icmp === null) {
        expect(errors).toEqual([]);
        return;
      }
      expect(errors.length).toBe(1);
      const e = errors[0]!;
      expect(get32(e, 12)).toBe(ip(c.icmp.from)); // from the router's address toward the sender
      expect(e[20]).toBe(c.icmp.type);
      expect(e[21]).toBe(c.icmp.code);
      // RFC 792: the offending header (as received: TTL still 1) and at least 64 bits of its data; Linux quotes all 40 bytes.
      const inner = e.subarray(28);
      expect(inner.length).toBe(20 + 8 + 12);
      expect(inner[8]).toBe(1);
      expect(get32(inner, 16)).toBe(ip("10.0.2.2"));
      expect(get16(inner, 22)).toBe(5000);
      expect(ipv4HeaderChecksum(e, 0, 20)).toBe(get16(e, 10));
    });
  }

  it("no route: ICMP net unreachable from the router", () => {
    const w = new World();
    const { client } = routedPair(w);
    const errors = captureIcmp(w, "client");
    const id = sendUdp(client, { dst: ip("192.0.2.9"), sport: 1, dport: 2 });
    w.run();
    expect(summarize(w, id).dropped).toBe("no route");
    expect(errors.map((e) => [e[20], e[21], get32(e, 12)])).toEqual([[3, 0, ip("10.0.1.1")]]);
  });

  it("ip_forward=0: the router drops silently", () => {
    const w = new World();
    const { client } = routedPair(w, false);
    const errors = captureIcmp(w, "client");
    const id = sendUdp(client, { dst: ip("10.0.2.2"), sport: 1, dport: 2 });
    w.run();
    expect(summarize(w, id).dropped).toBe("forwarding disabled");
    expect(errors).toEqual([]);
  });

  const typed = [
    { route: "blackhole 192.0.2.0/24", drop: "blackhole", icmp: [] as number[][] },
    { route: "unreachable 192.0.2.0/24", drop: "unreachable", icmp: [[3, 1]] },
    { route: "prohibit 192.0.2.0/24", drop: "prohibit", icmp: [[3, 13]] },
  ];
  for (const t of typed) {
    it(`route type: ${t.route}`, () => {
      const w = new World();
      const { client, router } = routedPair(w);
      run(router, `ip route add ${t.route}`);
      const errors = captureIcmp(w, "client");
      const id = sendUdp(client, { dst: ip("192.0.2.9"), sport: 1, dport: 2 });
      w.run();
      expect(summarize(w, id).dropped).toBe(t.drop);
      expect(errors.map((e) => [e[20], e[21]])).toEqual(t.icmp);
    });
  }

  it("nothing listening: UDP gets port unreachable, TCP a RST, ping an echo reply", () => {
    const w = new World();
    const { client, server } = routedPair(w);
    const got = captureIcmp(w, "client");
    const rsts: number[] = [];
    client.bind(IPPROTO_TCP, 0, 40000).onReceive = (p) => {
      const l4 = p.off + 34;
      rsts.push(p.buf[l4 + 13]!);
      expect(get32(p.buf, l4 + 8)).toBe(1001); // ack = seq + 1 for the SYN
    };
    sendUdp(client, { dst: ip("10.0.2.2"), sport: 1, dport: 7 });
    sendTcp(client, { dst: ip("10.0.2.2"), sport: 40000, dport: 80, seq: 1000, flags: 0x02 });
    sendIcmpEcho(client, { dst: ip("10.0.2.2"), id: 9, seq: 3 });
    w.run();
    expect(got.map((e) => [e[20], e[21], get32(e, 12)])).toEqual([
      [3, 3, ip("10.0.2.2")],
      [0, 0, ip("10.0.2.2")],
    ]);
    expect(rsts).toEqual([0x14]); // RST|ACK
    void server;
  });

  it("a routing loop ends in TTL expiry", () => {
    const w = new World();
    const { client, router, server } = routedPair(w);
    // The server forwards 198.51.100.0/24 back to the router, which sends it to the server: a loop.
    run(router, "ip route add 198.51.100.0/24 via 10.0.2.2");
    run(server, "sysctl -w net.ipv4.ip_forward=1");
    const errors = captureIcmp(w, "client");
    const id = sendUdp(client, { dst: ip("198.51.100.1"), sport: 1, dport: 2, ttl: 10 });
    w.run();
    const s = summarize(w, id);
    expect(s.forwards).toBe(9);
    expect(s.dropped).toBe("ttl expired");
    expect(errors.map((e) => e[20])).toEqual([11]);
  });

  it("ARP failure: ICMP host unreachable after the neighbour gives up", () => {
    const w = new World();
    const { client, router } = routedPair(w);
    run(router, "ip route add 10.0.3.0/24 dev r2");
    const errors = captureIcmp(w, "client");
    const id = sendUdp(client, { dst: ip("10.0.3.3"), sport: 1, dport: 2 });
    w.run();
    expect(summarize(w, id).dropped).toBe("neigh failed");
    expect(errors.map((e) => [e[20], e[21]])).toEqual([[3, 1]]);
    expect(w.trace.all().some((r) => r.ev === Ev.ARP_REQUEST)).toBe(true);
  });
});

describe("routing: MTU and policy rules", () => {
  it("a DF packet larger than the next hop's MTU gets fragmentation needed with that MTU", () => {
    for (const df of [true, false]) {
      const w = new World();
      const { client, router, server } = routedPair(w);
      run(router, "ip link set r2 mtu 1400");
      const errors = captureIcmp(w, "client");
      const sock = server.bind(IPPROTO_UDP, 0, 9);
      sendUdp(client, { dst: ip("10.0.2.2"), sport: 1, dport: 9, payload: 1450, df });
      w.run();
      if (df) {
        expect(errors.map((e) => [e[20], e[21], get16(e, 26)])).toEqual([[3, 4, 1400]]);
        expect(sock.rx).toBe(0);
      } else {
        // Fragmentation is not modelled: a packet without DF passes whole.
        expect(errors).toEqual([]);
        expect(sock.rx).toBe(1);
      }
    }
  });

  it("ip rule: traffic from one source uses its own table (AWS VPC CNI style)", () => {
    const w = new World();
    const { client } = routedPair(w);
    run(client, "ip addr add 10.0.1.7/24 dev eth0", "ip route add 198.51.100.0/24 via 10.0.1.1 dev eth0 table 100", "ip rule add from 10.0.1.7 lookup 100 priority 1000");
    const viaRule = client.routeLookup(ip("198.51.100.5"), ip("10.0.1.7"), null, 0);
    const other = client.routeLookup(ip("198.51.100.5"), ip("10.0.1.2"), null, 0);
    expect(viaRule?.table).toBe(100);
    expect(other?.table).toBe(254); // main: the default route
    expect(other?.len).toBe(0);
  });
});
