// ARP (RFC 826) for Ethernet/IPv4 as a reusable view. Field table: htype 0..2, ptype 2..4, hlen 4, plen 5,
// oper 6..8, sha 8..14, spa 14..18, tha 18..24, tpa 24..28. Other hardware/protocol pairs are rejected, as
// arp_rcv() only handles what it can resolve.
import { getMac48, setMac48 } from "./addr.js";
import { get16, get32, set16, set32 } from "./checksum.js";
import { ARPHRD_ETHER, ETH_P_IP } from "./constants.js";
import { malformed, truncated } from "./error.js";

export const ARP_FIELD = { HTYPE: 0, PTYPE: 2, HLEN: 4, PLEN: 5, OPER: 6, SHA: 8, SPA: 14, THA: 18, TPA: 24 } as const;
export const ARP_LEN = 28;

const EMPTY = new Uint8Array(0);

export class ArpView {
  buf: Uint8Array = EMPTY;
  off = 0;

  bind(buf: Uint8Array, off = 0, len = buf.length - off): this {
    if (len < ARP_LEN || off + len > buf.length) throw truncated("arp", off, ARP_LEN, Math.min(len, buf.length - off));
    if (get16(buf, off) !== ARPHRD_ETHER || get16(buf, off + 2) !== ETH_P_IP || buf[off + 4] !== 6 || buf[off + 5] !== 4) {
      throw malformed("arp", off, "not Ethernet/IPv4 (htype 1, ptype 0x0800, hlen 6, plen 4)");
    }
    this.buf = buf;
    this.off = off;
    return this;
  }

  get oper(): number {
    return get16(this.buf, this.off + 6);
  }
  set oper(v: number) {
    set16(this.buf, this.off + 6, v);
  }
  /** Sender hardware address (48-bit number). */
  get sha(): number {
    return getMac48(this.buf, this.off + 8);
  }
  set sha(v: number) {
    setMac48(this.buf, this.off + 8, v);
  }
  get spa(): number {
    return get32(this.buf, this.off + 14);
  }
  set spa(v: number) {
    set32(this.buf, this.off + 14, v);
  }
  get tha(): number {
    return getMac48(this.buf, this.off + 18);
  }
  set tha(v: number) {
    setMac48(this.buf, this.off + 18, v);
  }
  get tpa(): number {
    return get32(this.buf, this.off + 24);
  }
  set tpa(v: number) {
    set32(this.buf, this.off + 24, v);
  }
}

/** Write an Ethernet/IPv4 ARP body; returns the offset after it. */
export function writeArp(buf: Uint8Array, off: number, oper: number, sha: number, spa: number, tha: number, tpa: number): number {
  set16(buf, off, ARPHRD_ETHER);
  set16(buf, off + 2, ETH_P_IP);
  buf[off + 4] = 6;
  buf[off + 5] = 4;
  set16(buf, off + 6, oper);
  setMac48(buf, off + 8, sha);
  set32(buf, off + 14, spa);
  setMac48(buf, off + 18, tha);
  set32(buf, off + 24, tpa);
  return off + ARP_LEN;
}
