// Ethernet II with up to two VLAN tags (802.1Q, or 802.1ad outer + 802.1Q inner), as a reusable view.
// Field table (byte ranges from the frame start):
//   dst 0..6, src 6..12, then per tag: tpid 12..14, tci 14..16 (pcp 3 bits, dei 1, vid 12); ethertype after the tags.
import { getMac48, setMac48 } from "./addr.js";
import { get16, set16 } from "./checksum.js";
import { ETH_HLEN, ETH_P_8021AD, ETH_P_8021Q, VLAN_HLEN, VLAN_VID_MASK } from "./constants.js";
import { malformed, truncated } from "./error.js";

export const ETH_FIELD = { DST: 0, SRC: 6, TYPE: 12, TAG_TCI: 14 } as const;
/** The kernel accepts deeper stacks; two tags (QinQ) is what any dataplane here produces. */
export const ETH_MAX_TAGS = 2;

const EMPTY = new Uint8Array(0);

export class EthernetView {
  buf: Uint8Array = EMPTY;
  /** Absolute offset of the frame in `buf`. */
  off = 0;
  /** Bytes of the frame (header + payload) bound. */
  len = 0;
  /** Number of VLAN tags, 0..2. */
  tags = 0;
  /** Absolute offset of the L3 payload (after any tags). */
  payloadOff = 0;

  /** Validate once: a full header, each tag complete, at most two tags. Throws PacketError. */
  bind(buf: Uint8Array, off = 0, len = buf.length - off): this {
    if (len < ETH_HLEN || off + len > buf.length) throw truncated("eth", off, ETH_HLEN, Math.min(len, buf.length - off));
    let typeOff = off + ETH_FIELD.TYPE;
    let type = (buf[typeOff]! << 8) | buf[typeOff + 1]!;
    let tags = 0;
    while (type === ETH_P_8021Q || type === ETH_P_8021AD) {
      if (tags === ETH_MAX_TAGS) throw malformed("vlan", typeOff, `more than ${ETH_MAX_TAGS} VLAN tags`);
      typeOff += VLAN_HLEN;
      if (typeOff + 2 > off + len) throw truncated("vlan", typeOff - VLAN_HLEN, VLAN_HLEN + 2, off + len - typeOff + VLAN_HLEN);
      type = (buf[typeOff]! << 8) | buf[typeOff + 1]!;
      tags++;
    }
    this.buf = buf;
    this.off = off;
    this.len = len;
    this.tags = tags;
    this.payloadOff = typeOff + 2;
    return this;
  }

  get headerLen(): number {
    return this.payloadOff - this.off;
  }
  get payloadLen(): number {
    return this.off + this.len - this.payloadOff;
  }
  /** Destination MAC as a 48-bit number. */
  get dst(): number {
    return getMac48(this.buf, this.off);
  }
  set dst(mac: number) {
    setMac48(this.buf, this.off, mac);
  }
  get src(): number {
    return getMac48(this.buf, this.off + ETH_FIELD.SRC);
  }
  set src(mac: number) {
    setMac48(this.buf, this.off + ETH_FIELD.SRC, mac);
  }
  /** The ethertype after all tags (ETH_P_IP, ETH_P_ARP, ETH_P_IPV6, ...). */
  get etherType(): number {
    return get16(this.buf, this.payloadOff - 2);
  }
  set etherType(v: number) {
    set16(this.buf, this.payloadOff - 2, v);
  }
  /** TPID of tag `i` (0 = outermost); only for i < tags. */
  tagTpid(i = 0): number {
    return get16(this.buf, this.off + ETH_FIELD.TYPE + i * VLAN_HLEN);
  }
  /** TCI of tag `i` (pcp << 13 | dei << 12 | vid). */
  tagTci(i = 0): number {
    return get16(this.buf, this.off + ETH_FIELD.TAG_TCI + i * VLAN_HLEN);
  }
  setTagTci(i: number, tci: number): void {
    set16(this.buf, this.off + ETH_FIELD.TAG_TCI + i * VLAN_HLEN, tci);
  }
  /** VLAN id of the outermost tag, or -1 when untagged. */
  get vlanId(): number {
    return this.tags === 0 ? -1 : this.tagTci(0) & VLAN_VID_MASK;
  }
}

/** Write an untagged Ethernet header; returns the offset after it. */
export function writeEthernet(buf: Uint8Array, off: number, dst: number, src: number, type: number): number {
  setMac48(buf, off, dst);
  setMac48(buf, off + 6, src);
  set16(buf, off + 12, type);
  return off + ETH_HLEN;
}

/** Write a VLAN tag (tpid, tci) at `off` (where an ethertype would be); returns the offset after it. */
export function writeVlanTag(buf: Uint8Array, off: number, tpid: number, tci: number): number {
  set16(buf, off, tpid);
  set16(buf, off + 2, tci);
  return off + VLAN_HLEN;
}
