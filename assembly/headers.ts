// Protocol headers as @unmanaged classes over packet memory (include/uapi/linux/if_ether.h, ip.h, tcp.h, udp.h,
// icmp.h). Multi-byte fields hold network byte order, as in C: compare with bpf_htons(...) or convert with
// bpf_ntohs(...). Offsets for the checksum helpers: ETH_HLEN + offsetof<iphdr>("check").
export const ETH_HLEN: u32 = 14;
export const ETH_ALEN: u32 = 6;
export const ETH_P_IP: u16 = 0x0800;
export const ETH_P_ARP: u16 = 0x0806;
export const ETH_P_8021Q: u16 = 0x8100;
export const ETH_P_IPV6: u16 = 0x86dd;
export const IPPROTO_ICMP: u8 = 1;
export const IPPROTO_TCP: u8 = 6;
export const IPPROTO_UDP: u8 = 17;
export const IPPROTO_SCTP: u8 = 132;
export const IP_MF: u16 = 0x2000;
export const IP_OFFSET: u16 = 0x1fff;

/** struct ethhdr: destination and source MAC split in aligned words, then h_proto at offset 12. */
@unmanaged
export class ethhdr {
  h_dest_hi: u32; // 0: first four bytes of the destination MAC
  h_dest_lo: u16; // 4: last two bytes
  h_source_hi: u16; // 6: first two bytes of the source MAC
  h_source_lo: u32; // 8: last four bytes
  h_proto: u16; // 12: EtherType, network order
}

/** struct iphdr (20 bytes without options). */
@unmanaged
export class iphdr {
  ihl_version: u8; // 0: version << 4 | ihl (in 32-bit words)
  tos: u8; // 1
  tot_len: u16; // 2
  id: u16; // 4
  frag_off: u16; // 6: flags and fragment offset
  ttl: u8; // 8
  protocol: u8; // 9
  check: u16; // 10: header checksum
  saddr: u32; // 12
  daddr: u32; // 16
}

/** struct tcphdr (20 bytes without options). */
@unmanaged
export class tcphdr {
  source: u16; // 0
  dest: u16; // 2
  seq: u32; // 4
  ack_seq: u32; // 8
  doff_flags: u16; // 12: data offset << 12 | flags, network order
  window: u16; // 14
  check: u16; // 16
  urg_ptr: u16; // 18
}

/** struct udphdr. */
@unmanaged
export class udphdr {
  source: u16; // 0
  dest: u16; // 2
  len: u16; // 4
  check: u16; // 6: 0 means "no checksum"
}

/** struct icmphdr (echo: un = id << 16 | sequence, network order). */
@unmanaged
export class icmphdr {
  type: u8; // 0
  code: u8; // 1
  checksum: u16; // 2
  un: u32; // 4
}

/** IPv4 header length in bytes. */
// @ts-ignore: decorator
@inline export function ipv4_hdrlen(ip4: iphdr): u32 {
  return (<u32>ip4.ihl_version & 15) << 2;
}

/** True for any fragment but the first (no L4 header in it). */
// @ts-ignore: decorator
@inline export function ipv4_is_fragment(ip4: iphdr): bool {
  return (bswap<u16>(ip4.frag_off) & IP_OFFSET) != 0;
}
