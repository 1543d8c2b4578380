import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import {
  buildArp,
  buildIcmpEcho,
  buildIcmpError,
  buildTcp,
  buildUdp,
  buildVxlan,
  TCPHDR_ACK,
  TCPHDR_PSH,
  TCPHDR_SYN,
} from "../../src/packet/index.js";
import { formatFrame, formatRecord, formatTimestamp, isoTimestamp, recordJson } from "../../src/packet/format.js";
import { tcpFlagsString } from "../../src/packet/format-tcp.js";
import { readCapture } from "../../src/packet/pcapng.js";

// Expected lines are what tcpdump 4.99 prints for the same bytes (`tcpdump -n -e -S -r`), checked when the table
// was written; test/kernel/capture.test.ts re-checks them against the installed tcpdump.
const M1 = "02:00:00:00:00:01";
const M2 = "02:00:00:00:00:02";
const E = (len: number, src = M1, dst = M2) => `${src} > ${dst}, ethertype IPv4 (0x0800), length ${len}: `;
const enc = (s: string) => new TextEncoder().encode(s);

const syn = buildTcp({
  src: "10.0.0.1", dst: "10.0.0.2", sport: 43210, dport: 80, flags: TCPHDR_SYN, seq: 1000, window: 64240,
  options: [{ kind: "mss", mss: 1460 }, { kind: "sackPermitted" }, { kind: "timestamp", tsval: 1, tsecr: 0 }, { kind: "nop" }, { kind: "wscale", shift: 7 }],
});
const udp = buildUdp({ src: "10.0.0.1", dst: "10.0.0.9", sport: 5000, dport: 40053, payload: new Uint8Array(7) });
const echo = buildIcmpEcho({ src: "10.0.0.1", dst: "10.0.0.2", id: 7, seq: 1, payload: new Uint8Array(56) });
const arpReq = buildArp({ srcMac: M1, srcIp: "10.0.0.1", dstIp: "10.0.0.2" });
const unreach = (code: number, rest = 0) => buildIcmpError(3, code, udp, { rest });
const U = (text: string) => E(70, M2, M1) + `10.0.0.9 > 10.0.0.1: ICMP ${text}, length 36`;
const padTo = (b: Uint8Array, n: number) => {
  const o = new Uint8Array(n);
  o.set(b);
  return o;
};
const withByte = (b: Uint8Array, at: number, v: number) => {
  const o = b.slice();
  o[at] = v;
  return o;
};

const table: { name: string; bytes: Uint8Array; line: string }[] = [
  {
    name: "TCP SYN with options",
    bytes: syn,
    line: E(74) + "10.0.0.1.43210 > 10.0.0.2.80: Flags [S], seq 1000, win 64240, options [mss 1460,sackOK,TS val 1 ecr 0,nop,wscale 7], length 0",
  },
  {
    name: "TCP data on a VLAN, HTTP request line",
    bytes: buildTcp({ src: "10.0.0.1", dst: "10.0.0.2", sport: 43210, dport: 80, flags: TCPHDR_PSH | TCPHDR_ACK, seq: 1001, ack: 5, payload: enc("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), vlan: 10 }),
    line: `${M1} > ${M2}, ethertype 802.1Q (0x8100), length 85: vlan 10, p 0, ethertype IPv4 (0x0800), 10.0.0.1.43210 > 10.0.0.2.80: Flags [P.], seq 1001:1028, ack 5, win 65535, length 27: HTTP: GET / HTTP/1.1`,
  },
  {
    name: "every TCP flag, urgent pointer",
    bytes: buildTcp({ src: "10.0.0.1", dst: "10.0.0.2", sport: 43210, dport: 80, flags: 0xff, seq: 1001, ack: 5, urgent: 3, payload: new Uint8Array(5) }),
    line: E(59) + "10.0.0.1.43210 > 10.0.0.2.80: Flags [FSRP.UEW], seq 1001:1006, ack 5, win 65535, urg 3, length 5: HTTP",
  },
  {
    name: "no TCP flags",
    bytes: buildTcp({ src: "10.0.0.1", dst: "10.0.0.2", sport: 43210, dport: 9999, flags: 0, seq: 1001 }),
    line: E(54) + "10.0.0.1.43210 > 10.0.0.2.9999: Flags [none], win 65535, length 0",
  },
  {
    name: "HTTP status line",
    bytes: buildTcp({ src: "10.0.0.1", dst: "10.0.0.2", sport: 80, dport: 9999, flags: TCPHDR_ACK | TCPHDR_PSH, seq: 1001, payload: enc("HTTP/1.1 200 OK\r\n\r\n") }),
    line: E(73) + "10.0.0.1.80 > 10.0.0.2.9999: Flags [P.], seq 1001:1020, ack 0, win 65535, length 19: HTTP: HTTP/1.1 200 OK",
  },
  { name: "UDP", bytes: udp, line: E(49) + "10.0.0.1.5000 > 10.0.0.9.40053: UDP, length 7" },
  { name: "ICMP net unreachable", bytes: unreach(0), line: U("net 10.0.0.9 unreachable") },
  { name: "ICMP host unreachable", bytes: unreach(1), line: U("host 10.0.0.9 unreachable") },
  { name: "ICMP protocol unreachable", bytes: unreach(2), line: U("10.0.0.9 protocol 17 unreachable") },
  { name: "ICMP port unreachable (UDP)", bytes: unreach(3), line: U("10.0.0.9 udp port 40053 unreachable") },
  { name: "ICMP need to frag", bytes: unreach(4, 1400), line: U("10.0.0.9 unreachable - need to frag (mtu 1400)") },
  { name: "ICMP admin prohibited filter", bytes: unreach(13), line: U("host 10.0.0.9 unreachable - admin prohibited filter") },
  { name: "ICMP precedence cutoff", bytes: unreach(15), line: U("host 10.0.0.9 unreachable - precedence cutoff") },
  {
    name: "ICMP port unreachable (TCP)",
    bytes: buildIcmpError(3, 3, syn),
    line: E(70, M2, M1) + "10.0.0.2 > 10.0.0.1: ICMP 10.0.0.2 tcp port 80 unreachable, length 36",
  },
  { name: "ICMP time exceeded", bytes: buildIcmpError(11, 0, syn), line: E(70, M2, M1) + "10.0.0.2 > 10.0.0.1: ICMP time exceeded in-transit, length 36" },
  { name: "ICMP reassembly time exceeded", bytes: buildIcmpError(11, 1, syn), line: E(70, M2, M1) + "10.0.0.2 > 10.0.0.1: ICMP ip reassembly time exceeded, length 36" },
  { name: "ICMP echo request", bytes: echo, line: E(98) + "10.0.0.1 > 10.0.0.2: ICMP echo request, id 7, seq 1, length 64" },
  {
    name: "ICMP echo reply",
    bytes: buildIcmpEcho({ src: "10.0.0.2", dst: "10.0.0.1", id: 7, seq: 1, reply: true, payload: new Uint8Array(56) }),
    line: E(98) + "10.0.0.2 > 10.0.0.1: ICMP echo reply, id 7, seq 1, length 64",
  },
  { name: "ARP request", bytes: arpReq, line: `${M1} > ff:ff:ff:ff:ff:ff, ethertype ARP (0x0806), length 42: Request who-has 10.0.0.2 tell 10.0.0.1, length 28` },
  {
    name: "ARP request with a target MAC",
    bytes: buildArp({ srcMac: M1, srcIp: "10.0.0.1", dstIp: "10.0.0.2", dstMac: "02:00:00:00:00:09" }),
    line: `${M1} > ff:ff:ff:ff:ff:ff, ethertype ARP (0x0806), length 42: Request who-has 10.0.0.2 (02:00:00:00:00:09) tell 10.0.0.1, length 28`,
  },
  {
    name: "ARP reply",
    bytes: buildArp({ op: 2, srcMac: M2, srcIp: "10.0.0.2", dstIp: "10.0.0.1", dstMac: M1 }),
    line: `${M2} > ${M1}, ethertype ARP (0x0806), length 42: Reply 10.0.0.2 is-at ${M2}, length 28`,
  },
  {
    name: "ARP padded to 60 bytes",
    bytes: padTo(arpReq, 60),
    line: `${M1} > ff:ff:ff:ff:ff:ff, ethertype ARP (0x0806), length 60: Request who-has 10.0.0.2 tell 10.0.0.1, length 46`,
  },
  {
    name: "VXLAN with inner TCP",
    bytes: buildVxlan({ src: "192.168.1.1", dst: "192.168.1.2", sport: 37055 }, 1, syn),
    line: E(124) + "192.168.1.1.37055 > 192.168.1.2.4789: VXLAN, flags [I] (0x08), vni 1\n" +
      E(74) + "10.0.0.1.43210 > 10.0.0.2.80: Flags [S], seq 1000, win 64240, options [mss 1460,sackOK,TS val 1 ecr 0,nop,wscale 7], length 0",
  },
  {
    name: "VXLAN on a VLAN with inner ARP",
    bytes: buildVxlan({ src: "192.168.1.1", dst: "192.168.1.2", vlan: 5, sport: 58848 }, 77, arpReq),
    line: `${M1} > ${M2}, ethertype 802.1Q (0x8100), length 96: vlan 5, p 0, ethertype IPv4 (0x0800), 192.168.1.1.58848 > 192.168.1.2.4789: VXLAN, flags [I] (0x08), vni 77\n` +
      `${M1} > ff:ff:ff:ff:ff:ff, ethertype ARP (0x0806), length 42: Request who-has 10.0.0.2 tell 10.0.0.1, length 28`,
  },
  {
    name: "IP protocol without a printer",
    bytes: withByte(buildUdp({ src: "10.0.0.1", dst: "10.0.0.2", sport: 5000, dport: 6000, payload: new Uint8Array(20) }), 23, 99),
    line: E(62) + "10.0.0.1 > 10.0.0.2: ip-proto-99 28",
  },
  {
    name: "non-first fragment",
    bytes: withByte(buildUdp({ src: "10.0.0.1", dst: "10.0.0.2", sport: 5000, dport: 6000, payload: new Uint8Array(20) }), 21, 3),
    line: E(62) + "10.0.0.1 > 10.0.0.2: ip-proto-17",
  },
  { name: "truncated TCP", bytes: syn.subarray(0, 40), line: E(40) + "truncated-ip - 34 bytes missing! 10.0.0.1.43210 > 10.0.0.2.80:  [|tcp]" },
  { name: "truncated IP header", bytes: syn.subarray(0, 20), line: E(20) + " [|ip]" },
  { name: "truncated Ethernet header", bytes: syn.subarray(0, 10), line: " [|ether]" },
  { name: "truncated UDP", bytes: udp.subarray(0, 38), line: E(38) + "truncated-ip - 11 bytes missing! 10.0.0.1.5000 > 10.0.0.9.40053:  [|udp]" },
  { name: "truncated ICMP", bytes: echo.subarray(0, 37), line: E(37) + "truncated-ip - 61 bytes missing! 10.0.0.1 > 10.0.0.2:  [|icmp]" },
  {
    name: "TCP data offset too short",
    bytes: withByte(syn, 46, 0x20),
    line: E(74) + "10.0.0.1.43210 > 10.0.0.2.80:  tcp 32 [bad hdr length 8 - too short, < 20]",
  },
];

describe("format: one tcpdump -n -e -S line per packet kind", () => {
  for (const t of table) {
    it(t.name, () => {
      expect(formatFrame(t.bytes)).toBe(t.line);
    });
  }
});

describe("format: capture records", () => {
  it("timestamps are the UTC time of day, micro- or nanoseconds", () => {
    const ts = 1_700_000_001_000_123_456n;
    expect(formatTimestamp(ts)).toBe("22:13:21.000123");
    expect(formatTimestamp(ts, true)).toBe("22:13:21.000123456");
    expect(isoTimestamp(ts)).toBe("2023-11-14T22:13:21.000123456Z");
    expect(formatTimestamp(1_000_000_000n)).toBe("00:00:01.000000");
  });

  it("shows the interface and direction when asked", () => {
    const rec = { index: 1, ifIndex: 1, ifName: "node-2/eth0", linktype: 1, tsNs: 1_000_000_000n, data: arpReq, origLen: 42, direction: "outbound" as const };
    expect(formatRecord(rec, { showInterface: true })).toBe(`00:00:01.000000 node-2/eth0 Out ${table.find((t) => t.name === "ARP request")!.line}`);
  });

  it("a snaplen-cut packet prints its headers and wire length", () => {
    const big = buildTcp({ src: "10.0.0.1", dst: "10.0.0.2", sport: 1, dport: 2, flags: TCPHDR_ACK, seq: 5, ack: 6, payload: new Uint8Array(1000) });
    expect(formatFrame(big.subarray(0, 54), big.length)).toBe(E(1054) + "10.0.0.1.1 > 10.0.0.2.2: Flags [.], seq 5:1005, ack 6, win 65535, length 1000");
    expect(formatFrame(big.subarray(0, 40), big.length)).toBe(E(1054) + "10.0.0.1.1 > 10.0.0.2.2:  [|tcp]");
  });

  it("TCP flag letters follow tcpdump's table order", () => {
    expect([0x02, 0x12, 0x18, 0x11, 0x04, 0x14, 0xc2, 0].map(tcpFlagsString)).toEqual(["S", "S.", "P.", "F.", "R", "R.", "SEW", "none"]);
  });

  it("JSON: index, times, interface, lengths, summary and parsed layers; an error note when it does not parse", () => {
    const rec = { index: 3, ifIndex: 0, ifName: "node-1/eth0", linktype: 1, tsNs: 1_700_000_001_000_123_456n, data: syn, origLen: 74, comment: "c" };
    const j = recordJson(rec);
    expect(j).toMatchObject({
      index: 3, time: "2023-11-14T22:13:21.000123456Z", tsNs: "1700000001000123456", ifIndex: 0, interface: "node-1/eth0",
      length: 74, capturedLength: 74, comment: "c", summary: table[0]!.line,
    });
    expect(j.layers).toMatchObject({ eth: { src: M1, dst: M2, type: 0x800 }, ipv4: { src: "10.0.0.1", dst: "10.0.0.2", protocol: 6 }, tcp: { sport: 43210, dport: 80, flags: 2, seq: 1000 }, payload: "" });
    expect(j.error).toBeUndefined();
    const bad = recordJson({ ...rec, data: syn.subarray(0, 40), origLen: 74 });
    expect(bad.layers).toBeUndefined();
    expect(bad.error).toMatch(/^ipv4 at byte 14: truncated/);
    expect(JSON.parse(JSON.stringify(j))).toEqual(j);
  });

  it("never throws: any bytes, any truncation", () => {
    const seeds = table.map((t) => t.bytes);
    fc.assert(
      fc.property(fc.nat(seeds.length - 1), fc.nat(200), fc.array(fc.tuple(fc.nat(199), fc.nat(255)), { maxLength: 8 }), (i, cut, edits) => {
        const b = seeds[i]!.slice(0, cut);
        for (const [at, v] of edits) if (at < b.length) b[at] = v;
        expect(typeof formatFrame(b, b.length + (cut % 3) * 10)).toBe("string");
        const j = recordJson({ index: 1, ifIndex: 0, ifName: undefined, linktype: 1, tsNs: 0n, data: b, origLen: b.length });
        expect(j.layers !== undefined || j.error !== undefined).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });
});

describe("format: real kernel packets (veth capture made by test/fixtures/pcap/make-veth-capture.sh)", () => {
  it("matches tcpdump's own rendering line for line", () => {
    const dir = new URL("../fixtures/pcap/", import.meta.url);
    const cap = readCapture(readFileSync(new URL("veth.pcap", dir)), "veth.pcap");
    const want = readFileSync(new URL("veth.tcpdump.txt", dir), "utf8").trimEnd().split("\n");
    expect(want.length).toBeGreaterThan(10);
    expect(cap.records.map((r) => formatRecord(r))).toEqual(want);
  });
});
