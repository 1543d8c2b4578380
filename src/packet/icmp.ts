// ICMP (RFC 792) as a reusable view. Field table: type 0, code 1, checksum 2..4, then the "rest of header"
// 4..8: echo id 4..6 and sequence 6..8; for errors unused (or next-hop MTU 6..8 for FRAG_NEEDED); then data.
// Errors (icmp_is_err) carry the offending IP header + at least 8 bytes; `bindQuoted` puts an Ipv4View on it.
import { csumFinish, csumPartial, get16, get32, set16, set32 } from "./checksum.js";
import { icmpIsError } from "./constants.js";
import { truncated } from "./error.js";
import type { Ipv4View } from "./ipv4.js";

export const ICMP_FIELD = { TYPE: 0, CODE: 1, CHECK: 2, ID: 4, SEQ: 6, MTU: 6, DATA: 8 } as const;
export const ICMP_HLEN = 8;

const EMPTY = new Uint8Array(0);

export class IcmpView {
  buf: Uint8Array = EMPTY;
  off = 0;
  /** The whole ICMP message (header + data), the IP payload. */
  len = 0;
  payloadOff = 0;
  payloadLen = 0;

  bind(buf: Uint8Array, off = 0, len = buf.length - off): this {
    if (len < ICMP_HLEN || off + len > buf.length) throw truncated("icmp", off, ICMP_HLEN, Math.min(len, buf.length - off));
    this.buf = buf;
    this.off = off;
    this.len = len;
    this.payloadOff = off + ICMP_HLEN;
    this.payloadLen = len - ICMP_HLEN;
    return this;
  }

  get type(): number {
    return this.buf[this.off]!;
  }
  set type(v: number) {
    this.buf[this.off] = v;
  }
  get code(): number {
    return this.buf[this.off + 1]!;
  }
  set code(v: number) {
    this.buf[this.off + 1] = v;
  }
  get checksum(): number {
    return get16(this.buf, this.off + 2);
  }
  set checksum(v: number) {
    set16(this.buf, this.off + 2, v);
  }
  get id(): number {
    return get16(this.buf, this.off + 4);
  }
  set id(v: number) {
    set16(this.buf, this.off + 4, v);
  }
  get seq(): number {
    return get16(this.buf, this.off + 6);
  }
  set seq(v: number) {
    set16(this.buf, this.off + 6, v);
  }
  /** Bytes 4..8 as one number (unused / pointer / gateway / MTU for non-echo types). */
  get rest(): number {
    return get32(this.buf, this.off + 4);
  }
  set rest(v: number) {
    set32(this.buf, this.off + 4, v);
  }
  get isError(): boolean {
    return icmpIsError(this.buf[this.off]!);
  }
  /** Bind `ip` on the quoted offending header (errors only). Throws PacketError if it is short or malformed. */
  bindQuoted(ip: Ipv4View): Ipv4View {
    return ip.bindQuoted(this.buf, this.payloadOff, this.payloadLen);
  }
  /** ICMP has no pseudo-header: the checksum covers the message only. */
  computeChecksum(): number {
    const field = get16(this.buf, this.off + 2);
    return csumFinish(csumPartial(this.buf, this.off, this.len) + (~field & 0xffff));
  }
  fillChecksum(): void {
    set16(this.buf, this.off + 2, this.computeChecksum());
  }
  verifyChecksum(): boolean {
    return this.computeChecksum() === this.checksum;
  }
}
