// Per-header smoltcp-style tests on fixed frames made by scapy 2.5 (hex below): view deconstruct, builder
// construct, parse to the plain form, emit and compare bytes.
import { describe, expect, it } from "vitest";
import {
  ArpView,
  ARPOP_REQUEST,
  buildArp,
  buildIcmpEcho,
  buildIcmpError,
  buildTcp,
  buildUdp,
  buildVxlan,
  emitPacket,
  EthernetView,
  ETH_P_8021Q,
  ETH_P_ARP,
  ETH_P_IP,
  fromHex,
  ICMP_DEST_UNREACH,
  ICMP_ECHO,
  ICMP_PORT_UNREACH,
  IcmpView,
  Ipv4View,
  packetLen,
  parsePacket,
  TCP_FLAGS,
  toHex,
  UdpView,
  VxlanView,
  writeUdp,
} from "../../src/packet/index.js";

const F = {
  udp: "020000000002020000000001080045000021000700004011665b0a0000010a60000a14e90035000d927968656c6c6f",
  echo: "02000000000202000000000108004500002400010000400166d60a0000010a00000208006627004200016162636465666768",
  orig: "02000000000202000000000108004500002500050000401166c10a0000010a00000204d2270f0011610278797a78797a78797a",
  unreach:
    "020000000001020000000002080045c0003800000000400166030a0000020a00000103037008000000004500002500050000401166c10a0000010a00000204d2270f00116102",
  arp: "ffffffffffff020000000001080600010800060400010200000000010a0000010000000000000a000002",
  vlan: "0200000000020200000000018100006408004500002000000000401166cb0a0000010a00000203e807d0000c0841766c616e",
  vxlan:
    "02000000000202000000000108004500005a000000004011f93fc0a80001c0a80002c35012b50046000008000000000001000a580af402030a580af4010208004500002800000000400661e40af401020af4020380e81f9000000000000000005002fffff67d0000",
};
const bytes = (k: keyof typeof F) => fromHex(F[k]);

describe("UDP", () => {
  it("deconstructs, builds, parses, emits", () => {
    const b = bytes("udp");
    const ip = new Ipv4View().bind(b, 14);
    const u = new UdpView().bind(b, ip.payloadOff, ip.payloadLen);
    expect([u.sport, u.dport, u.length, u.checksum, u.payloadLen]).toEqual([5353, 53, 13, 0x9279, 5]);
    expect(u.verifyChecksum(ip.src, ip.dst)).toBe(true);
    const opts = { src: "10.0.0.1", dst: "10.96.0.10", id: 7, sport: 5353, dport: 53, payload: new TextEncoder().encode("hello") };
    expect(toHex(buildUdp(opts))).toBe(F.udp);
    const p = parsePacket(b);
    expect(p.udp).toEqual({ sport: 5353, dport: 53, length: 13, checksum: 0x9279 });
    expect(new TextDecoder().decode(p.payload)).toBe("hello");
    expect(toHex(emitPacket(p))).toBe(F.udp);
    expect(packetLen(p)).toBe(b.length);
  });
  it("writes into a caller's buffer at an offset", () => {
    const buf = new Uint8Array(200).fill(0xee);
    const n = writeUdp(buf, 50, { src: 0x0a000001, dst: 0x0a60000a, id: 7, sport: 5353, dport: 53, payload: new TextEncoder().encode("hello") });
    expect(n).toBe(47);
    expect(toHex(buf, 50, n)).toBe(F.udp);
    expect(buf[49]).toBe(0xee);
    expect(buf[50 + n]).toBe(0xee);
  });
  it("checksum 0 (none) survives parse and emit", () => {
    const b = buildUdp({ src: "1.2.3.4", dst: "5.6.7.8", sport: 1, dport: 2, udpCsum: false });
    const p = parsePacket(b);
    expect(p.udp!.checksum).toBe(0);
    expect(toHex(emitPacket(p))).toBe(toHex(b));
  });
  it("length field beyond the IP payload is truncated, below 8 malformed", () => {
    const b = bytes("udp");
    b[14 + 20 + 5] = 14;
    expect(() => parsePacket(b)).toThrow(/truncated udp/);
    b[14 + 20 + 5] = 7;
    expect(() => parsePacket(b)).toThrow(/malformed udp/);
  });
});

describe("ICMP", () => {
  it("echo request", () => {
    const b = bytes("echo");
    const ip = new Ipv4View().bind(b, 14);
    const c = new IcmpView().bind(b, ip.payloadOff, ip.payloadLen);
    expect([c.type, c.code, c.checksum, c.id, c.seq, c.payloadLen, c.isError]).toEqual([ICMP_ECHO, 0, 0x6627, 0x42, 1, 8, false]);
    expect(c.verifyChecksum()).toBe(true);
    const p = parsePacket(b);
    expect(p.icmp).toEqual({ type: 8, code: 0, checksum: 0x6627, id: 0x42, seq: 1 });
    expect(toHex(emitPacket(p))).toBe(F.echo);
  });
  it("echo builder with IP id", () => {
    // For echo, `id` is the echo identifier and `ipId` the IP header's id.
    const b = buildIcmpEcho({ src: "10.0.0.1", dst: "10.0.0.2", ipId: 1, id: 0x42, seq: 1, payload: new TextEncoder().encode("abcdefgh") });
    expect(toHex(b)).toBe(F.echo);
  });
  it("port unreachable quotes the offending header + 8 bytes, with a view on it", () => {
    const b = bytes("unreach");
    const ip = new Ipv4View().bind(b, 14);
    const c = new IcmpView().bind(b, ip.payloadOff, ip.payloadLen);
    expect([c.type, c.code, c.isError, c.rest]).toEqual([ICMP_DEST_UNREACH, ICMP_PORT_UNREACH, true, 0]);
    const inner = c.bindQuoted(new Ipv4View());
    expect([inner.src, inner.dst, inner.protocol, inner.totalLength, inner.payloadLen]).toEqual([0x0a000001, 0x0a000002, 17, 37, 8]);
    expect(inner.verifyChecksum()).toBe(true);
    const p = parsePacket(b);
    expect(p.icmp!.quoted).toMatchObject({ ipv4: { src: "10.0.0.1", dst: "10.0.0.2", protocol: 17 }, sport: 1234, dport: 9999 });
    expect(toHex(emitPacket(p))).toBe(F.unreach);
    expect(toHex(buildIcmpError(ICMP_DEST_UNREACH, ICMP_PORT_UNREACH, bytes("orig")))).toBe(F.unreach);
  });
  it("an error quoting less than header + 8 bytes is truncated", () => {
    const b = bytes("unreach").subarray(0, 14 + 20 + 8 + 20 + 7);
    b[16 + 1] -= 1; // tot_len one less, so the outer header is consistent
    const tot = (b[16]! << 8) | b[17]!;
    b[17] = (tot & 0xff) >>> 0;
    expect(() => parsePacket(b.subarray(0, 14 + tot))).toThrow(/truncated icmp inner ipv4/);
  });
});

describe("ARP", () => {
  it("request", () => {
    const b = bytes("arp");
    const eth = new EthernetView().bind(b);
    expect([eth.etherType, eth.dst]).toEqual([ETH_P_ARP, 0xffffffffffff]);
    const a = new ArpView().bind(b, eth.payloadOff);
    expect([a.oper, a.sha, a.spa, a.tha, a.tpa]).toEqual([ARPOP_REQUEST, 0x020000000001, 0x0a000001, 0, 0x0a000002]);
    expect(toHex(buildArp({ srcMac: "02:00:00:00:00:01", srcIp: "10.0.0.1", dstIp: "10.0.0.2" }))).toBe(F.arp);
    const p = parsePacket(b);
    expect(p.arp).toEqual({ op: 1, sha: "02:00:00:00:00:01", spa: "10.0.0.1", tha: "00:00:00:00:00:00", tpa: "10.0.0.2" });
    expect(toHex(emitPacket(p))).toBe(F.arp);
  });
  it("Ethernet padding is kept as the trailer", () => {
    const b = new Uint8Array(60);
    b.set(bytes("arp"));
    const p = parsePacket(b);
    expect(p.trailer!.length).toBe(60 - 42);
    expect(toHex(emitPacket(p))).toBe(toHex(b));
  });
  it("non-Ethernet/IPv4 ARP is malformed", () => {
    const b = bytes("arp");
    b[14 + 5] = 16;
    expect(() => parsePacket(b)).toThrow(/malformed arp/);
  });
});

describe("802.1Q", () => {
  it("tagged UDP", () => {
    const b = bytes("vlan");
    const eth = new EthernetView().bind(b);
    expect([eth.tags, eth.tagTpid(0), eth.vlanId, eth.etherType, eth.payloadOff, eth.headerLen]).toEqual([1, ETH_P_8021Q, 100, ETH_P_IP, 18, 18]);
    const opts = { vlan: 100, src: "10.0.0.1", dst: "10.0.0.2", sport: 1000, dport: 2000, payload: new TextEncoder().encode("vlan") };
    expect(toHex(buildUdp(opts))).toBe(F.vlan);
    const p = parsePacket(b);
    expect(p.vlan).toEqual([{ tpid: ETH_P_8021Q, pcp: 0, dei: 0, vid: 100 }]);
    expect(toHex(emitPacket(p))).toBe(F.vlan);
  });
  it("QinQ parses two tags; a third is malformed", () => {
    const b = bytes("vlan");
    const q = new Uint8Array(b.length + 4);
    q.set(b.subarray(0, 12));
    q.set([0x88, 0xa8, 0x20, 0x07], 12);
    q.set(b.subarray(12), 16);
    const p = parsePacket(q);
    expect(p.vlan!.map((t) => [t.tpid, t.pcp, t.vid])).toEqual([[0x88a8, 1, 7], [0x8100, 0, 100]]);
    expect(toHex(emitPacket(p))).toBe(toHex(q));
    const r = new Uint8Array(q.length + 4);
    r.set(q.subarray(0, 12));
    r.set([0x81, 0x00, 0x00, 0x01], 12);
    r.set(q.subarray(12), 16);
    expect(() => parsePacket(r)).toThrow(/malformed vlan/);
  });
});

describe("VXLAN", () => {
  it("outer UDP 4789 carries the inner frame", () => {
    const b = bytes("vxlan");
    const ip = new Ipv4View().bind(b, 14);
    const u = new UdpView().bind(b, ip.payloadOff, ip.payloadLen);
    const v = new VxlanView().bind(b, u.payloadOff, u.payloadLen);
    expect([u.dport, u.checksum, v.flags, v.vniValid, v.vni]).toEqual([4789, 0, 0x08, true, 1]);
    const inner = parsePacket(b, v.payloadOff, v.payloadLen);
    expect(inner.ipv4).toMatchObject({ src: "10.244.1.2", dst: "10.244.2.3" });
    const innerFrame = buildTcp({ srcMac: "0a:58:0a:f4:01:02", dstMac: "0a:58:0a:f4:02:03", src: "10.244.1.2", dst: "10.244.2.3", sport: 33000, dport: 8080, flags: TCP_FLAGS.SYN });
    expect(toHex(innerFrame)).toBe(toHex(b, v.payloadOff, v.payloadLen));
    expect(toHex(buildVxlan({ src: "192.168.0.1", dst: "192.168.0.2", sport: 50000 }, 1, innerFrame))).toBe(F.vxlan);
    const p = parsePacket(b);
    expect(p.vxlan!.vni).toBe(1);
    expect(p.vxlan!.inner.tcp).toMatchObject({ sport: 33000, dport: 8080, flags: TCP_FLAGS.SYN });
    expect(toHex(emitPacket(p))).toBe(F.vxlan);
  });
  it("VNI setter keeps the reserved byte; default source port is in the ephemeral range and stable", () => {
    const b = bytes("vxlan");
    const v = new VxlanView().bind(b, 42);
    v.vni = 0xabcdef;
    expect([v.vni, b[49]]).toEqual([0xabcdef, 0]);
    const inner = b.slice(50);
    const x = parsePacket(buildVxlan({ src: "1.1.1.1", dst: "2.2.2.2" }, 42, inner));
    const y = parsePacket(buildVxlan({ src: "1.1.1.1", dst: "2.2.2.2" }, 42, inner));
    expect(x.udp!.sport).toBe(y.udp!.sport);
    expect(x.udp!.sport).toBeGreaterThanOrEqual(32768);
    expect(x.udp!.sport).toBeLessThan(61000);
  });
  it("a broken inner frame is reported as an inner layer", () => {
    const b = bytes("vxlan");
    b[50 + 14] = 0x44;
    expect(() => parsePacket(b)).toThrow(expect.objectContaining({ kind: "malformed", layer: "inner ipv4", offset: 64, where: "inner ipv4 at byte 64" }));
  });
});
