// The plain parsed form of a packet: nested plain objects for tests, printing and setup code (never the
// per-packet path). Addresses are strings for humans; `emitPacket` turns it back into bytes, computing lengths
// and checksums, so emitPacket(parsePacket(b)) equals b for any valid packet.
import type { TcpOption } from "./tcp-options.js";

export interface ParsedEth {
  dst: string;
  src: string;
  /** Ethertype after any VLAN tags. */
  type: number;
}

export interface ParsedVlan {
  /** ETH_P_8021Q or ETH_P_8021AD. */
  tpid: number;
  pcp: number;
  dei: number;
  vid: number;
}

export interface ParsedArp {
  /** ARPOP_REQUEST / ARPOP_REPLY. */
  op: number;
  sha: string;
  spa: string;
  tha: string;
  tpa: string;
}

export interface ParsedIpv4 {
  tos: number;
  /** tot_len as read; emit computes it. */
  length?: number;
  id: number;
  df: boolean;
  mf: boolean;
  /** The reserved (IP_CE) bit, only present when set. */
  rf?: boolean;
  /** Fragment offset in 8-byte units. */
  fragOffset: number;
  ttl: number;
  protocol: number;
  /** As read; emit computes it. */
  checksum?: number;
  src: string;
  dst: string;
  /** Options as hex ("" or absent when none); emit pads them to 4 bytes with EOL. */
  options?: string;
}

export interface ParsedTcp {
  sport: number;
  dport: number;
  seq: number;
  ack: number;
  /** TCPHDR_* bits: FIN=1 SYN=2 RST=4 PSH=8 ACK=16 URG=32 ECE=64 CWR=128. */
  flags: number;
  window: number;
  /** As read; emit computes it. */
  checksum?: number;
  urgent: number;
  options?: TcpOption[];
}

export interface ParsedUdp {
  sport: number;
  dport: number;
  /** As read; emit computes it. */
  length?: number;
  /** As read. emit writes 0 ("no checksum", RFC 768) when this is 0, else computes it. */
  checksum?: number;
}

/** What an ICMP error quotes of the offending datagram, decoded for humans (emit uses `payload`). */
export interface ParsedQuoted {
  ipv4: ParsedIpv4;
  /** TCP/UDP/SCTP ports from the first 8 bytes. */
  sport?: number;
  dport?: number;
  /** ICMP echo id when the quoted datagram is an ICMP echo. */
  id?: number;
}

export interface ParsedIcmp {
  type: number;
  code: number;
  /** As read; emit computes it. */
  checksum?: number;
  /** Echo (and other request/reply types): identifier and sequence, bytes 4..8. */
  id?: number;
  seq?: number;
  /** Other types: bytes 4..8 as one number (unused, pointer, gateway, next-hop MTU). */
  rest?: number;
  /** Errors only: the quoted datagram decoded (informational; `payload` holds its bytes). */
  quoted?: ParsedQuoted;
}

export interface ParsedVxlan {
  flags: number;
  vni: number;
  inner: ParsedPacket;
}

export interface ParsedPacket {
  eth: ParsedEth;
  /** VLAN tags, outermost first (absent when untagged). */
  vlan?: ParsedVlan[];
  arp?: ParsedArp;
  ipv4?: ParsedIpv4;
  tcp?: ParsedTcp;
  udp?: ParsedUdp;
  icmp?: ParsedIcmp;
  vxlan?: ParsedVxlan;
  /**
   * Bytes after the innermost decoded header: TCP/UDP data, ICMP data (echo data or the quoted datagram), the
   * IP payload of other protocols or fragments, or the L2 payload of other ethertypes. Empty under VXLAN.
   */
  payload: Uint8Array;
  /** Bytes inside the IP payload after the UDP length (udp_rcv trims them), when any. */
  l4Trailer?: Uint8Array;
  /** Bytes after the L3 datagram (Ethernet padding), when any. */
  trailer?: Uint8Array;
}
