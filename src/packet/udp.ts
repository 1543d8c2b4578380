// UDP header (RFC 768) as a reusable view. Field table: source 0..2, dest 2..4, len 4..6, check 6..8.
// A zero checksum means "none" (IPv4 only); a computed zero is sent as 0xffff (CSUM_MANGLED_0).
import { get16, l4Checksum, set16, udpChecksumValue } from "./checksum.js";
import { IPPROTO_UDP } from "./constants.js";
import { malformed, truncated } from "./error.js";

export const UDP_FIELD = { SPORT: 0, DPORT: 2, LEN: 4, CHECK: 6 } as const;
export const UDP_HLEN = 8;

const EMPTY = new Uint8Array(0);

export class UdpView {
  buf: Uint8Array = EMPTY;
  off = 0;
  /** The UDP length field (header + payload); bytes past it in the IP payload are ignored, as udp_rcv trims. */
  len = 0;
  payloadOff = 0;
  payloadLen = 0;

  /** Validate as __udp4_lib_rcv(): 8 bytes, 8 <= len field <= bytes present. Throws PacketError. */
  bind(buf: Uint8Array, off = 0, len = buf.length - off, layer = "udp"): this {
    if (len < UDP_HLEN || off + len > buf.length) throw truncated(layer, off, UDP_HLEN, Math.min(len, buf.length - off));
    const ulen = get16(buf, off + 4);
    if (ulen < UDP_HLEN) throw malformed(layer, off, `length field ${ulen} < 8`);
    if (ulen > len) throw truncated(layer, off, ulen, len);
    this.buf = buf;
    this.off = off;
    this.len = ulen;
    this.payloadOff = off + UDP_HLEN;
    this.payloadLen = ulen - UDP_HLEN;
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
  get length(): number {
    return get16(this.buf, this.off + 4);
  }
  set length(v: number) {
    set16(this.buf, this.off + 4, v);
  }
  get checksum(): number {
    return get16(this.buf, this.off + 6);
  }
  set checksum(v: number) {
    set16(this.buf, this.off + 6, v);
  }
  /** The value the checksum field should hold (never 0: a computed 0 is 0xffff). */
  computeChecksum(src: number, dst: number): number {
    return udpChecksumValue(l4Checksum(this.buf, this.off, this.len, 6, src, dst, IPPROTO_UDP));
  }
  fillChecksum(src: number, dst: number): void {
    set16(this.buf, this.off + 6, this.computeChecksum(src, dst));
  }
  /** True when the checksum is absent (0) or correct. */
  verifyChecksum(src: number, dst: number): boolean {
    const c = this.checksum;
    return c === 0 || this.computeChecksum(src, dst) === c;
  }
}

/** Write a UDP header with the checksum field zero; returns the offset after it. */
export function writeUdpHeader(buf: Uint8Array, off: number, sport: number, dport: number, length: number): number {
  set16(buf, off, sport);
  set16(buf, off + 2, dport);
  set16(buf, off + 4, length);
  set16(buf, off + 6, 0);
  return off + UDP_HLEN;
}
