// The numeric view of one packet that rule evaluation reads: filled once per packet (from bytes or by hand),
// reused for every packet. No strings, no objects per packet: interfaces are ifindexes, ct state is a bit.
import { CtState } from "./ctstate.js";

/** physdev bits (skb->nf_bridge): the packet came in / goes out through a bridge port, or is bridged. */
export const PhysFlag = { IN: 1, OUT: 2, BRIDGED: 4 } as const;

export class PacketState {
  /** IPv4 source/destination as unsigned 32-bit numbers. */
  src = 0;
  dst = 0;
  proto = 0;
  /** TCP/UDP/SCTP ports; 0 for other protocols. */
  sport = 0;
  dport = 0;
  /** TCP flags byte (FIN 0x01 ... URG 0x20). */
  tcpFlags = 0;
  icmpType = 0;
  icmpCode = 0;
  /** ifindex of the input/output device, 0 when none (OUTPUT has no iif, PREROUTING no oif). */
  iif = 0;
  oif = 0;
  /** skb->mark. */
  mark = 0;
  /** One of CtState (NEW, ESTABLISHED, RELATED, INVALID, UNTRACKED) plus SNAT/DNAT bits of the ct's status. */
  ctState: number = CtState.NEW;
  /** ct->mark (CONNMARK). */
  ctMark = 0;
  /** The original direction tuple of the packet's connection (conntrack --ctorig*). */
  ctOrigSrc = 0;
  ctOrigDst = 0;
  ctOrigSport = 0;
  ctOrigDport = 0;
  /** Bridge ports (ifindex) for physdev, 0 when none. */
  physIn = 0;
  physOut = 0;
  physFlags = 0;
  /** 1 for a non-first fragment (offset != 0), what `-f` matches. */
  frag = 0;
  /** Total length of the IP datagram (counters' bytes). */
  len = 0;

  reset(): void {
    this.src = this.dst = this.proto = this.sport = this.dport = this.tcpFlags = 0;
    this.icmpType = this.icmpCode = this.frag = this.len = 0;
    this.resetMeta();
  }

  /** reset() but for the fields fromIpv4 fills (addresses, protocol, ports, TCP flags, ICMP type and code, frag, len). */
  resetMeta(): void {
    this.iif = this.oif = this.mark = 0;
    this.ctState = CtState.NEW;
    this.ctMark = this.ctOrigSrc = this.ctOrigDst = this.ctOrigSport = this.ctOrigDport = 0;
    this.physIn = this.physOut = this.physFlags = 0;
  }

  /** The original tuple is the packet's own (a NEW connection before NAT). */
  setOrigFromPacket(): void {
    this.ctOrigSrc = this.src;
    this.ctOrigDst = this.dst;
    this.ctOrigSport = this.sport;
    this.ctOrigDport = this.dport;
  }

  /**
   * Fill from an IPv4 datagram at `off` in `buf` (the IP header, not Ethernet). Returns false when it is not
   * IPv4 or is truncated. Ports/flags are read only from the first fragment, as the kernel's matches do.
   */
  fromIpv4(buf: Uint8Array, off: number, end = buf.length): boolean {
    if (end - off < 20 || buf[off]! >> 4 !== 4) return false;
    const ihl = (buf[off]! & 15) * 4;
    if (ihl < 20 || end - off < ihl) return false;
    // Byte reads written out (once per packet; get16/get32 are not always inlined).
    this.len = (buf[off + 2]! << 8) | buf[off + 3]!;
    const proto = buf[off + 9]!;
    this.proto = proto;
    this.src = ((buf[off + 12]! << 24) | (buf[off + 13]! << 16) | (buf[off + 14]! << 8) | buf[off + 15]!) >>> 0;
    this.dst = ((buf[off + 16]! << 24) | (buf[off + 17]! << 16) | (buf[off + 18]! << 8) | buf[off + 19]!) >>> 0;
    const frag = (buf[off + 6]! & 0x1f) !== 0 || buf[off + 7]! !== 0 ? 1 : 0; // fragment offset != 0
    this.frag = frag;
    this.sport = this.dport = this.tcpFlags = this.icmpType = this.icmpCode = 0;
    const l4 = off + ihl;
    if (frag) return true;
    if ((proto === 6 || proto === 17 || proto === 132) && end - l4 >= 4) {
      this.sport = (buf[l4]! << 8) | buf[l4 + 1]!;
      this.dport = (buf[l4 + 2]! << 8) | buf[l4 + 3]!;
      if (proto === 6 && end - l4 >= 14) this.tcpFlags = buf[l4 + 13]! & 0x3f;
    } else if (proto === 1 && end - l4 >= 2) {
      this.icmpType = buf[l4]!;
      this.icmpCode = buf[l4 + 1]!;
    }
    return true;
  }
}
