// TCP header (RFC 9293) as a reusable view. Field table (byte ranges from the header start):
//   source 0..2, dest 2..4, seq 4..8, ack_seq 8..12, doff (high nibble) 12, flags 13 (FIN=1 SYN=2 RST=4 PSH=8
//   ACK=16 URG=32 ECE=64 CWR=128), window 14..16, check 16..18, urg_ptr 18..20, options 20..doff*4.
// Setters are plain byte writes: the TCP checksum depends on the IP pseudo-header, so rewrites that must keep it
// valid go through rewrite.ts (l4CsumReplace) or `fillChecksum(src, dst)`.
import { get16, get32, l4Checksum, set16, set32 } from "./checksum.js";
import { IPPROTO_TCP, TCPOPT_EOL, TCPOPT_NOP } from "./constants.js";
import { malformed, truncated } from "./error.js";

export const TCP_FIELD = { SPORT: 0, DPORT: 2, SEQ: 4, ACK: 8, DOFF: 12, FLAGS: 13, WINDOW: 14, CHECK: 16, URG_PTR: 18, OPTIONS: 20 } as const;
export const TCP_MIN_HLEN = 20;

const EMPTY = new Uint8Array(0);

export class TcpView {
  buf: Uint8Array = EMPTY;
  off = 0;
  /** Segment length bound (header + payload), i.e. the IP payload length. */
  len = 0;
  /** doff * 4. */
  headerLen = 20;
  payloadOff = 0;
  payloadLen = 0;

  /** Validate as tcp_v4_rcv() does: 20 bytes present, 5 <= doff, doff*4 <= segment length. Throws PacketError. */
  bind(buf: Uint8Array, off = 0, len = buf.length - off): this {
    if (len < TCP_MIN_HLEN || off + len > buf.length) throw truncated("tcp", off, TCP_MIN_HLEN, Math.min(len, buf.length - off));
    const doff = buf[off + 12]! >>> 4;
    if (doff < 5) throw malformed("tcp", off, `data offset ${doff} < 5`);
    const hl = doff * 4;
    if (hl > len) throw malformed("tcp", off, `data offset ${doff} (${hl} bytes) beyond segment of ${len}`);
    this.buf = buf;
    this.off = off;
    this.len = len;
    this.headerLen = hl;
    this.payloadOff = off + hl;
    this.payloadLen = len - hl;
    return this;
  }

  get sport(): number {
    return get16(this.buf, this.off);
  }
  set sport(v: number) {
    set16(this.buf, this.off, v);
  }
  get dport(): number {
    return get16(this.buf, this.off + 2);
  }
  set dport(v: number) {
    set16(this.buf, this.off + 2, v);
  }
  get seq(): number {
    return get32(this.buf, this.off + 4);
  }
  set seq(v: number) {
    set32(this.buf, this.off + 4, v);
  }
  get ack(): number {
    return get32(this.buf, this.off + 8);
  }
  set ack(v: number) {
    set32(this.buf, this.off + 8, v);
  }
  /** Header length in 32-bit words. Setting it does not move options or payload. */
  get dataOffset(): number {
    return this.buf[this.off + 12]! >>> 4;
  }
  set dataOffset(words: number) {
    this.buf[this.off + 12] = ((words & 15) << 4) | (this.buf[this.off + 12]! & 15);
  }
  /** The 8-bit flag byte (TCPHDR_*). */
  get flags(): number {
    return this.buf[this.off + 13]!;
  }
  set flags(v: number) {
    this.buf[this.off + 13] = v;
  }
  hasFlags(mask: number): boolean {
    return (this.buf[this.off + 13]! & mask) === mask;
  }
  get window(): number {
    return get16(this.buf, this.off + 14);
  }
  set window(v: number) {
    set16(this.buf, this.off + 14, v);
  }
  get checksum(): number {
    return get16(this.buf, this.off + 16);
  }
  set checksum(v: number) {
    set16(this.buf, this.off + 16, v);
  }
  get urgent(): number {
    return get16(this.buf, this.off + 18);
  }
  set urgent(v: number) {
    set16(this.buf, this.off + 18, v);
  }
  get optionsOff(): number {
    return this.off + TCP_MIN_HLEN;
  }
  get optionsLen(): number {
    return this.headerLen - TCP_MIN_HLEN;
  }
  /**
   * Absolute offset of option `kind` (its kind byte), or -1. Walks like tcp_parse_options(): NOP is one byte,
   * EOL ends, a length < 2 or past the header ends the walk.
   */
  findOption(kind: number): number {
    const buf = this.buf;
    let p = this.off + TCP_MIN_HLEN;
    const end = this.off + this.headerLen;
    while (p < end) {
      const k = buf[p]!;
      if (k === TCPOPT_EOL) return -1;
      if (k === TCPOPT_NOP) {
        p++;
        continue;
      }
      if (p + 1 >= end) return -1;
      const l = buf[p + 1]!;
      if (l < 2 || p + l > end) return -1;
      if (k === kind) return p;
      p += l;
    }
    return -1;
  }
  /** Checksum over the bound segment with the IPv4 pseudo-header (addresses as numbers). */
  computeChecksum(src: number, dst: number): number {
    return l4Checksum(this.buf, this.off, this.len, 16, src, dst, IPPROTO_TCP);
  }
  fillChecksum(src: number, dst: number): void {
    set16(this.buf, this.off + 16, this.computeChecksum(src, dst));
  }
  verifyChecksum(src: number, dst: number): boolean {
    return this.computeChecksum(src, dst) === this.checksum;
  }
}

export interface TcpHeaderFields {
  sport: number;
  dport: number;
  seq: number;
  ack: number;
  flags: number;
  window: number;
  urgent: number;
  /** Encoded options, padded to a multiple of 4 (may be undefined). */
  options?: Uint8Array | undefined;
}

/** Write a TCP header with the checksum field zero; returns the offset after it (the payload start). */
export function writeTcpHeader(buf: Uint8Array, off: number, h: TcpHeaderFields): number {
  return writeTcpHeaderRaw(buf, off, h.sport, h.dport, h.seq, h.ack, h.flags, h.window, h.urgent, h.options);
}

/** The same with positional fields, for writers that must not allocate. */
export function writeTcpHeaderRaw(
  buf: Uint8Array, off: number, sport: number, dport: number, seq: number, ack: number, flags: number,
  window: number, urgent: number, options: Uint8Array | undefined,
): number {
  const hl = TCP_MIN_HLEN + (options ? options.length : 0);
  set16(buf, off, sport);
  set16(buf, off + 2, dport);
  set32(buf, off + 4, seq);
  set32(buf, off + 8, ack);
  buf[off + 12] = (hl >>> 2) << 4;
  buf[off + 13] = flags;
  set16(buf, off + 14, window);
  set16(buf, off + 16, 0);
  set16(buf, off + 18, urgent);
  if (options) buf.set(options, off + TCP_MIN_HLEN);
  return off + hl;
}
