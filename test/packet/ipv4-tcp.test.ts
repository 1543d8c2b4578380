// smoltcp pattern on fixed bytes (built by scapy 2.5): deconstruct via the views, construct via setters,
// parse to the plain form, emit and compare.
import { describe, expect, it } from "vitest";
import {
  EthernetView,
  ETH_P_IP,
  fromHex,
  IPPROTO_TCP,
  Ipv4View,
  PacketError,
  TcpView,
  TCP_FLAGS,
  TCPOPT_MSS,
  TCPOPT_WINDOW,
  TCPOPT_SACK,
  emitPacket,
  parseIpv4,
  parsePacket,
  toHex,
  writeIpv4Header,
  buildTcp,
} from "../../src/packet/index.js";

// Ether/IP(10.0.0.1 -> 10.0.0.2, id 0x1234, DF, ttl 64)/TCP(40000 -> 80, SYN, seq 1000, win 64240,
// options MSS 1460, SAckOK, Timestamp(12345, 0), NOP, WScale 7)
const SYN_HEX =
  "020000000002020000000001080045000" +
  "03c12344000400614860a0000010a0000029c400050000003e800000000a002faf0685b0000020405b40402080a000030390000000001030307";
const SYN = fromHex(SYN_HEX);

describe("IPv4 + TCP views", () => {
  it("deconstructs", () => {
    const eth = new EthernetView().bind(SYN);
    expect(eth.etherType).toBe(ETH_P_IP);
    expect(eth.tags).toBe(0);
    expect(eth.dst).toBe(0x020000000002);
    expect(eth.src).toBe(0x020000000001);
    const ip = new Ipv4View().bind(SYN, eth.payloadOff);
    expect([ip.version, ip.ihl, ip.headerLen, ip.totalLength, ip.ident]).toEqual([4, 5, 20, 60, 0x1234]);
    expect([ip.df, ip.mf, ip.fragOffset, ip.isFragment]).toEqual([true, false, 0, false]);
    expect([ip.ttl, ip.protocol, ip.checksum]).toEqual([64, IPPROTO_TCP, 0x1486]);
    expect([ip.src, ip.dst]).toEqual([0x0a000001, 0x0a000002]);
    expect(ip.verifyChecksum()).toBe(true);
    const tcp = new TcpView().bind(SYN, ip.payloadOff, ip.payloadLen);
    expect([tcp.sport, tcp.dport, tcp.seq, tcp.ack]).toEqual([40000, 80, 1000, 0]);
    expect([tcp.dataOffset, tcp.headerLen, tcp.payloadLen]).toEqual([10, 40, 0]);
    expect(tcp.flags).toBe(TCP_FLAGS.SYN);
    expect(tcp.hasFlags(TCP_FLAGS.SYN | TCP_FLAGS.ACK)).toBe(false);
    expect([tcp.window, tcp.checksum, tcp.urgent]).toEqual([64240, 0x685b, 0]);
    expect(tcp.verifyChecksum(ip.src, ip.dst)).toBe(true);
    expect(tcp.findOption(TCPOPT_MSS) - tcp.off).toBe(20);
    expect(tcp.findOption(TCPOPT_WINDOW) - tcp.off).toBe(37);
    expect(tcp.findOption(TCPOPT_SACK)).toBe(-1);
  });

  it("constructs with setters and full checksums", () => {
    const buf = new Uint8Array(SYN.length);
    buf.set(SYN.subarray(0, 14));
    buf.set(SYN.subarray(34, 54), 34); // keep the 20 options bytes; rebuild the rest by setters
    buf.set(SYN.subarray(54), 54);
    buf[14] = 0x45;
    const ip = new Ipv4View();
    ip.buf = buf;
    ip.off = 14;
    ip.totalLength = 60;
    ip.ident = 0x1234;
    ip.df = true;
    ip.ttl = 64;
    ip.protocol = IPPROTO_TCP;
    ip.src = parseIpv4("10.0.0.1");
    ip.dst = parseIpv4("10.0.0.2");
    ip.fillChecksum();
    const tcp = new TcpView().bind(buf, 34, 40);
    tcp.sport = 40000;
    tcp.dport = 80;
    tcp.seq = 1000;
    tcp.ack = 0;
    tcp.flags = TCP_FLAGS.SYN;
    tcp.window = 64240;
    tcp.urgent = 0;
    tcp.fillChecksum(ip.src, ip.dst);
    expect(toHex(buf)).toBe(SYN_HEX);
  });

  it("setters fix the IPv4 header checksum incrementally", () => {
    const buf = SYN.slice();
    const ip = new Ipv4View().bind(buf, 14);
    ip.ttl = ip.ttl - 1;
    expect(ip.verifyChecksum()).toBe(true);
    ip.dst = 0xc0a80101;
    ip.src = 0xffffffff;
    ip.ident = 0;
    ip.tos = 0x10;
    ip.totalLength = 60;
    ip.df = false;
    expect(ip.verifyChecksum()).toBe(true);
    const want = ip.checksum;
    ip.fillChecksum();
    expect(ip.checksum).toBe(want);
  });

  it("parses to the plain form and emits the same bytes", () => {
    const p = parsePacket(SYN);
    expect(p.ipv4).toMatchObject({ src: "10.0.0.1", dst: "10.0.0.2", ttl: 64, id: 0x1234, df: true, mf: false, protocol: 6 });
    expect(p.tcp).toMatchObject({ sport: 40000, dport: 80, seq: 1000, flags: TCP_FLAGS.SYN, window: 64240 });
    expect(p.tcp!.options).toEqual([
      { kind: "mss", mss: 1460 },
      { kind: "sackPermitted" },
      { kind: "timestamp", tsval: 12345, tsecr: 0 },
      { kind: "nop" },
      { kind: "wscale", shift: 7 },
    ]);
    expect(toHex(emitPacket(p))).toBe(SYN_HEX);
  });

  it("the builder makes the same frame", () => {
    const b = buildTcp({
      src: "10.0.0.1", dst: "10.0.0.2", id: 0x1234, df: true, sport: 40000, dport: 80, flags: TCP_FLAGS.SYN, seq: 1000, window: 64240,
      options: [{ kind: "mss", mss: 1460 }, { kind: "sackPermitted" }, { kind: "timestamp", tsval: 12345, tsecr: 0 }, { kind: "nop" }, { kind: "wscale", shift: 7 }],
    });
    expect(toHex(b)).toBe(SYN_HEX);
  });

  it("IPv4 options are skipped and kept", () => {
    const buf = new Uint8Array(14 + 24 + 20);
    buf.set(SYN.subarray(0, 14));
    const l4 = writeIpv4Header(buf, 14, { tos: 0, totalLength: 44, id: 1, fragOff: 0, ttl: 1, protocol: IPPROTO_TCP, src: 1, dst: 2, options: fromHex("94040000") });
    expect(l4).toBe(38);
    buf.set(SYN.subarray(34, 54), 38);
    buf[38 + 12] = 0x50;
    new TcpView().bind(buf, 38, 20).fillChecksum(1, 2);
    const ip = new Ipv4View().bind(buf, 14);
    expect([ip.ihl, ip.payloadOff, ip.optionsLen, ip.verifyChecksum()]).toEqual([6, 38, 4, true]);
    const p = parsePacket(buf);
    expect(p.ipv4!.options).toBe("94040000");
    expect(toHex(emitPacket(p))).toBe(toHex(buf));
  });
});

describe("hostile IPv4/TCP headers throw PacketError with layer and offset", () => {
  const cases: Array<[string, (b: Uint8Array) => void, string, string]> = [
    ["ihl < 5", (b) => (b[14] = 0x44), "malformed", "ipv4 at byte 14"],
    ["version 6", (b) => (b[14] = 0x65), "malformed", "ipv4 at byte 14"],
    // ihl 15: a 60-byte header fills tot_len 60, leaving TCP (at 14 + 60) no bytes at all.
    ["ihl 15 eats the segment", (b) => (b[14] = 0x4f), "truncated", "tcp at byte 74"],
    ["tot_len beyond buffer", (b) => (b[17] = 0x50), "truncated", "ipv4 at byte 14"],
    ["tot_len < header", (b) => (b[17] = 0x10), "malformed", "ipv4 at byte 14"],
    ["doff < 5", (b) => (b[46] = 0x40), "malformed", "tcp at byte 34"],
    ["doff beyond segment", (b) => (b[46] = 0xf0), "malformed", "tcp at byte 34"],
  ];
  for (const [name, mutate, kind, where] of cases) {
    it(name, () => {
      const b = SYN.slice();
      mutate(b);
      let err: unknown;
      try {
        parsePacket(b);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(PacketError);
      expect((err as PacketError).kind).toBe(kind);
      expect((err as PacketError).where).toBe(where);
    });
  }
  it("a frame cut inside each header", () => {
    for (let n = 0; n < SYN.length; n++) {
      expect(() => parsePacket(SYN.subarray(0, n)), `length ${n}`).toThrow(PacketError);
    }
  });
});
