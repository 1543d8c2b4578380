// VXLAN header (RFC 7348) as a reusable view. Field table: flags 0 (I = 0x08: VNI valid), reserved 1..4,
// VNI 4..7 (24 bits), reserved 7. The payload is an inner Ethernet frame. Carried over UDP port 4789.
import { get32, set32 } from "./checksum.js";
import { VXLAN_FLAG_I, VXLAN_HLEN } from "./constants.js";
import { truncated } from "./error.js";

export const VXLAN_FIELD = { FLAGS: 0, VNI: 4 } as const;

const EMPTY = new Uint8Array(0);

export class VxlanView {
  buf: Uint8Array = EMPTY;
  off = 0;
  len = 0;
  payloadOff = 0;
  payloadLen = 0;

  bind(buf: Uint8Array, off = 0, len = buf.length - off): this {
    if (len < VXLAN_HLEN || off + len > buf.length) throw truncated("vxlan", off, VXLAN_HLEN, Math.min(len, buf.length - off));
    this.buf = buf;
    this.off = off;
    this.len = len;
    this.payloadOff = off + VXLAN_HLEN;
    this.payloadLen = len - VXLAN_HLEN;
    return this;
  }

  get flags(): number {
    return this.buf[this.off]!;
  }
  set flags(v: number) {
    this.buf[this.off] = v;
  }
  /** The I flag: the Linux driver drops frames without it (vxlan_rcv: "invalid vxlan flags"). */
  get vniValid(): boolean {
    return (this.buf[this.off]! & VXLAN_FLAG_I) !== 0;
  }
  get vni(): number {
    return get32(this.buf, this.off + 4) >>> 8;
  }
  set vni(v: number) {
    set32(this.buf, this.off + 4, (((v & 0xffffff) << 8) | this.buf[this.off + 7]!) >>> 0);
  }
}

/** Write a VXLAN header (I flag set, reserved fields zero); returns the offset of the inner frame. */
export function writeVxlanHeader(buf: Uint8Array, off: number, vni: number): number {
  set32(buf, off, VXLAN_FLAG_I << 24);
  set32(buf, off + 4, ((vni & 0xffffff) << 8) >>> 0);
  return off + VXLAN_HLEN;
}
