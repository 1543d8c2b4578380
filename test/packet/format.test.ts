import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { buildTcp, TCPHDR_ACK } from "../../src/packet/index.js";
import { formatFrame, formatRecord, formatTimestamp, isoTimestamp, recordJson } from "../../src/packet/format.js";
import { tcpFlagsString } from "../../src/packet/format-tcp.js";
import { readCapture } from "../../src/packet/pcapng.js";
import { arpReq, E, M1, M2, syn, table } from "./format-cases.js";

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

  it("ISO timestamps cover the whole range a pcapng can give, before 1970 and past Date's year 275760", () => {
    expect(isoTimestamp(-1n)).toBe("1969-12-31T23:59:59.999999999Z");
    expect(isoTimestamp(-62_167_219_200_000_000_001n)).toBe("-000001-12-31T23:59:59.999999999Z");
    expect(isoTimestamp(951_782_400_000_000_000n)).toBe("2000-02-29T00:00:00.000000000Z");
    // 2^64-1 microseconds (an EPB timestamp of all ones at the default resolution): Date cannot hold it.
    expect(isoTimestamp(0xffff_ffff_ffff_ffffn * 1000n)).toBe("+586524-01-19T08:01:49.551615000Z");
    // Agrees with Date wherever Date reaches.
    fc.assert(
      fc.property(fc.bigInt({ min: -8_640_000_000_000_000_000_000n, max: 8_640_000_000_000_000_000_000n }), (ns) => {
        const ms = ns >= 0n ? ns / 1_000_000n : -((-ns + 999_999n) / 1_000_000n);
        const frac = String(((ns % 1_000_000_000n) + 1_000_000_000n) % 1_000_000_000n).padStart(9, "0");
        expect(isoTimestamp(ns)).toBe(new Date(Number(ms)).toISOString().slice(0, -5) + "." + frac + "Z");
      }),
    );
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
      length: 74, capturedLength: 74, comment: "c", summary: table.find((t) => t.name === "TCP SYN with options")!.line,
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
