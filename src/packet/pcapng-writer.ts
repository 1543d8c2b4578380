// pcapng writer (split from pcapng.ts, which reads): one section whose SHB names tcbox in shb_userappl, one IDB
// per interface (if_name like `node-1/eth0`, if_tsresol 9: tcbox's clock ticks in nanoseconds), then Enhanced
// Packet Blocks with opt_comment and epb_flags (direction) when given. Blocks stream to a sink as they are made.
import { type Direction, LINKTYPE_ETHERNET, MAX_SNAPLEN, type PacketToWrite } from "./pcap.js";
import {
  BT_EPB,
  BT_IDB,
  BT_SHB,
  BYTE_ORDER_MAGIC,
  EPB_FLAGS,
  IF_DESCRIPTION,
  IF_NAME,
  IF_TSRESOL,
  OPT_COMMENT,
  SHB_USERAPPL,
} from "./pcapng.js";

const utf8enc = new TextEncoder();

export interface PcapngInterfaceSpec {
  /** if_name, e.g. `node-1/eth0`. */
  name: string;
  description?: string;
  linktype?: number;
  snaplen?: number;
}

export interface PcapngPacket extends PacketToWrite {
  /** The id addInterface() returned. */
  ifIndex: number;
  comment?: string;
  direction?: Direction;
}

export interface PcapngWriterOptions {
  /** shb_userappl; default "tcbox". */
  userappl?: string;
  /** Write the section in big-endian order (tests; real writers use the host's order). */
  bigEndian?: boolean;
  /** Receives each block as it is made (e.g. to append to a file); finish() then returns an empty array. */
  sink?: (block: Uint8Array) => void;
}

/**
 * Streaming pcapng writer: one section, IDBs with if_tsresol 9 (nanosecond timestamps, as tcbox's clock ticks in
 * ns), EPBs with opt_comment and epb_flags (direction) when given. Blocks are emitted as they are written.
 */
export class PcapngWriter {
  private readonly le: boolean;
  private readonly chunks: Uint8Array[] = [];
  private readonly snaplens: number[] = [];
  private readonly sink: ((b: Uint8Array) => void) | undefined;
  private finished = false;

  constructor(opts: PcapngWriterOptions = {}) {
    this.le = !opts.bigEndian;
    this.sink = opts.sink;
    const body = new Uint8Array(16);
    const dv = new DataView(body.buffer);
    dv.setUint32(0, BYTE_ORDER_MAGIC, this.le);
    dv.setUint16(4, 1, this.le);
    dv.setUint16(6, 0, this.le);
    dv.setBigInt64(8, -1n, this.le); // section length unknown: we stream
    this.emit(BT_SHB, body, [[SHB_USERAPPL, utf8enc.encode(opts.userappl ?? "tcbox")]]);
  }

  /** Adds an Interface Description Block; returns its interface id (0, 1, ...). */
  addInterface(spec: PcapngInterfaceSpec): number {
    const body = new Uint8Array(8);
    const dv = new DataView(body.buffer);
    const snaplen = spec.snaplen ?? MAX_SNAPLEN;
    dv.setUint16(0, spec.linktype ?? LINKTYPE_ETHERNET, this.le);
    dv.setUint32(4, snaplen, this.le);
    const opts: [number, Uint8Array][] = [[IF_NAME, utf8enc.encode(spec.name)]];
    if (spec.description !== undefined) opts.push([IF_DESCRIPTION, utf8enc.encode(spec.description)]);
    opts.push([IF_TSRESOL, Uint8Array.of(9)]);
    this.emit(BT_IDB, body, opts);
    this.snaplens.push(snaplen);
    return this.snaplens.length - 1;
  }

  writePacket(p: PcapngPacket): void {
    const snaplen = this.snaplens[p.ifIndex];
    if (snaplen === undefined) throw new RangeError(`pcapng writer: no interface ${p.ifIndex}`);
    if (p.tsNs < 0n || p.tsNs > 0xffffffffffffffffn) throw new RangeError(`timestamp ${p.tsNs} ns out of range`);
    const caplen = Math.min(p.data.length, snaplen);
    const body = new Uint8Array(20 + ((caplen + 3) & ~3));
    const dv = new DataView(body.buffer);
    dv.setUint32(0, p.ifIndex, this.le);
    dv.setUint32(4, Number(p.tsNs >> 32n), this.le);
    dv.setUint32(8, Number(p.tsNs & 0xffffffffn), this.le);
    dv.setUint32(12, caplen, this.le);
    dv.setUint32(16, Math.max(p.origLen ?? p.data.length, caplen), this.le);
    body.set(p.data.subarray(0, caplen), 20);
    const opts: [number, Uint8Array][] = [];
    if (p.comment !== undefined) opts.push([OPT_COMMENT, utf8enc.encode(p.comment)]);
    if (p.direction !== undefined) {
      const flags = new Uint8Array(4);
      new DataView(flags.buffer).setUint32(0, p.direction === "inbound" ? 1 : 2, this.le);
      opts.push([EPB_FLAGS, flags]);
    }
    this.emit(BT_EPB, body, opts);
  }

  /** Ends the file. Returns the whole file, or an empty array when blocks went to a sink. */
  finish(): Uint8Array {
    this.finished = true;
    let n = 0;
    for (const c of this.chunks) n += c.length;
    const out = new Uint8Array(n);
    n = 0;
    for (const c of this.chunks) {
      out.set(c, n);
      n += c.length;
    }
    return out;
  }

  private emit(type: number, body: Uint8Array, opts: [number, Uint8Array][]): void {
    if (this.finished) throw new Error("pcapng writer: write after finish()");
    let optLen = 0;
    for (const [, v] of opts) optLen += 4 + ((v.length + 3) & ~3);
    if (opts.length) optLen += 4; // opt_endofopt
    const total = 8 + body.length + optLen + 4;
    const out = new Uint8Array(total);
    const dv = new DataView(out.buffer);
    dv.setUint32(0, type, this.le);
    dv.setUint32(4, total, this.le);
    out.set(body, 8);
    let at = 8 + body.length;
    for (const [code, v] of opts) {
      dv.setUint16(at, code, this.le);
      dv.setUint16(at + 2, v.length, this.le);
      out.set(v, at + 4);
      at += 4 + ((v.length + 3) & ~3);
    }
    dv.setUint32(total - 4, total, this.le);
    if (this.sink) this.sink(out);
    else this.chunks.push(out);
  }
}

/** Writes a whole pcapng file at once: one IDB per interface, then the packets in order. */
export function writePcapng(
  interfaces: PcapngInterfaceSpec[],
  packets: Iterable<PcapngPacket>,
  opts: PcapngWriterOptions = {},
): Uint8Array {
  const w = new PcapngWriter(opts);
  for (const i of interfaces) w.addInterface(i);
  for (const p of packets) w.writePacket(p);
  return w.finish();
}
