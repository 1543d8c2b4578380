// IPv4 header (RFC 791) as a reusable view. Field table (byte ranges from the header start):
//   version/ihl 0, tos 1, tot_len 2..4, id 4..6, frag_off 6..8 (CE DF MF + 13-bit offset in 8-byte units),
//   ttl 8, protocol 9, check 10..12, saddr 12..16, daddr 16..20, options 20..ihl*4.
// Setters keep the header checksum valid incrementally (RFC 1624), as the kernel's csum_replace2/4 do, so a
// rewrite never needs a full recompute; `fillChecksum()` recomputes from scratch for freshly built headers.
import { csumReplace16, csumReplace32, get16, get32, ipv4HeaderChecksum, set16, set32 } from "./checksum.js";
import { IP_CE, IP_DF, IP_MF, IP_OFFSET } from "./constants.js";
import { malformed, truncated } from "./error.js";

export const IPV4_FIELD = { VER_IHL: 0, TOS: 1, TOT_LEN: 2, ID: 4, FRAG_OFF: 6, TTL: 8, PROTOCOL: 9, CHECK: 10, SADDR: 12, DADDR: 16, OPTIONS: 20 } as const;
export const IPV4_MIN_HLEN = 20;

const EMPTY = new Uint8Array(0);

export class Ipv4View {
  buf: Uint8Array = EMPTY;
  off = 0;
  /** Header length in bytes (ihl * 4). */
  headerLen = 20;
  /** Absolute offset of the L4 payload. */
  payloadOff = 0;
  /** L4 bytes present: tot_len - ihl*4 (for a quoted header, only what the ICMP error carried). */
  payloadLen = 0;

  /**
   * Validate as ip_rcv_core() does: version 4, ihl >= 5, header within the buffer, ihl*4 <= tot_len <= bytes
   * present. Bytes past tot_len (Ethernet padding) are allowed and ignored. Throws PacketError.
   */
  bind(buf: Uint8Array, off = 0, len = buf.length - off): this {
    return this.bindAs("ipv4", buf, off, len, false);
  }

  /**
   * Bind the IPv4 header quoted inside an ICMP error: tot_len describes the original datagram, of which only the
   * header and at least 8 bytes are present (icmp_unreach() requires ihl*4 + 8).
   */
  bindQuoted(buf: Uint8Array, off: number, len: number, layer = "icmp inner ipv4"): this {
    return this.bindAs(layer, buf, off, len, true);
  }

  private bindAs(layer: string, buf: Uint8Array, off: number, len: number, quoted: boolean): this {
    if (len < IPV4_MIN_HLEN || off + len > buf.length) throw truncated(layer, off, IPV4_MIN_HLEN, Math.min(len, buf.length - off));
    const vihl = buf[off]!;
    if (vihl >>> 4 !== 4) throw malformed(layer, off, `version ${vihl >>> 4}, expected 4`);
    const hl = (vihl & 15) * 4;
    if (hl < IPV4_MIN_HLEN) throw malformed(layer, off, `ihl ${vihl & 15} < 5`);
    if (hl > len) throw truncated(layer, off, hl, len);
    const tot = get16(buf, off + 2);
    if (tot < hl) throw malformed(layer, off, `tot_len ${tot} < header length ${hl}`);
    let l4 = tot - hl;
    if (quoted) {
      if (len < hl + 8) throw truncated(layer, off, hl + 8, len);
      if (l4 > len - hl) l4 = len - hl;
    } else if (tot > len) {
      throw truncated(layer, off, tot, len);
    }
    this.buf = buf;
    this.off = off;
    this.headerLen = hl;
    this.payloadOff = off + hl;
    this.payloadLen = l4;
    return this;
  }

  get version(): number {
    return this.buf[this.off]! >>> 4;
  }
  get ihl(): number {
    return this.buf[this.off]! & 15;
  }
  get tos(): number {
    return this.buf[this.off + 1]!;
  }
  set tos(v: number) {
    this.setWord(0, (this.buf[this.off]! << 8) | (v & 255));
  }
  get totalLength(): number {
    return get16(this.buf, this.off + 2);
  }
  set totalLength(v: number) {
    this.setWord(2, v);
  }
  get ident(): number {
    return get16(this.buf, this.off + 4);
  }
  set ident(v: number) {
    this.setWord(4, v);
  }
  /** The whole frag_off field (IP_CE | IP_DF | IP_MF | offset). */
  get fragOff(): number {
    return get16(this.buf, this.off + 6);
  }
  set fragOff(v: number) {
    this.setWord(6, v);
  }
  get ce(): boolean {
    return (this.fragOff & IP_CE) !== 0;
  }
  get df(): boolean {
    return (this.fragOff & IP_DF) !== 0;
  }
  set df(on: boolean) {
    this.fragOff = on ? this.fragOff | IP_DF : this.fragOff & ~IP_DF;
  }
  get mf(): boolean {
    return (this.fragOff & IP_MF) !== 0;
  }
  /** Fragment offset in 8-byte units. */
  get fragOffset(): number {
    return this.fragOff & IP_OFFSET;
  }
  /** ip_is_fragment(): MF set or a non-zero offset. */
  get isFragment(): boolean {
    return (this.fragOff & (IP_MF | IP_OFFSET)) !== 0;
  }
  get ttl(): number {
    return this.buf[this.off + 8]!;
  }
  /** Like ip_decrease_ttl(): the TTL/protocol word changes, the checksum follows. */
  set ttl(v: number) {
    this.setWord(8, ((v & 255) << 8) | this.buf[this.off + 9]!);
  }
  get protocol(): number {
    return this.buf[this.off + 9]!;
  }
  set protocol(v: number) {
    this.setWord(8, (this.buf[this.off + 8]! << 8) | (v & 255));
  }
  get checksum(): number {
    return get16(this.buf, this.off + 10);
  }
  set checksum(v: number) {
    set16(this.buf, this.off + 10, v);
  }
  /** Source address as an unsigned 32-bit number. */
  get src(): number {
    return get32(this.buf, this.off + 12);
  }
  set src(v: number) {
    const o = this.off;
    set16(this.buf, o + 10, csumReplace32(get16(this.buf, o + 10), get32(this.buf, o + 12), v));
    set32(this.buf, o + 12, v);
  }
  get dst(): number {
    return get32(this.buf, this.off + 16);
  }
  set dst(v: number) {
    const o = this.off;
    set16(this.buf, o + 10, csumReplace32(get16(this.buf, o + 10), get32(this.buf, o + 16), v));
    set32(this.buf, o + 16, v);
  }
  get optionsLen(): number {
    return this.headerLen - IPV4_MIN_HLEN;
  }
  /** Recompute the header checksum from scratch (for headers written field by field). */
  fillChecksum(): void {
    set16(this.buf, this.off + 10, ipv4HeaderChecksum(this.buf, this.off, this.headerLen));
  }
  verifyChecksum(): boolean {
    return ipv4HeaderChecksum(this.buf, this.off, this.headerLen) === this.checksum;
  }

  /** Write the 16-bit word at header offset `at` and fix the checksum incrementally. */
  private setWord(at: number, v: number): void {
    const o = this.off;
    const old = get16(this.buf, o + at);
    set16(this.buf, o + 10, csumReplace16(get16(this.buf, o + 10), old, v & 0xffff));
    set16(this.buf, o + at, v);
  }
}

export interface Ipv4HeaderFields {
  tos: number;
  totalLength: number;
  id: number;
  /** Whole frag_off field (IP_DF etc. | offset). */
  fragOff: number;
  ttl: number;
  protocol: number;
  src: number;
  dst: number;
  /** Options, a multiple of 4 bytes (may be undefined). */
  options?: Uint8Array | undefined;
}

/** Write an IPv4 header with a correct checksum; returns the offset after it (the L4 start). */
export function writeIpv4Header(buf: Uint8Array, off: number, h: Ipv4HeaderFields): number {
  const options = h.options;
  if (options) buf.set(options, off + IPV4_MIN_HLEN);
  return writeIpv4HeaderRaw(buf, off, options ? options.length : 0, h.tos, h.totalLength, h.id, h.fragOff, h.ttl, h.protocol, h.src, h.dst);
}

/**
 * The same with positional fields, for writers that must not allocate. `optLen` bytes of options must already
 * be at off + 20 (they are covered by the checksum).
 */
export function writeIpv4HeaderRaw(
  buf: Uint8Array, off: number, optLen: number, tos: number, totalLength: number, id: number, fragOff: number,
  ttl: number, protocol: number, src: number, dst: number,
): number {
  const hl = IPV4_MIN_HLEN + optLen;
  buf[off] = 0x40 | (hl >>> 2);
  buf[off + 1] = tos;
  set16(buf, off + 2, totalLength);
  set16(buf, off + 4, id);
  set16(buf, off + 6, fragOff);
  buf[off + 8] = ttl;
  buf[off + 9] = protocol;
  set16(buf, off + 10, 0);
  set32(buf, off + 12, src);
  set32(buf, off + 16, dst);
  set16(buf, off + 10, ipv4HeaderChecksum(buf, off, hl));
  return off + hl;
}
