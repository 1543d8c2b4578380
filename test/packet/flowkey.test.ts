// Flow keys: a table of packets in, packed keys out; reverse keys match replies; jhash forms agree.
import { describe, expect, it } from "vitest";
import {
  AF_INET,
  buildArp,
  buildIcmpEcho,
  buildIcmpError,
  buildTcp,
  buildUdp,
  buildVxlan,
  FLOW_KEY_WORDS,
  flowHash,
  flowKeyEquals,
  flowKeyFromIpv4,
  flowKeyFromPacket,
  flowKeyFromQuoted,
  flowKeyReverse,
  flowKeySet,
  formatFlowKey,
  ICMP_DEST_UNREACH,
  ICMP_PORT_UNREACH,
  IPPROTO_TCP,
  Ipv4View,
  jhash,
  jhash2,
  jhash3,
  TCP_FLAGS,
  EthernetView,
  IcmpView,
} from "../../src/packet/index.js";
import { mulberry32, randInt } from "./rng.js";

const syn = buildTcp({ src: "10.0.0.1", dst: "10.96.0.1", sport: 40000, dport: 443, flags: TCP_FLAGS.SYN });
const synAck = buildTcp({ src: "10.96.0.1", dst: "10.0.0.1", sport: 443, dport: 40000, flags: TCP_FLAGS.SYN | TCP_FLAGS.ACK });
const dns = buildUdp({ vlan: 10, src: "10.0.0.1", dst: "10.96.0.10", sport: 5353, dport: 53 });
const ping = buildIcmpEcho({ src: "10.0.0.1", dst: "10.0.0.2", id: 66, seq: 1 });
const pong = buildIcmpEcho({ src: "10.0.0.2", dst: "10.0.0.1", id: 66, seq: 1, reply: true });
const unreach = buildIcmpError(ICMP_DEST_UNREACH, ICMP_PORT_UNREACH, dns);
const arp = buildArp({ srcMac: "02:00:00:00:00:01", srcIp: "10.0.0.1", dstIp: "10.0.0.2" });
const frag = (() => {
  const b = buildUdp({ src: "10.0.0.1", dst: "10.0.0.2", sport: 1, dport: 2 });
  new Ipv4View().bind(b, 14).fragOff = 0x0001;
  return b;
})();
const firstFrag = (() => {
  const b = buildUdp({ src: "10.0.0.1", dst: "10.0.0.2", sport: 1, dport: 2 });
  new Ipv4View().bind(b, 14).fragOff = 0x2000;
  return b;
})();
const gre = (() => {
  const b = buildUdp({ src: "10.0.0.1", dst: "10.0.0.2", sport: 1, dport: 2 });
  new Ipv4View().bind(b, 14).protocol = 47;
  return b;
})();

describe("flowKeyFromPacket", () => {
  const table: Array<[string, Uint8Array, string | false]> = [
    ["tcp syn", syn, "tcp 10.0.0.1:40000 -> 10.96.0.1:443"],
    ["udp dns, 802.1Q tagged", dns, "udp 10.0.0.1:5353 -> 10.96.0.10:53"],
    ["icmp echo: {id, type, code}", ping, "icmp 10.0.0.1 -> 10.0.0.2 type=8 code=0 id=66"],
    ["gre: generic, ports 0", gre, "proto 47 10.0.0.1 -> 10.0.0.2"],
    ["first fragment keeps ports", firstFrag, "udp 10.0.0.1:1 -> 10.0.0.2:2"],
    ["non-first fragment", frag, false],
    ["icmp error", unreach, false],
    ["arp", arp, false],
    ["truncated frame", syn.subarray(0, 40), false],
    ["empty", new Uint8Array(0), false],
  ];
  for (const [name, pkt, want] of table) {
    it(name, () => {
      const out = new Uint32Array(3 * FLOW_KEY_WORDS).fill(0xdead);
      const ok = flowKeyFromPacket(pkt, 0, out, FLOW_KEY_WORDS);
      expect(ok).toBe(want !== false);
      if (want !== false) {
        expect(formatFlowKey(out, FLOW_KEY_WORDS)).toBe(want);
        expect(out[FLOW_KEY_WORDS + 3]! >>> 8).toBe(AF_INET);
      } else {
        expect(out[FLOW_KEY_WORDS]).toBe(0xdead);
      }
      expect(out[0]).toBe(0xdead);
      expect(out[2 * FLOW_KEY_WORDS]).toBe(0xdead);
    });
  }

  it("the reverse key of a request is the key of its reply (tcp and icmp echo)", () => {
    const k = new Uint32Array(8);
    for (const [req, rep] of [[syn, synAck], [ping, pong]] as const) {
      expect(flowKeyFromPacket(req, 0, k, 0)).toBe(true);
      expect(flowKeyFromPacket(rep, 0, k, 4)).toBe(true);
      expect(flowKeyEquals(k, 0, k, 4)).toBe(false);
      expect(flowKeyReverse(k, 0, k, 0)).toBe(true);
      expect(flowKeyEquals(k, 0, k, 4)).toBe(true);
    }
  });

  it("an ICMP error's quoted datagram keys the flow it is about", () => {
    const eth = new EthernetView().bind(unreach);
    const ip = new Ipv4View().bind(unreach, eth.payloadOff);
    const icmp = new IcmpView().bind(unreach, ip.payloadOff, ip.payloadLen);
    const k = new Uint32Array(8);
    expect(flowKeyFromQuoted(unreach, icmp.payloadOff, icmp.payloadLen, k, 0)).toBe(true);
    expect(flowKeyFromPacket(dns, 0, k, 4)).toBe(true);
    expect(flowKeyEquals(k, 0, k, 4)).toBe(true);
  });

  it("flowKeyFromIpv4 and flowKeySet agree with the frame form", () => {
    const k = new Uint32Array(12);
    flowKeyFromPacket(syn, 0, k, 0);
    expect(flowKeyFromIpv4(syn, 14, syn.length - 14, k, 4)).toBe(true);
    flowKeySet(k, 8, 0x0a000001, 0x0a600001, 40000, 443, IPPROTO_TCP);
    expect(flowKeyEquals(k, 0, k, 4) && flowKeyEquals(k, 0, k, 8)).toBe(true);
    expect(flowHash(k, 0)).toBe(flowHash(k, 8));
  });

  it("VXLAN keys by the outer header (decapsulate first for the inner flow)", () => {
    const vx = buildVxlan({ src: "192.168.0.1", dst: "192.168.0.2", sport: 50000 }, 1, syn);
    const k = new Uint32Array(4);
    expect(flowKeyFromPacket(vx, 0, k, 0)).toBe(true);
    expect(formatFlowKey(k)).toBe("udp 192.168.0.1:50000 -> 192.168.0.2:4789");
  });
});

describe("jhash", () => {
  it("jhash2 over three words equals jhash_3words (same lookup3 core)", () => {
    const rnd = mulberry32(3);
    const w = new Uint32Array(3);
    for (let i = 0; i < 1000; i++) {
      for (let j = 0; j < 3; j++) w[j] = randInt(rnd, 2 ** 32);
      const seed = randInt(rnd, 2 ** 32);
      expect(jhash2(w, 0, 3, seed)).toBe(jhash3(w[0]!, w[1]!, w[2]!, seed));
    }
  });
  it("spreads 65536 sequential flows over 4096 buckets about evenly", () => {
    const k = new Uint32Array(4);
    const buckets = new Uint32Array(4096);
    for (let p = 0; p < 65536; p++) {
      flowKeySet(k, 0, 0x0a000001, 0x0a600001, p, 80, IPPROTO_TCP);
      buckets[flowHash(k, 0, 0x12345678) & 4095]!++;
    }
    // Mean 16 per bucket; a poor hash (e.g. xor of fields) piles sequential ports into few buckets.
    expect(Math.max(...buckets)).toBeLessThan(45);
    expect(Math.min(...buckets)).toBeGreaterThan(0);
  });
});

describe("jhash against lookup3's published vectors (driver5 in lookup3.c)", () => {
  const enc = (s: string) => new TextEncoder().encode(s);
  const table: Array<[string, number, number]> = [
    ["", 0, 0xdeadbeef],
    ["", 0xdeadbeef, 0xbd5b7dde],
    ["Four score and seven years ago", 0, 0x17770551],
    ["Four score and seven years ago", 1, 0xcd628161],
  ];
  for (const [text, seed, want] of table) {
    it(`hashlittle("${text}", ${seed}) = ${want.toString(16)}`, () => {
      const b = enc(text);
      expect(jhash(b, 0, b.length, seed)).toBe(want);
    });
  }
  it("jhash2 on words equals jhash on the same bytes in little-endian order", () => {
    const rnd = mulberry32(11);
    for (let n = 1; n <= 7; n++) {
      const w = new Uint32Array(n).map(() => randInt(rnd, 2 ** 32));
      const bytes = new Uint8Array(w.buffer.slice(0)); // this host is little-endian (x86/arm64)
      expect(jhash(bytes, 0, 4 * n, 99)).toBe(jhash2(w, 0, n, 99));
    }
  });
});
