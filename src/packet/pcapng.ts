// pcapng (https://www.ietf.org/archive/id/draft-ietf-opsawg-pcapng-02.html): a file is one or more sections; each
// section is a Section Header Block (its byte-order magic fixes the byte order of the whole section), Interface
// Description Blocks numbered 0.. within the section, and packet blocks that name an interface by that number.
// Every block is `type, total length, body, total length`, a multiple of 4 bytes. Unknown blocks (Name Resolution,
// Interface Statistics, custom, ...) are skipped by their length, as Wireshark does.
//
// readCapture() sniffs the first four bytes and reads either format into the same records. Writing is in
// pcapng-writer.ts.

import {
  type Capture,
  type CaptureInterface,
  type CaptureRecord,
  CaptureError,
  type Direction,
  isClassicPcap,
  iteratePcap,
  MAX_SNAPLEN,
  type PacketToWrite,
  readPcap,
  requireEthernet,
} from "./pcap.js";

export const BT_SHB = 0x0a0d0d0a;
export const BT_IDB = 0x00000001;
export const BT_PB = 0x00000002; // obsolete Packet Block, still read
export const BT_SPB = 0x00000003;
export const BT_NRB = 0x00000004;
export const BT_ISB = 0x00000005;
export const BT_EPB = 0x00000006;
export const BYTE_ORDER_MAGIC = 0x1a2b3c4d;

const OPT_ENDOFOPT = 0;
export const OPT_COMMENT = 1;
export const SHB_USERAPPL = 4;
export const IF_NAME = 2;
export const IF_DESCRIPTION = 3;
export const IF_TSRESOL = 9;
const IF_TSOFFSET = 14;
export const EPB_FLAGS = 2;

const utf8 = new TextDecoder("utf-8", { fatal: false });

interface Option {
  code: number;
  value: Uint8Array;
}

/** Per-interface state while reading: how to turn timestamp units into nanoseconds. */
interface IfState {
  global: number;
  info: CaptureInterface;
  /** Timestamp resolution: units of base^-exp seconds (if_tsresol; default 10^-6). */
  base: 10 | 2;
  exp: number;
  offsetNs: bigint;
}

function tsToNs(units: bigint, s: IfState): bigint {
  let ns: bigint;
  if (s.base === 2) ns = (units * 1_000_000_000n) >> BigInt(s.exp);
  else if (s.exp <= 9) ns = units * 10n ** BigInt(9 - s.exp);
  else ns = units / 10n ** BigInt(s.exp - 9);
  return ns + s.offsetNs;
}

class Reader {
  readonly dv: DataView;
  le = true;
  off = 0;
  packets = 0;
  section: IfState[] = [];
  readonly interfaces: CaptureInterface[] = [];

  constructor(
    readonly bytes: Uint8Array,
    readonly file: string,
  ) {
    this.dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  u16(at: number): number {
    return this.dv.getUint16(at, this.le);
  }
  u32(at: number): number {
    return this.dv.getUint32(at, this.le);
  }

  fail(message: string, where: string): never {
    throw new CaptureError(message, `${this.file}: ${where}`);
  }

  /** Options from `start` up to `end` (exclusive): code, length, value padded to 32 bits; opt_endofopt stops. */
  options(start: number, end: number, where: string): Option[] {
    const out: Option[] = [];
    let at = start;
    while (at < end) {
      if (end - at < 4) this.fail(`option at byte ${at}: ${end - at} bytes left, an option header needs 4`, where);
      const code = this.u16(at);
      const len = this.u16(at + 2);
      if (code === OPT_ENDOFOPT) break;
      const padded = (len + 3) & ~3;
      if (at + 4 + padded > end) {
        this.fail(`option ${code} at byte ${at}: length ${len} runs past the end of its block`, where);
      }
      out.push({ code, value: this.bytes.subarray(at + 4, at + 4 + len) });
      at += 4 + padded;
    }
    return out;
  }

  /** Where a problem in the block at `off` is reported: packet blocks by packet number, others by byte offset. */
  whereOf(type: number | undefined, off: number): string {
    if (type === BT_EPB || type === BT_SPB || type === BT_PB) return `packet ${this.packets + 1}`;
    return `byte ${off}`;
  }

  *records(): Generator<CaptureRecord, void, undefined> {
    const { bytes } = this;
    if (bytes.length < 4 || this.dv.getUint32(0, true) !== BT_SHB) {
      this.fail("bad magic: a pcapng file starts with a Section Header Block (0a0d0d0a)", "byte 0");
    }
    while (this.off < bytes.length) {
      const off = this.off;
      const left = bytes.length - off;
      let type: number | undefined = left >= 4 ? this.dv.getUint32(off, true) : undefined;
      if (type === BT_SHB) {
        if (left < 12) this.fail(`truncated Section Header Block: ${left} of at least 28 bytes`, `byte ${off}`);
        const bom = this.dv.getUint32(off + 8, false);
        if (bom === BYTE_ORDER_MAGIC) this.le = false;
        else if (this.dv.getUint32(off + 8, true) === BYTE_ORDER_MAGIC) this.le = true;
        else this.fail(`bad byte-order magic 0x${bom.toString(16).padStart(8, "0")}`, `byte ${off + 8}`);
      } else if (type !== undefined) {
        type = this.u32(off);
      }
      if (left < 12) {
        this.fail(`truncated block at byte ${off}: ${left} bytes, a block needs at least 12`, this.whereOf(type, off));
      }
      const t = type!;
      const total = this.u32(off + 4);
      const isPacket = t === BT_EPB || t === BT_SPB || t === BT_PB;
      const where = this.whereOf(t, off);
      if (isPacket) this.packets++;
      if (total < 12 || total % 4 !== 0) {
        this.fail(`block at byte ${off}: bad total length ${total} (must be a multiple of 4, at least 12)`, where);
      }
      if (total > left) this.fail(`truncated block at byte ${off}: total length ${total}, ${left} bytes left`, where);
      const trailer = this.u32(off + total - 4);
      if (trailer !== total) {
        this.fail(`block at byte ${off}: total length ${total} at the start but ${trailer} at the end`, where);
      }
      const body = off + 8;
      const end = off + total - 4;
      this.off = off + total;
      switch (t) {
        case BT_SHB:
          this.readShb(body, end, where);
          break;
        case BT_IDB:
          this.readIdb(body, end, where);
          break;
        case BT_EPB:
          yield this.readEpb(body, end, where);
          break;
        case BT_SPB:
          yield this.readSpb(body, end, where);
          break;
        case BT_PB:
          yield this.readPb(body, end, where);
          break;
        default:
          // NRB, ISB, Decryption Secrets, custom blocks: nothing tcbox needs; the length check above sufficed.
          break;
      }
    }
  }

  readShb(body: number, end: number, where: string): void {
    if (end - body < 16) this.fail("Section Header Block body shorter than 16 bytes", where);
    const major = this.u16(body + 4);
    if (major !== 1) this.fail(`unsupported pcapng version ${major}.${this.u16(body + 6)} (expected 1.0)`, where);
    // Section length (body+8, int64) may be -1 (unknown); blocks are walked by their own lengths either way.
    this.options(body + 16, end, where);
    this.section = [];
  }

  readIdb(body: number, end: number, where: string): void {
    if (end - body < 8) this.fail("Interface Description Block body shorter than 8 bytes", where);
    const info: CaptureInterface = { name: undefined, linktype: this.u16(body), snaplen: this.u32(body + 4) };
    const st: IfState = { global: this.interfaces.length, info, base: 10, exp: 6, offsetNs: 0n };
    for (const o of this.options(body + 8, end, where)) {
      if (o.code === IF_NAME) info.name = utf8.decode(o.value);
      else if (o.code === IF_DESCRIPTION) info.description = utf8.decode(o.value);
      else if (o.code === IF_TSRESOL) {
        if (o.value.length < 1) this.fail("if_tsresol option is empty", where);
        const v = o.value[0]!;
        // High bit set: a negative power of 2; clear: a negative power of 10.
        st.base = v & 0x80 ? 2 : 10;
        st.exp = v & 0x7f;
        if ((st.base === 10 && st.exp > 18) || (st.base === 2 && st.exp > 63)) {
          this.fail(`if_tsresol ${v} is out of range`, where);
        }
      } else if (o.code === IF_TSOFFSET) {
        if (o.value.length !== 8) this.fail("if_tsoffset option is not 8 bytes", where);
        const dv = new DataView(o.value.buffer, o.value.byteOffset, 8);
        st.offsetNs = dv.getBigInt64(0, this.le) * 1_000_000_000n;
      }
    }
    this.section.push(st);
    this.interfaces.push(info);
  }

  iface(id: number, where: string): IfState {
    const st = this.section[id];
    if (st === undefined) {
      this.fail(`interface id ${id} has no Interface Description Block in this section (${this.section.length} defined)`, where);
    }
    requireEthernet(st.info.linktype, `${this.file}: ${where}`);
    return st;
  }

  checkCaplen(caplen: number, origLen: number, room: number, st: IfState, where: string): void {
    if (caplen > room) this.fail(`captured length ${caplen} runs past the end of its block (${room} bytes)`, where);
    const limit = st.info.snaplen > 0 ? st.info.snaplen : MAX_SNAPLEN;
    if (caplen > limit) this.fail(`captured length ${caplen} exceeds the interface's snaplen ${limit}`, where);
    if (origLen < caplen) this.fail(`original length ${origLen} is smaller than captured length ${caplen}`, where);
  }

  record(st: IfState, units: bigint, data: Uint8Array, origLen: number): CaptureRecord {
    return {
      index: this.packets,
      ifIndex: st.global,
      ifName: st.info.name,
      linktype: st.info.linktype,
      tsNs: tsToNs(units, st),
      data,
      origLen,
    };
  }

  withOptions(rec: CaptureRecord, opts: Option[]): CaptureRecord {
    for (const o of opts) {
      if (o.code === OPT_COMMENT) rec.comment = utf8.decode(o.value);
      else if (o.code === EPB_FLAGS && o.value.length === 4) {
        const dir = new DataView(o.value.buffer, o.value.byteOffset, 4).getUint32(0, this.le) & 3;
        if (dir === 1) rec.direction = "inbound";
        else if (dir === 2) rec.direction = "outbound";
      }
    }
    return rec;
  }

  readEpb(body: number, end: number, where: string): CaptureRecord {
    if (end - body < 20) this.fail("Enhanced Packet Block body shorter than 20 bytes", where);
    const st = this.iface(this.u32(body), where);
    const units = (BigInt(this.u32(body + 4)) << 32n) | BigInt(this.u32(body + 8));
    const caplen = this.u32(body + 12);
    const origLen = this.u32(body + 16);
    const data = body + 20;
    this.checkCaplen(caplen, origLen, end - data, st, where);
    const rec = this.record(st, units, this.bytes.subarray(data, data + caplen), origLen);
    return this.withOptions(rec, this.options(data + ((caplen + 3) & ~3), end, where));
  }

  readSpb(body: number, end: number, where: string): CaptureRecord {
    if (end - body < 4) this.fail("Simple Packet Block body shorter than 4 bytes", where);
    // An SPB always belongs to interface 0 and has no timestamp; its captured length is implied (spec §4.4).
    const st = this.iface(0, where);
    const origLen = this.u32(body);
    const data = body + 4;
    let caplen = Math.min(origLen, end - data);
    if (st.info.snaplen > 0) caplen = Math.min(caplen, st.info.snaplen);
    return this.record(st, 0n, this.bytes.subarray(data, data + caplen), origLen);
  }

  readPb(body: number, end: number, where: string): CaptureRecord {
    if (end - body < 20) this.fail("Packet Block body shorter than 20 bytes", where);
    const st = this.iface(this.u16(body), where);
    const units = (BigInt(this.u32(body + 4)) << 32n) | BigInt(this.u32(body + 8));
    const caplen = this.u32(body + 12);
    const origLen = this.u32(body + 16);
    const data = body + 20;
    this.checkCaplen(caplen, origLen, end - data, st, where);
    const rec = this.record(st, units, this.bytes.subarray(data, data + caplen), origLen);
    return this.withOptions(rec, this.options(data + ((caplen + 3) & ~3), end, where));
  }
}

/** Yields the packets of a pcapng file; `interfaces` (if given) collects every IDB seen, across sections. */
export function* iteratePcapng(
  bytes: Uint8Array,
  file: string,
  interfaces?: CaptureInterface[],
): Generator<CaptureRecord, void, undefined> {
  const r = new Reader(bytes, file);
  try {
    yield* r.records();
  } finally {
    if (interfaces) interfaces.push(...r.interfaces);
  }
}

export function readPcapng(bytes: Uint8Array, file: string): Capture {
  const interfaces: CaptureInterface[] = [];
  const records = [...iteratePcapng(bytes, file, interfaces)];
  return { format: "pcapng", interfaces, records };
}

export function isPcapng(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x0a && bytes[1] === 0x0d && bytes[2] === 0x0d && bytes[3] === 0x0a;
}

/** Reads a classic pcap or a pcapng file, told apart by the magic number. Throws CaptureError. */
export function readCapture(bytes: Uint8Array, file: string): Capture {
  if (isPcapng(bytes)) return readPcapng(bytes, file);
  if (isClassicPcap(bytes)) return readPcap(bytes, file);
  if (bytes.length < 4) throw new CaptureError(`truncated file: ${bytes.length} bytes, not a capture`, `${file}: byte 0`);
  throw new CaptureError("bad magic: neither a pcap nor a pcapng file", `${file}: byte 0`);
}

/** Streaming form of readCapture: packets one at a time, without holding the records. */
export function* iterateCapture(bytes: Uint8Array, file: string): Generator<CaptureRecord, void, undefined> {
  if (isPcapng(bytes)) yield* iteratePcapng(bytes, file);
  else if (isClassicPcap(bytes)) yield* iteratePcap(bytes, file);
  else readCapture(bytes, file); // throws the right error
}

export { CaptureError };
export type { Capture, CaptureInterface, CaptureRecord, Direction, PacketToWrite };
// The writer lives in pcapng-writer.ts; re-exported so `pcapng.js` stays the one import for both directions.
export { PcapngWriter, writePcapng, type PcapngInterfaceSpec, type PcapngPacket, type PcapngWriterOptions } from "./pcapng-writer.js";
