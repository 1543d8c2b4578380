// Classic libpcap files (https://www.ietf.org/archive/id/draft-ietf-opsawg-pcap-04.html): a 24-byte file header,
// then records of a 16-byte header and the captured bytes. The magic number fixes the byte order (a1b2c3d4 written
// in the writer's order) and the timestamp unit (a1b23c4d: nanoseconds, as libpcap writes with
// PCAP_TSTAMP_PRECISION_NANO). Reading is zero-copy: each record's data is a subarray of the file.
//
// This file also holds what both capture formats share: CaptureError, the record type, and link types.
// Packet numbers in errors and records are 1-based, as tshark's frame.number and Wireshark's "Frame N".

export const LINKTYPE_ETHERNET = 1;

/** tcpdump's default snaplen (MAXIMUM_SNAPLEN); a captured length above it, when the file gives none, is absurd. */
export const MAX_SNAPLEN = 262144;

const PCAP_MAGIC_US = 0xa1b2c3d4;
const PCAP_MAGIC_NS = 0xa1b23c4d;
const FILE_HEADER_LEN = 24;
const RECORD_HEADER_LEN = 16;

/** A malformed or unsupported capture. `where` is `FILE: packet N` (1-based) or `FILE: byte OFFSET`. */
export class CaptureError extends Error {
  constructor(
    message: string,
    readonly where: string,
  ) {
    super(message);
    this.name = "CaptureError";
  }
}

export type Direction = "inbound" | "outbound";

/** One packet read from a pcap or pcapng file. `data` is a view into the file's bytes (no copy). */
export interface CaptureRecord {
  /** 1-based position in the file, as tshark's frame.number. */
  index: number;
  /** Index into Capture.interfaces (across all sections of a pcapng; always 0 for classic pcap). */
  ifIndex: number;
  /** pcapng if_name, or undefined (classic pcap has no interface names). */
  ifName: string | undefined;
  linktype: number;
  /** Nanoseconds since the Unix epoch. bigint: epoch nanoseconds exceed 2^53. */
  tsNs: bigint;
  data: Uint8Array;
  /** Length of the packet on the wire; data.length (the captured length) may be smaller. */
  origLen: number;
  /** pcapng opt_comment, if any. */
  comment?: string;
  /** pcapng epb_flags direction, if given. */
  direction?: Direction;
}

export interface CaptureInterface {
  name: string | undefined;
  description?: string;
  linktype: number;
  snaplen: number;
}

export interface Capture {
  format: "pcap" | "pcapng";
  interfaces: CaptureInterface[];
  records: CaptureRecord[];
}

/** A packet to write: captured bytes plus metadata. origLen defaults to data.length. */
export interface PacketToWrite {
  tsNs: bigint;
  data: Uint8Array;
  origLen?: number;
}

export function linktypeName(linktype: number): string {
  switch (linktype) {
    case 0: return "NULL";
    case 1: return "ETHERNET";
    case 101: return "RAW";
    case 113: return "LINUX_SLL";
    case 127: return "IEEE802_11_RADIOTAP";
    case 276: return "LINUX_SLL2";
    default: return "unknown";
  }
}

/** tcbox models Ethernet links only; any other link type is rejected by name, not misread. */
export function requireEthernet(linktype: number, where: string): void {
  if (linktype !== LINKTYPE_ETHERNET) {
    throw new CaptureError(
      `unsupported link type ${linktype} (LINKTYPE_${linktypeName(linktype)}); tcbox reads LINKTYPE_ETHERNET (1) only`,
      where,
    );
  }
}

export function isClassicPcap(bytes: Uint8Array): boolean {
  if (bytes.length < 4) return false;
  const be = ((bytes[0]! << 24) | (bytes[1]! << 16) | (bytes[2]! << 8) | bytes[3]!) >>> 0;
  const le = ((bytes[3]! << 24) | (bytes[2]! << 16) | (bytes[1]! << 8) | bytes[0]!) >>> 0;
  return be === PCAP_MAGIC_US || be === PCAP_MAGIC_NS || le === PCAP_MAGIC_US || le === PCAP_MAGIC_NS;
}

export interface PcapHeader {
  littleEndian: boolean;
  nanosecond: boolean;
  versionMajor: number;
  versionMinor: number;
  snaplen: number;
  linktype: number;
}

function readPcapHeader(bytes: Uint8Array, file: string): PcapHeader {
  if (bytes.length < 4) {
    throw new CaptureError(`truncated file header: ${bytes.length} of 24 bytes`, `${file}: byte ${bytes.length}`);
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magicBe = dv.getUint32(0, false);
  const magicLe = dv.getUint32(0, true);
  let littleEndian: boolean;
  let magic: number;
  if (magicBe === PCAP_MAGIC_US || magicBe === PCAP_MAGIC_NS) [littleEndian, magic] = [false, magicBe];
  else if (magicLe === PCAP_MAGIC_US || magicLe === PCAP_MAGIC_NS) [littleEndian, magic] = [true, magicLe];
  else throw new CaptureError(`bad magic 0x${magicBe.toString(16).padStart(8, "0")}: not a pcap file`, `${file}: byte 0`);
  if (bytes.length < FILE_HEADER_LEN) {
    throw new CaptureError(`truncated file header: ${bytes.length} of 24 bytes`, `${file}: byte ${bytes.length}`);
  }
  const versionMajor = dv.getUint16(4, littleEndian);
  const versionMinor = dv.getUint16(6, littleEndian);
  if (versionMajor !== 2) {
    throw new CaptureError(`unsupported pcap version ${versionMajor}.${versionMinor} (expected 2.4)`, `${file}: byte 4`);
  }
  const snaplen = dv.getUint32(16, littleEndian);
  // The link-type field's low 16 bits are the link type; the upper bits may carry FCS information (draft §4).
  const linktype = dv.getUint32(20, littleEndian) & 0xffff;
  requireEthernet(linktype, `${file}: byte 20`);
  return { littleEndian, nanosecond: magic === PCAP_MAGIC_NS, versionMajor, versionMinor, snaplen, linktype };
}

/** Yields the records of a classic pcap file, throwing CaptureError at the first malformed one. */
export function* iteratePcap(bytes: Uint8Array, file: string): Generator<CaptureRecord, void, undefined> {
  const h = readPcapHeader(bytes, file);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const limit = h.snaplen > 0 ? h.snaplen : MAX_SNAPLEN;
  const unit = h.nanosecond ? 1n : 1000n;
  const fracMax = h.nanosecond ? 1_000_000_000 : 1_000_000;
  let off = FILE_HEADER_LEN;
  let index = 0;
  while (off < bytes.length) {
    index++;
    const where = `${file}: packet ${index}`;
    if (bytes.length - off < RECORD_HEADER_LEN) {
      throw new CaptureError(
        `truncated record header at byte ${off}: ${bytes.length - off} of 16 bytes`,
        where,
      );
    }
    const sec = dv.getUint32(off, h.littleEndian);
    const frac = dv.getUint32(off + 4, h.littleEndian);
    const caplen = dv.getUint32(off + 8, h.littleEndian);
    const origLen = dv.getUint32(off + 12, h.littleEndian);
    if (frac >= fracMax) {
      throw new CaptureError(`bad timestamp: fraction ${frac} >= ${fracMax}`, where);
    }
    if (caplen > limit) {
      throw new CaptureError(
        h.snaplen > 0
          ? `captured length ${caplen} exceeds the file's snaplen ${h.snaplen}`
          : `captured length ${caplen} is absurd (more than ${MAX_SNAPLEN})`,
        where,
      );
    }
    if (origLen < caplen) {
      throw new CaptureError(`original length ${origLen} is smaller than captured length ${caplen}`, where);
    }
    const dataOff = off + RECORD_HEADER_LEN;
    if (bytes.length - dataOff < caplen) {
      throw new CaptureError(
        `truncated record at byte ${off}: ${bytes.length - dataOff} of ${caplen} captured bytes`,
        where,
      );
    }
    yield {
      index,
      ifIndex: 0,
      ifName: undefined,
      linktype: h.linktype,
      tsNs: BigInt(sec) * 1_000_000_000n + BigInt(frac) * unit,
      data: bytes.subarray(dataOff, dataOff + caplen),
      origLen,
    };
    off = dataOff + caplen;
  }
}

export function readPcap(bytes: Uint8Array, file: string): Capture {
  const h = readPcapHeader(bytes, file);
  const records = [...iteratePcap(bytes, file)];
  return { format: "pcap", interfaces: [{ name: undefined, linktype: h.linktype, snaplen: h.snaplen }], records };
}

export interface PcapWriteOptions {
  /** Write the a1b23c4d magic and nanosecond fractions. Default false (microseconds, truncated). */
  nanosecond?: boolean;
  /** Byte order of every header field. Default little-endian, as x86 libpcap writes. */
  bigEndian?: boolean;
  snaplen?: number;
  linktype?: number;
}

/** Writes a classic pcap file. Packets longer than snaplen are cut, keeping origLen. */
export function writePcap(packets: Iterable<PacketToWrite>, opts: PcapWriteOptions = {}): Uint8Array {
  const le = !opts.bigEndian;
  const snaplen = opts.snaplen ?? MAX_SNAPLEN;
  const list = [...packets];
  let total = FILE_HEADER_LEN;
  for (const p of list) total += RECORD_HEADER_LEN + Math.min(p.data.length, snaplen);
  const out = new Uint8Array(total);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, opts.nanosecond ? PCAP_MAGIC_NS : PCAP_MAGIC_US, le);
  dv.setUint16(4, 2, le);
  dv.setUint16(6, 4, le);
  dv.setInt32(8, 0, le); // thiszone: always UTC
  dv.setUint32(12, 0, le); // sigfigs: always 0
  dv.setUint32(16, snaplen, le);
  dv.setUint32(20, opts.linktype ?? LINKTYPE_ETHERNET, le);
  let off = FILE_HEADER_LEN;
  for (const p of list) {
    const caplen = Math.min(p.data.length, snaplen);
    const sec = p.tsNs / 1_000_000_000n;
    const ns = p.tsNs % 1_000_000_000n;
    if (p.tsNs < 0n || sec > 0xffffffffn) throw new RangeError(`timestamp ${p.tsNs} ns does not fit a pcap record`);
    dv.setUint32(off, Number(sec), le);
    dv.setUint32(off + 4, Number(opts.nanosecond ? ns : ns / 1000n), le);
    dv.setUint32(off + 8, caplen, le);
    dv.setUint32(off + 12, Math.max(p.origLen ?? p.data.length, caplen), le);
    out.set(p.data.subarray(0, caplen), off + RECORD_HEADER_LEN);
    off += RECORD_HEADER_LEN + caplen;
  }
  return out;
}
