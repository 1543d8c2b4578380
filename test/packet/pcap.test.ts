import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { CaptureError, iteratePcap, readPcap, writePcap } from "../../src/packet/pcap.js";
import { readCapture } from "../../src/packet/pcapng.js";

/** Hand-crafted classic pcap bytes, independent of the writer under test. */
function u32(v: number, le: boolean): number[] {
  const b = [(v >>> 24) & 255, (v >>> 16) & 255, (v >>> 8) & 255, v & 255];
  return le ? b.reverse() : b;
}
function u16(v: number, le: boolean): number[] {
  const b = [(v >>> 8) & 255, v & 255];
  return le ? b.reverse() : b;
}
interface Rec {
  sec: number;
  frac: number;
  data: number[];
  orig?: number;
}
function craft(opts: { le: boolean; magic: number; snaplen?: number; linktype?: number; major?: number }, recs: Rec[]): Uint8Array {
  const { le } = opts;
  const out = [
    ...u32(opts.magic, le), ...u16(opts.major ?? 2, le), ...u16(4, le), ...u32(0, le), ...u32(0, le),
    ...u32(opts.snaplen ?? 65535, le), ...u32(opts.linktype ?? 1, le),
  ];
  for (const r of recs) {
    out.push(...u32(r.sec, le), ...u32(r.frac, le), ...u32(r.data.length, le), ...u32(r.orig ?? r.data.length, le), ...r.data);
  }
  return Uint8Array.from(out);
}

const frameA = Array.from({ length: 60 }, (_, i) => i);
const frameB = Array.from({ length: 14 }, (_, i) => 0xf0 + i);
const recs: Rec[] = [
  { sec: 1_700_000_000, frac: 123_456, data: frameA, orig: 1514 },
  { sec: 1_700_000_001, frac: 999_999, data: frameB },
];

describe("classic pcap reader: hand-crafted files", () => {
  const cases = [
    { name: "little-endian microseconds", le: true, magic: 0xa1b2c3d4, scale: 1000n },
    { name: "big-endian microseconds", le: false, magic: 0xa1b2c3d4, scale: 1000n },
    { name: "little-endian nanoseconds", le: true, magic: 0xa1b23c4d, scale: 1n },
    { name: "big-endian nanoseconds", le: false, magic: 0xa1b23c4d, scale: 1n },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const bytes = craft(c, recs);
      const cap = readCapture(bytes, "t.pcap");
      expect(cap.format).toBe("pcap");
      expect(cap.interfaces).toEqual([{ name: undefined, linktype: 1, snaplen: 65535 }]);
      expect(cap.records).toHaveLength(2);
      cap.records.forEach((r, i) => {
        const want = recs[i]!;
        expect(r.index).toBe(i + 1);
        expect(r.ifIndex).toBe(0);
        expect(r.ifName).toBeUndefined();
        expect(r.linktype).toBe(1);
        expect(r.tsNs).toBe(BigInt(want.sec) * 1_000_000_000n + BigInt(want.frac) * c.scale);
        expect([...r.data]).toEqual(want.data);
        expect(r.origLen).toBe(want.orig ?? want.data.length);
        // zero-copy: the record's bytes are a view of the file
        expect(r.data.buffer).toBe(bytes.buffer);
      });
    });
  }
});

describe("classic pcap writer round trip", () => {
  const packets = [
    { tsNs: 1_700_000_000_123_456_789n, data: Uint8Array.from(frameA), origLen: 1514 },
    { tsNs: 5n, data: Uint8Array.from(frameB) },
  ];
  for (const nanosecond of [false, true]) {
    for (const bigEndian of [false, true]) {
      it(`nanosecond=${nanosecond} bigEndian=${bigEndian}`, () => {
        const bytes = writePcap(packets, { nanosecond, bigEndian });
        const magic = nanosecond ? [0xa1, 0xb2, 0x3c, 0x4d] : [0xa1, 0xb2, 0xc3, 0xd4];
        expect([...bytes.subarray(0, 4)]).toEqual(bigEndian ? magic : [...magic].reverse());
        const got = readPcap(bytes, "w.pcap").records;
        expect(got.map((r) => r.tsNs)).toEqual(
          nanosecond ? packets.map((p) => p.tsNs) : packets.map((p) => (p.tsNs / 1000n) * 1000n),
        );
        expect(got.map((r) => [...r.data])).toEqual(packets.map((p) => [...p.data]));
        expect(got.map((r) => r.origLen)).toEqual([1514, 14]);
      });
    }
  }
  it("cuts packets at the snaplen and keeps the original length", () => {
    const got = readPcap(writePcap(packets, { snaplen: 20 }), "s.pcap").records;
    expect(got.map((r) => r.data.length)).toEqual([20, 14]);
    expect(got.map((r) => r.origLen)).toEqual([1514, 14]);
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

describe("classic pcap reader: malformed files", () => {
  const good = craft({ le: true, magic: 0xa1b2c3d4 }, recs);
  const rec1End = 24 + 16 + frameA.length;

  it("truncation at every byte raises CaptureError at the right place, or reads a prefix at a record boundary", () => {
    for (let cut = 0; cut < good.length; cut++) {
      const bytes = good.subarray(0, cut);
      if (cut === 24 || cut === rec1End) {
        expect(readPcap(bytes, "c.pcap").records).toHaveLength(cut === 24 ? 0 : 1);
        continue;
      }
      const e = captureErrorOf(() => readCapture(bytes, "c.pcap"));
      if (cut < 24) {
        expect(e.where).toMatch(/^c\.pcap: byte \d+$/);
        expect(e.message).toMatch(/truncated/);
      } else {
        expect(e.where).toBe(`c.pcap: packet ${cut < rec1End ? 1 : 2}`);
        expect(e.message).toMatch(/truncated record/);
      }
    }
  });

  const table: { name: string; bytes: Uint8Array; where: string; msg: RegExp }[] = [
    { name: "bad magic", bytes: Uint8Array.from([1, 2, 3, 4, ...good.subarray(4)]), where: "f: byte 0", msg: /bad magic/ },
    {
      name: "LINUX_SLL link type",
      bytes: craft({ le: true, magic: 0xa1b2c3d4, linktype: 113 }, recs),
      where: "f: byte 20",
      msg: /link type 113 \(LINKTYPE_LINUX_SLL\)/,
    },
    {
      name: "unsupported version",
      bytes: craft({ le: false, magic: 0xa1b2c3d4, major: 3 }, recs),
      where: "f: byte 4",
      msg: /version 3\.4/,
    },
    {
      name: "caplen > snaplen",
      bytes: craft({ le: true, magic: 0xa1b2c3d4, snaplen: 59 }, recs),
      where: "f: packet 1",
      msg: /captured length 60 exceeds the file's snaplen 59/,
    },
    {
      name: "absurd caplen with no snaplen",
      bytes: (() => {
        const b = craft({ le: true, magic: 0xa1b2c3d4, snaplen: 0 }, recs);
        new DataView(b.buffer).setUint32(rec1End + 8, 0x7fffffff, true);
        return b;
      })(),
      where: "f: packet 2",
      msg: /absurd/,
    },
    {
      name: "original length smaller than captured",
      bytes: craft({ le: true, magic: 0xa1b2c3d4 }, [recs[0]!, { ...recs[1]!, orig: 3 }]),
      where: "f: packet 2",
      msg: /original length 3 is smaller than captured length 14/,
    },
    {
      name: "microsecond fraction out of range",
      bytes: craft({ le: true, magic: 0xa1b2c3d4 }, [{ ...recs[0]!, frac: 1_000_000 }]),
      where: "f: packet 1",
      msg: /fraction/,
    },
  ];
  for (const t of table) {
    it(t.name, () => {
      const e = captureErrorOf(() => readCapture(t.bytes, "f"));
      expect(e.where).toBe(t.where);
      expect(e.message).toMatch(t.msg);
    });
  }

  it("the iterator yields good packets before the bad one", () => {
    const bad = craft({ le: true, magic: 0xa1b2c3d4 }, [recs[0]!, { ...recs[1]!, orig: 3 }]);
    const it = iteratePcap(bad, "f");
    expect(it.next().value?.index).toBe(1);
    expect(() => it.next()).toThrow(CaptureError);
  });

  it("random corruption raises CaptureError or reads, never anything else", () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(good.length - 1), fc.nat(255)), { maxLength: 6 }), (edits) => {
        const b = good.slice();
        for (const [at, v] of edits) b[at] = v;
        try {
          readCapture(b, "r.pcap");
        } catch (e) {
          expect(e).toBeInstanceOf(CaptureError);
        }
      }),
    );
  });
});
