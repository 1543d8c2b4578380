// Hostile input never escapes PacketError: 100k+ seeded random frames and 100k+ mutations of valid ones go
// through parsePacket, the views and the non-throwing fast path. What parses must emit back consistently, and
// the fast path must accept exactly what the views accept.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  buildArp,
  buildIcmpEcho,
  buildIcmpError,
  buildTcp,
  buildUdp,
  buildVxlan,
  emitPacket,
  EthernetView,
  ETH_P_IP,
  flowKeyFromPacket,
  IcmpView,
  icmpIsError,
  ICMP_DEST_UNREACH,
  ICMP_EXC_TTL,
  ICMP_TIME_EXCEEDED,
  IPPROTO_ICMP,
  IPPROTO_TCP,
  IPPROTO_UDP,
  ipv4FrameL3,
  Ipv4View,
  PacketError,
  parsePacket,
  TCP_FLAGS,
  TcpView,
  toHex,
  UdpView,
  VxlanView,
  type ParsedPacket,
} from "../../src/packet/index.js";
import { mulberry32, randInt } from "./rng.js";

const eth = new EthernetView();
const ip = new Ipv4View();
const inner = new Ipv4View();
const tcp = new TcpView();
const udp = new UdpView();
const icmp = new IcmpView();
const vx = new VxlanView();
const key = new Uint32Array(4);

/** Bind the views layer by layer as a datapath would; returns whether every layer bound. */
function bindAll(b: Uint8Array): boolean {
  eth.bind(b);
  if (eth.etherType !== ETH_P_IP) return true;
  ip.bind(b, eth.payloadOff, b.length - eth.payloadOff);
  if (ip.isFragment) return true;
  if (ip.protocol === IPPROTO_TCP) tcp.bind(b, ip.payloadOff, ip.payloadLen);
  else if (ip.protocol === IPPROTO_UDP) {
    udp.bind(b, ip.payloadOff, ip.payloadLen);
    if (udp.dport === 4789) vx.bind(b, udp.payloadOff, udp.payloadLen);
  } else if (ip.protocol === IPPROTO_ICMP) {
    icmp.bind(b, ip.payloadOff, ip.payloadLen);
    if (icmpIsError(icmp.type)) icmp.bindQuoted(inner);
  }
  return true;
}

/** Drop checksum fields (emit recomputes them) so a mutated packet's parse can be compared with its re-parse. */
function withoutChecksums(p: unknown): string {
  return JSON.stringify(p, (k, v) => (k === "checksum" ? undefined : v instanceof Uint8Array ? toHex(v) : v));
}

interface Tally {
  parsed: number;
  rejected: number;
}

function check(b: Uint8Array, t: Tally): void {
  let p: ParsedPacket | undefined;
  try {
    p = parsePacket(b);
  } catch (e) {
    if (!(e instanceof PacketError)) throw new Error(`non-PacketError ${String(e)} for ${toHex(b)}`);
  }
  let viewsOk = false;
  try {
    viewsOk = bindAll(b);
  } catch (e) {
    if (!(e instanceof PacketError)) throw new Error(`view threw ${String(e)} for ${toHex(b)}`);
  }
  // Views and the fast path agree on which frames carry a valid IPv4 header.
  let ipOk = false;
  try {
    eth.bind(b);
    ipOk = eth.etherType === ETH_P_IP && ip.bind(b, eth.payloadOff, b.length - eth.payloadOff) !== undefined;
  } catch {
    ipOk = false;
  }
  if ((ipv4FrameL3(b, 0, b.length) >= 0) !== ipOk) throw new Error(`fast path disagrees with views on ${toHex(b)}`);
  const hasKey = flowKeyFromPacket(b, 0, key, 0);
  if (hasKey && !ipOk) throw new Error(`flow key for a frame the views reject: ${toHex(b)}`);
  if (!p) {
    t.rejected++;
    return;
  }
  t.parsed++;
  if (!viewsOk) throw new Error(`parsePacket accepted what the views reject: ${toHex(b)}`);
  const out = emitPacket(p);
  if (out.length !== b.length) throw new Error(`emit length ${out.length} != ${b.length} for ${toHex(b)}`);
  const a = withoutChecksums(parsePacket(out));
  const want = withoutChecksums(p);
  if (a !== want) throw new Error(`re-parse differs for ${toHex(b)}:\n${a}\n${want}`);
}

function validPackets(): Uint8Array[] {
  const pl = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9]);
  const syn = buildTcp({ src: "10.0.0.1", dst: "10.0.0.2", sport: 40000, dport: 80, flags: TCP_FLAGS.SYN, options: [{ kind: "mss", mss: 1460 }, { kind: "sackPermitted" }, { kind: "timestamp", tsval: 1, tsecr: 0 }, { kind: "nop" }, { kind: "wscale", shift: 7 }] });
  const u = buildUdp({ vlan: 5, src: "10.0.0.1", dst: "10.0.0.3", sport: 53, dport: 5353, payload: pl });
  return [
    syn,
    buildTcp({ src: "1.2.3.4", dst: "5.6.7.8", sport: 1, dport: 2, flags: TCP_FLAGS.ACK | TCP_FLAGS.PSH, payload: pl }),
    u,
    buildIcmpEcho({ src: "10.0.0.1", dst: "10.0.0.2", id: 7, seq: 9, payload: pl }),
    buildIcmpError(ICMP_DEST_UNREACH, 3, u),
    buildIcmpError(ICMP_TIME_EXCEEDED, ICMP_EXC_TTL, syn),
    buildArp({ srcMac: "02:00:00:00:00:01", srcIp: "10.0.0.1", dstIp: "10.0.0.2" }),
    buildVxlan({ src: "192.168.0.1", dst: "192.168.0.2" }, 42, syn),
  ];
}

describe("fuzz: parsePacket and the views only ever throw PacketError", () => {
  // Hundreds of thousands of rejections: skip capturing stack traces (the cost of a throw is mostly the stack).
  const limit = Error.stackTraceLimit;
  beforeAll(() => {
    Error.stackTraceLimit = 0;
  });
  afterAll(() => {
    Error.stackTraceLimit = limit;
  });

  it("valid packets round-trip exactly", () => {
    for (const b of validPackets()) expect(toHex(emitPacket(parsePacket(b)))).toBe(toHex(b));
  });

  it("100k random frames (random bytes, with a plausible Ethernet/IPv4 prefix half the time)", () => {
    const rnd = mulberry32(0xf00d);
    const t: Tally = { parsed: 0, rejected: 0 };
    for (let n = 0; n < 100_000; n++) {
      const len = randInt(rnd, n % 10 === 0 ? 20 : 140);
      const b = new Uint8Array(len);
      for (let i = 0; i < len; i++) b[i] = randInt(rnd, 256);
      if (n & 1 && len > 24) {
        // Steer past the first checks so the deeper layers see hostile bytes too.
        b[12] = 0x08;
        b[13] = 0x00;
        b[14] = 0x45 + randInt(rnd, 3);
        const tot = len - 14 - randInt(rnd, 3);
        b[16] = tot >>> 8;
        b[17] = tot & 255;
        b[20] = b[21] = 0;
        b[23] = [1, 6, 17][randInt(rnd, 3)]!;
      }
      check(b, t);
    }
    expect(t.parsed + t.rejected).toBe(100_000);
    expect(t.parsed).toBeGreaterThan(1000); // the steering really reaches the L4 parsers
  });

  it("100k mutations of valid packets (byte sets, bit flips, truncation, extension)", () => {
    const rnd = mulberry32(0xbeef);
    const base = validPackets();
    const t: Tally = { parsed: 0, rejected: 0 };
    for (let n = 0; n < 100_000; n++) {
      const src = base[n % base.length]!;
      let b = src.slice();
      const edits = 1 + randInt(rnd, 3);
      for (let e = 0; e < edits; e++) {
        switch (randInt(rnd, 5)) {
          case 0: b[randInt(rnd, b.length)] = randInt(rnd, 256); break;
          case 1: b[randInt(rnd, b.length)]! ^= 1 << randInt(rnd, 8); break;
          case 2: b = b.slice(0, randInt(rnd, b.length + 1)); break;
          case 3: { const c = new Uint8Array(b.length + randInt(rnd, 16)); c.set(b); b = c; break; }
          case 4: if (b.length > 40) b[randInt(rnd, 40)] = [0, 0xff, 0x40, 0x45, 0x4f, 0x50][randInt(rnd, 6)]!; break;
        }
        if (b.length === 0) break;
      }
      check(b, t);
    }
    expect(t.parsed).toBeGreaterThan(15_000);
    expect(t.rejected).toBeGreaterThan(15_000);
  });
});
