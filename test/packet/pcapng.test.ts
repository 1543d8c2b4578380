import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { CaptureError } from "../../src/packet/pcap.js";
import { readCapture, readPcapng } from "../../src/packet/pcapng.js";
import { PcapngWriter, writePcapng } from "../../src/packet/pcapng-writer.js";

// Hand-crafted pcapng blocks, independent of the writer under test.
class B {
  constructor(readonly le: boolean) {}
  u16(v: number): number[] {
    const b = [(v >>> 8) & 255, v & 255];
    return this.le ? b.reverse() : b;
  }
  u32(v: number): number[] {
    const b = [(v >>> 24) & 255, (v >>> 16) & 255, (v >>> 8) & 255, v & 255];
    return this.le ? b.reverse() : b;
  }
  pad(a: number[]): number[] {
    return [...a, ...new Array((4 - (a.length % 4)) % 4).fill(0)];
  }
  opt(code: number, value: number[] | string): number[] {
    const v = typeof value === "string" ? [...Buffer.from(value)] : value;
    return [...this.u16(code), ...this.u16(v.length), ...this.pad(v)];
  }
  opts(...o: number[][]): number[] {
    return o.length ? [...o.flat(), 0, 0, 0, 0] : [];
  }
  block(type: number, body: number[]): number[] {
    const total = 12 + body.length;
    return [...this.u32(type), ...this.u32(total), ...body, ...this.u32(total)];
  }
  shb(...opts: number[][]): number[] {
    return this.block(0x0a0d0d0a, [...this.u32(0x1a2b3c4d), ...this.u16(1), ...this.u16(0), ...new Array(8).fill(0xff), ...this.opts(...opts)]);
  }
  idb(linktype: number, snaplen: number, ...opts: number[][]): number[] {
    return this.block(1, [...this.u16(linktype), 0, 0, ...this.u32(snaplen), ...this.opts(...opts)]);
  }
  epb(ifid: number, ts: bigint, data: number[], orig = data.length, ...opts: number[][]): number[] {
    return this.block(6, [
      ...this.u32(ifid), ...this.u32(Number(ts >> 32n)), ...this.u32(Number(ts & 0xffffffffn)),
      ...this.u32(data.length), ...this.u32(orig), ...this.pad(data), ...this.opts(...opts),
    ]);
  }
  spb(orig: number, data: number[]): number[] {
    return this.block(3, [...this.u32(orig), ...this.pad(data)]);
  }
}

const frame = (n: number, seed: number) => Array.from({ length: n }, (_, i) => (i * 7 + seed) & 255);

function handFile(le: boolean): number[] {
  const b = new B(le);
  return [
    ...b.shb(b.opt(4, "handmade"), b.opt(1, "a comment")),
    ...b.idb(1, 65535, b.opt(2, "node-1/eth0"), b.opt(3, "first")), // default tsresol: microseconds
    ...b.block(4, [...b.u16(1), ...b.u16(8), 10, 0, 0, 1, ...[...Buffer.from("a\0\0\0")], 0, 0, 0, 0]), // NRB
    ...b.idb(1, 128, b.opt(2, "node-2/eth0"), b.opt(9, [9])), // nanoseconds
    ...b.epb(0, 1_700_000_000_123_456n, frame(42, 1), 42, b.opt(1, "hello"), b.opt(2, b.u32(1))),
    ...b.block(5, [...b.u32(0), ...b.u32(0), ...b.u32(0)]), // ISB
    ...b.block(0x40000bad, [...b.u32(32473), 1, 2, 3, 4]), // custom block
    ...b.epb(1, 1_700_000_000_123_456_789n, frame(61, 2), 1500, b.opt(2, b.u32(2))),
    ...b.spb(70, frame(70, 3)),
  ];
}

describe("pcapng reader: hand-crafted file", () => {
  for (const le of [true, false]) {
    it(le ? "little-endian" : "big-endian", () => {
      const bytes = Uint8Array.from(handFile(le));
      const cap = readCapture(bytes, "h.pcapng");
      expect(cap.format).toBe("pcapng");
      expect(cap.interfaces).toEqual([
        { name: "node-1/eth0", description: "first", linktype: 1, snaplen: 65535 },
        { name: "node-2/eth0", linktype: 1, snaplen: 128 },
      ]);
      const r = cap.records;
      expect(r.map((x) => [x.index, x.ifIndex, x.ifName, x.linktype])).toEqual([
        [1, 0, "node-1/eth0", 1],
        [2, 1, "node-2/eth0", 1],
        [3, 0, "node-1/eth0", 1],
      ]);
      expect(r.map((x) => x.tsNs)).toEqual([1_700_000_000_123_456_000n, 1_700_000_000_123_456_789n, 0n]);
      expect(r.map((x) => [...x.data])).toEqual([frame(42, 1), frame(61, 2), frame(70, 3)]);
      expect(r.map((x) => x.origLen)).toEqual([42, 1500, 70]);
      expect(r.map((x) => x.comment)).toEqual(["hello", undefined, undefined]);
      expect(r.map((x) => x.direction)).toEqual(["inbound", "outbound", undefined]);
      expect(r[0]!.data.buffer).toBe(bytes.buffer);
    });
  }

  it("power-of-two if_tsresol and if_tsoffset", () => {
    const b = new B(true);
    const off = [...b.u32(100), ...b.u32(0)]; // 100 s, little-endian int64
    const bytes = Uint8Array.from([
      ...b.shb(),
      ...b.idb(1, 0, b.opt(9, [0x80 | 10]), b.opt(14, off)), // units of 2^-10 s
      ...b.epb(0, 3n * 1024n + 512n, frame(14, 0)),
    ]);
    expect(readPcapng(bytes, "p").records[0]!.tsNs).toBe(103_500_000_000n);
  });

  it("several sections with different byte orders renumber interfaces per section", () => {
    const le = new B(true);
    const be = new B(false);
    const bytes = Uint8Array.from([
      ...le.shb(), ...le.idb(1, 0, le.opt(2, "a")), ...le.epb(0, 1n, frame(20, 1)),
      ...be.shb(), ...be.idb(1, 0, be.opt(2, "b")), ...be.idb(1, 0, be.opt(2, "c")), ...be.epb(1, 2n, frame(20, 2)),
      ...be.epb(0, 3n, frame(20, 3)),
    ]);
    const cap = readPcapng(bytes, "s");
    expect(cap.interfaces.map((i) => i.name)).toEqual(["a", "b", "c"]);
    expect(cap.records.map((r) => [r.index, r.ifIndex, r.ifName, r.tsNs])).toEqual([
      [1, 0, "a", 1000n],
      [2, 2, "c", 2000n],
      [3, 1, "b", 3000n],
    ]);
  });
});

describe("pcapng writer round trip", () => {
  for (const bigEndian of [false, true]) {
    it(`bigEndian=${bigEndian}: interfaces, nanosecond timestamps, comments, direction, snaplen`, () => {
      const bytes = writePcapng(
        [{ name: "node-1/eth0" }, { name: "node-2/eth0", description: "pod network", snaplen: 50 }],
        [
          { ifIndex: 0, tsNs: 1_700_000_000_000_000_001n, data: Uint8Array.from(frame(60, 1)), direction: "outbound" },
          { ifIndex: 1, tsNs: 2n ** 63n + 7n, data: Uint8Array.from(frame(99, 2)), comment: "ünïcode ok" },
          { ifIndex: 0, tsNs: 0n, data: Uint8Array.from(frame(13, 3)), origLen: 1514, direction: "inbound" },
        ],
        { bigEndian },
      );
      const cap = readCapture(bytes, "w.pcapng");
      expect(cap.interfaces).toEqual([
        { name: "node-1/eth0", linktype: 1, snaplen: 262144 },
        { name: "node-2/eth0", description: "pod network", linktype: 1, snaplen: 50 },
      ]);
      const r = cap.records;
      expect(r.map((x) => [x.ifIndex, x.ifName, x.tsNs, x.data.length, x.origLen, x.comment, x.direction])).toEqual([
        [0, "node-1/eth0", 1_700_000_000_000_000_001n, 60, 60, undefined, "outbound"],
        [1, "node-2/eth0", 2n ** 63n + 7n, 50, 99, "ünïcode ok", undefined],
        [0, "node-1/eth0", 0n, 13, 1514, undefined, "inbound"],
      ]);
      expect([...r[1]!.data]).toEqual(frame(50, 2));
      expect(bytes.length % 4).toBe(0);
    });
  }

  it("streams blocks to a sink, SHB first with shb_userappl tcbox", () => {
    const blocks: Uint8Array[] = [];
    const w = new PcapngWriter({ sink: (b) => blocks.push(b) });
    w.addInterface({ name: "x" });
    w.writePacket({ ifIndex: 0, tsNs: 1n, data: new Uint8Array(14) });
    expect(w.finish().length).toBe(0);
    expect(blocks).toHaveLength(3);
    expect(Buffer.from(blocks[0]!).includes(Buffer.from("tcbox"))).toBe(true);
    const whole = Uint8Array.from(blocks.flatMap((b) => [...b]));
    expect(readPcapng(whole, "x").records).toHaveLength(1);
    expect(() => w.writePacket({ ifIndex: 3, tsNs: 1n, data: new Uint8Array(1) })).toThrow(RangeError);
  });
});

function captureErrorOf(fn: () => unknown): CaptureError {
  try {
    fn();
  } catch (e) {
    if (e instanceof CaptureError) return e;
    throw new Error(`expected CaptureError, got ${String(e)}`);
  }
  throw new Error("expected CaptureError, nothing was thrown");
}

describe("pcapng reader: malformed files", () => {
  const good = Uint8Array.from(handFile(true));
  // Block boundaries and which packet (if any) each block holds, found by walking the lengths.
  const blocks: { start: number; end: number; type: number }[] = [];
  for (let at = 0; at < good.length; ) {
    const dv = new DataView(good.buffer, at);
    const total = dv.getUint32(4, true);
    blocks.push({ start: at, end: at + total, type: dv.getUint32(0, true) });
    at += total;
  }

  it("truncation at every byte raises CaptureError naming the block or packet, or reads a prefix", () => {
    for (let cut = 0; cut < good.length; cut++) {
      const bytes = good.subarray(0, cut);
      const done = blocks.filter((b) => b.end <= cut);
      const packetsDone = done.filter((b) => b.type === 6 || b.type === 3).length;
      if (cut > 0 && blocks.some((b) => b.end === cut)) {
        expect(readPcapng(bytes, "t").records).toHaveLength(packetsDone);
        continue;
      }
      const e = captureErrorOf(() => readCapture(bytes, "t"));
      const cutBlock = blocks.find((b) => b.start <= cut && cut < b.end)!;
      const isPacket = cutBlock.type === 6 || cutBlock.type === 3;
      // Fewer than 4 bytes of a block: its type is unknown, so only the byte offset can be named.
      if (cut < 4) expect(e.where).toBe("t: byte 0");
      else if (isPacket && cut - cutBlock.start >= 4) expect(e.where).toBe(`t: packet ${packetsDone + 1}`);
      else expect(e.where).toBe(`t: byte ${cutBlock.start}`);
    }
  });

  const b = new B(true);
  const head = [...b.shb(), ...b.idb(1, 0, b.opt(2, "i"))];
  const table: { name: string; bytes: number[]; where: string; msg: RegExp }[] = [
    { name: "not a capture", bytes: [0x50, 0x4b, 3, 4, 0, 0], where: "f: byte 0", msg: /bad magic/ },
    {
      name: "bad byte-order magic",
      bytes: [0x0a, 0x0d, 0x0d, 0x0a, 28, 0, 0, 0, 1, 2, 3, 4, ...new Array(16).fill(0)],
      where: "f: byte 8",
      msg: /byte-order magic/,
    },
    {
      name: "block length not a multiple of 4",
      bytes: [...head, ...b.u32(6), ...b.u32(33), ...new Array(25).fill(0)],
      where: "f: packet 1",
      msg: /bad total length 33/,
    },
    { name: "block length below 12", bytes: [...head, ...b.u32(5), ...b.u32(8), 0, 0, 0, 0], where: `f: byte ${head.length}`, msg: /bad total length 8/ },
    {
      name: "trailing length differs",
      bytes: [...head, ...b.epb(0, 1n, frame(20, 0)).slice(0, -4), ...b.u32(44)],
      where: "f: packet 1",
      msg: /at the start but 44 at the end/,
    },
    {
      name: "block longer than the file",
      bytes: [...head, ...b.u32(1), ...b.u32(400), ...new Array(20).fill(0)],
      where: `f: byte ${head.length}`,
      msg: /total length 400, 28 bytes left/,
    },
    { name: "unknown interface id", bytes: [...head, ...b.epb(3, 1n, frame(20, 0))], where: "f: packet 1", msg: /interface id 3/ },
    {
      name: "packet on a non-Ethernet interface",
      bytes: [...b.shb(), ...b.idb(276, 0), ...b.epb(0, 1n, frame(20, 0))],
      where: "f: packet 1",
      msg: /link type 276 \(LINKTYPE_LINUX_SLL2\)/,
    },
    {
      name: "caplen past the block",
      bytes: (() => {
        const e = b.epb(0, 1n, frame(20, 0));
        e.splice(20, 4, ...b.u32(200));
        return [...head, ...e];
      })(),
      where: "f: packet 1",
      msg: /runs past the end of its block/,
    },
    {
      name: "caplen above snaplen",
      bytes: [...b.shb(), ...b.idb(1, 16), ...b.epb(0, 1n, frame(20, 0))],
      where: "f: packet 1",
      msg: /exceeds the interface's snaplen 16/,
    },
    {
      name: "option runs past its block",
      bytes: [...b.shb(), ...b.block(1, [1, 0, 0, 0, 0, 0, 0, 0, ...b.u16(2), ...b.u16(40), 0x41, 0x41, 0x41, 0x41])],
      where: `f: byte ${b.shb().length}`,
      msg: /option 2 .* runs past the end/,
    },
    { name: "SPB with no interface", bytes: [...b.shb(), ...b.spb(20, frame(20, 0))], where: "f: packet 1", msg: /interface id 0/ },
    {
      name: "unsupported version",
      bytes: b.block(0x0a0d0d0a, [...b.u32(0x1a2b3c4d), ...b.u16(2), ...b.u16(0), ...new Array(8).fill(0)]),
      where: "f: byte 0",
      msg: /version 2\.0/,
    },
  ];
  for (const t of table) {
    it(t.name, () => {
      const e = captureErrorOf(() => readCapture(Uint8Array.from(t.bytes), "f"));
      expect(e.message).toMatch(t.msg);
      expect(e.where).toBe(t.where);
    });
  }

  it("random corruption raises CaptureError or reads, never anything else", () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(good.length - 1), fc.nat(255)), { maxLength: 6 }), (edits) => {
        const c = good.slice();
        for (const [at, v] of edits) c[at] = v;
        try {
          readCapture(c, "r");
        } catch (e) {
          expect(e).toBeInstanceOf(CaptureError);
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe("pcapng reader: a file written by dumpcap (test/fixtures/pcap/make-veth-capture.sh)", () => {
  it("reads its SHB/IDB options and skips its statistics blocks; same packets as tcpdump's simultaneous pcap", async () => {
    const { readFileSync } = await import("node:fs");
    const dir = new URL("../fixtures/pcap/", import.meta.url);
    const ng = readCapture(readFileSync(new URL("veth.pcapng", dir)), "veth.pcapng");
    const classic = readCapture(readFileSync(new URL("veth.pcap", dir)), "veth.pcap");
    expect(ng.format).toBe("pcapng");
    expect(ng.interfaces.map((i) => [i.name, i.linktype])).toEqual([["eth0", 1]]);
    expect(ng.records.every((r) => r.ifName === "eth0" && r.ifIndex === 0)).toBe(true);
    expect(ng.records.map((r) => Buffer.from(r.data).toString("hex"))).toEqual(classic.records.map((r) => Buffer.from(r.data).toString("hex")));
    // Two captures of the same packets: timestamps agree within a millisecond.
    ng.records.forEach((r, i) => expect(Math.abs(Number(r.tsNs - classic.records[i]!.tsNs))).toBeLessThan(1_000_000));
  });
});
