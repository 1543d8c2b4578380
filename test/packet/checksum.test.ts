// The Internet checksum against known vectors (RFC 1071, RFC 1624, packets built by scapy), and incremental
// rewrites (RFC 1624 / bpf_l4_csum_replace) against full recomputes over 100k seeded random rewrites.
import { describe, expect, it } from "vitest";
import {
  buildIcmpEcho,
  buildTcp,
  buildUdp,
  csumFinish,
  csumFold,
  csumPartial,
  csumReplace16,
  csumReplace32,
  dnat4,
  decreaseTtl,
  fromHex,
  get16,
  ipv4HeaderChecksum,
  l4Checksum,
  l4CsumReplace,
  BPF_F_MARK_MANGLED_0,
  IPPROTO_TCP,
  IPPROTO_UDP,
  Ipv4View,
  IcmpView,
  rewriteIpv4Dst,
  rewriteIpv4Src,
  rewriteL4Dport,
  rewriteL4Sport,
  set16,
  snat4,
  TCP_FLAGS,
  TcpView,
  UdpView,
  udpChecksumValue,
} from "../../src/packet/index.js";
import { mulberry32, randInt } from "./rng.js";

describe("RFC 1071 / RFC 1624 vectors", () => {
  it("RFC 1071 section 3 example: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2", () => {
    const b = fromHex("0001f203f4f5f6f7");
    expect(csumFold(csumPartial(b, 0, 8))).toBe(0xddf2);
    expect(csumFinish(csumPartial(b, 0, 8))).toBe(0x220d);
  });
  it("odd length pads a zero byte; the sum is byte-order independent in the fold", () => {
    expect(csumFold(csumPartial(fromHex("01"), 0, 1))).toBe(0x0100);
    expect(csumFold(csumPartial(fromHex("ffff0001"), 0, 4))).toBe(0x0001);
  });
  it("RFC 1624 section 4: eqn 3 gives 0x0000 where eqn 2 gave 0xffff", () => {
    // other octets sum 0xcd7a; m 0x5555 -> 0x3285; HC = ~(0xcd7a + 0x5555) = 0xdd2f
    expect(csumReplace16(0xdd2f, 0x5555, 0x3285)).toBe(0x0000);
    // and it equals a full recompute: ~(0xcd7a + 0x3285)
    expect(csumFinish(0xcd7a + 0x3285)).toBe(0x0000);
  });
  it("a 32-bit replace equals two 16-bit replaces", () => {
    const rnd = mulberry32(7);
    for (let i = 0; i < 1000; i++) {
      const c = randInt(rnd, 0x10000);
      const a = randInt(rnd, 2 ** 32);
      const b = randInt(rnd, 2 ** 32);
      expect(csumReplace32(c, a, b)).toBe(csumReplace16(csumReplace16(c, a >>> 16, b >>> 16), a & 0xffff, b & 0xffff));
    }
  });
});

describe("checksums of packets built by scapy 2.5 verify", () => {
  const pkts: Array<[string, string]> = [
    ["tcp syn + options", "02000000000202000000000108004500003c12344000400614860a0000010a0000029c400050000003e800000000a002faf0685b0000020405b40402080a000030390000000001030307"],
    ["udp", "020000000002020000000001080045000021000700004011665b0a0000010a60000a14e90035000d927968656c6c6f"],
    ["icmp echo", "02000000000202000000000108004500002400010000400166d60a0000010a00000208006627004200016162636465666768"],
  ];
  for (const [name, hex] of pkts) {
    it(name, () => {
      const b = fromHex(hex);
      const ip = new Ipv4View().bind(b, 14);
      expect(ipv4HeaderChecksum(b, 14, 20)).toBe(ip.checksum);
      if (ip.protocol === IPPROTO_TCP) expect(l4Checksum(b, 34, ip.payloadLen, 16, ip.src, ip.dst, 6)).toBe(get16(b, 50));
      else if (ip.protocol === IPPROTO_UDP) expect(udpChecksumValue(l4Checksum(b, 34, ip.payloadLen, 6, ip.src, ip.dst, 17))).toBe(get16(b, 40));
      else expect(new IcmpView().bind(b, 34, ip.payloadLen).verifyChecksum()).toBe(true);
      // Summing the whole header including its checksum gives 0xffff (RFC 1071 receiver check).
      expect(csumFold(csumPartial(b, 14, 20))).toBe(0xffff);
    });
  }
});

/** Full recompute of every checksum in an untagged Ethernet/IPv4 frame, returned as [ip, l4]. */
function fullChecksums(b: Uint8Array): [number, number] {
  const ip = new Ipv4View().bind(b, 14);
  const ipc = ipv4HeaderChecksum(b, 14, ip.headerLen);
  if (ip.protocol === IPPROTO_TCP) return [ipc, new TcpView().bind(b, ip.payloadOff, ip.payloadLen).computeChecksum(ip.src, ip.dst)];
  if (ip.protocol === IPPROTO_UDP) {
    const u = new UdpView().bind(b, ip.payloadOff, ip.payloadLen);
    return [ipc, u.checksum === 0 ? 0 : u.computeChecksum(ip.src, ip.dst)];
  }
  return [ipc, new IcmpView().bind(b, ip.payloadOff, ip.payloadLen).computeChecksum()];
}

function storedChecksums(b: Uint8Array): [number, number] {
  const proto = b[23]!;
  const l4 = 14 + (b[14]! & 15) * 4;
  return [get16(b, 24), get16(b, l4 + (proto === IPPROTO_TCP ? 16 : proto === IPPROTO_UDP ? 6 : 2))];
}

describe("incremental rewrites equal full recomputes", () => {
  it("100k seeded random rewrites of addresses, ports and TTL over TCP, UDP (with and without checksum), ICMP echo", () => {
    const rnd = mulberry32(0x1624);
    const pkts: Uint8Array[] = [];
    for (let i = 0; i < 64; i++) {
      const payload = new Uint8Array(randInt(rnd, 40)).map(() => randInt(rnd, 256));
      const base = { src: randInt(rnd, 2 ** 32), dst: randInt(rnd, 2 ** 32), id: randInt(rnd, 65536), payload };
      const k = i % 4;
      if (k === 0) pkts.push(buildTcp({ ...base, sport: randInt(rnd, 65536), dport: randInt(rnd, 65536), flags: TCP_FLAGS.ACK, seq: randInt(rnd, 2 ** 32) }));
      else if (k === 1) pkts.push(buildUdp({ ...base, sport: randInt(rnd, 65536), dport: randInt(rnd, 65536) }));
      else if (k === 2) pkts.push(buildUdp({ ...base, sport: randInt(rnd, 65536), dport: randInt(rnd, 65536), udpCsum: false }));
      else pkts.push(buildIcmpEcho({ src: base.src, dst: base.dst, ipId: base.id, payload, id: randInt(rnd, 65536), seq: randInt(rnd, 65536) }));
    }
    let checked = 0;
    for (let n = 0; n < 100_000; n++) {
      const b = pkts[n & 63]!;
      // Bias toward the corner values 0x0000 / 0xffff, where one's-complement arithmetic has two zeros.
      const r = rnd();
      const v32 = r < 0.1 ? 0 : r < 0.2 ? 0xffffffff : randInt(rnd, 2 ** 32);
      const v16 = r < 0.1 ? 0 : r < 0.2 ? 0xffff : randInt(rnd, 65536);
      switch (randInt(rnd, 7)) {
        case 0: rewriteIpv4Src(b, 14, v32); break;
        case 1: rewriteIpv4Dst(b, 14, v32); break;
        case 2: rewriteL4Sport(b, 14, v16); break;
        case 3: rewriteL4Dport(b, 14, v16); break;
        case 4: dnat4(b, 14, v32, v16); break;
        case 5: snat4(b, 14, v32, v16); break;
        case 6: if (b[22]! > 1) decreaseTtl(b, 14); break;
      }
      const want = fullChecksums(b);
      const got = storedChecksums(b);
      if (got[0] !== want[0] || got[1] !== want[1]) {
        throw new Error(`rewrite ${n}: stored ${got.map((x) => x.toString(16))} != full ${want.map((x) => x.toString(16))}`);
      }
      checked++;
    }
    expect(checked).toBe(100_000);
  });

  it("UDP: a rewrite whose checksum computes to 0 writes 0xffff (BPF_F_MARK_MANGLED_0); TCP keeps 0x0000", () => {
    for (const proto of [IPPROTO_UDP, IPPROTO_TCP]) {
      const b = proto === IPPROTO_UDP
        ? buildUdp({ src: "10.0.0.1", dst: "10.0.0.2", sport: 1000, dport: 0, payload: fromHex("abcdef") })
        : buildTcp({ src: "10.0.0.1", dst: "10.0.0.2", sport: 1000, dport: 0, flags: TCP_FLAGS.SYN });
      const csumOff = 34 + (proto === IPPROTO_UDP ? 6 : 16);
      // With dport 0, the rest of the segment sums to S; dport = ~S makes the total 0xffff, i.e. checksum 0.
      const c0 = get16(b, csumOff);
      const s = (~c0 & 0xffff) >>> 0; // folded sum of everything else (RFC 1071: checksum = ~sum)
      const dport = ~s & 0xffff;
      rewriteL4Dport(b, 14, dport);
      expect(get16(b, 36)).toBe(dport);
      expect(get16(b, csumOff)).toBe(proto === IPPROTO_UDP ? 0xffff : 0x0000);
      expect(fullChecksums(b)[1]).toBe(get16(b, csumOff));
    }
  });

  it("UDP checksum 0 (none) is left 0 by address and port rewrites", () => {
    const b = buildUdp({ src: "10.0.0.1", dst: "10.0.0.2", sport: 1, dport: 2, udpCsum: false });
    dnat4(b, 14, 0x0a600001, 8080);
    snat4(b, 14, 0xc0a80001, 40000);
    expect(get16(b, 40)).toBe(0);
    expect(new Ipv4View().bind(b, 14).verifyChecksum()).toBe(true);
  });

  it("l4CsumReplace with BPF_F_MARK_MANGLED_0 leaves a zero field alone", () => {
    const b = new Uint8Array(2);
    l4CsumReplace(b, 0, 1, 2, 2 | BPF_F_MARK_MANGLED_0);
    expect(get16(b, 0)).toBe(0);
    set16(b, 0, 0x1234);
    l4CsumReplace(b, 0, 1, 2, 2 | BPF_F_MARK_MANGLED_0);
    expect(get16(b, 0)).toBe(csumReplace16(0x1234, 1, 2));
  });

  it("non-first fragments: the address changes, the L4 bytes are untouched", () => {
    const b = buildUdp({ src: "10.0.0.1", dst: "10.0.0.2", sport: 1, dport: 2, payload: fromHex("00112233") });
    const ip = new Ipv4View().bind(b, 14);
    ip.fragOff = 0x0002; // offset 16 bytes: what follows the header is data, not a UDP header
    const before = b.slice(34);
    rewriteIpv4Dst(b, 14, 0x01020304);
    expect(rewriteL4Dport(b, 14, 99)).toBe(false);
    expect(b.slice(34)).toEqual(before);
    expect(ip.verifyChecksum()).toBe(true);
  });
});
