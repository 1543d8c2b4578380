// One pass over Ethernet + IPv4 + the first bytes of TCP/UDP/ICMP, into module globals the programs read (C
// programs keep these in locals and a `struct ipv4_ct_tuple`; AssemblyScript globals cost nothing to reuse).
// Fields stay raw (network order) so they go straight into map keys and checksum helpers.
import { __sk_buff, bpf_htons, ETH_HLEN, ETH_P_IP, IPPROTO_ICMP, IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP, IP_OFFSET } from "tcbox";

export const PARSE_OK: i32 = 0;
export const PARSE_NOT_IPV4: i32 = 1; // not IPv4: the programs pass it (IPv6 is not modelled)
export const PARSE_NO_L4: i32 = 2; // a later fragment or an L4 protocol without ports
export const PARSE_INVALID: i32 = -1; // truncated or malformed: DROP_INVALID

/** Offset of the IPv4 header (after Ethernet; tcbox programs see untagged frames). */
export const L3_OFF: u32 = ETH_HLEN;

export let pkt_l4off: u32 = 0; // offset of the L4 header
export let pkt_saddr: u32 = 0;
export let pkt_daddr: u32 = 0;
export let pkt_sport: u16 = 0; // TCP/UDP/SCTP source port; ICMP echo: identifier
export let pkt_dport: u16 = 0; // TCP/UDP/SCTP destination port; ICMP echo: identifier too
export let pkt_nexthdr: u8 = 0;
export let pkt_tcp_flags: u8 = 0;
export let pkt_icmp_type: u8 = 0;

export function parse_ipv4(skb: __sk_buff): i32 {
  const data = <usize>skb.data;
  const end = <usize>skb.data_end;
  if (data + ETH_HLEN + 20 > end) return PARSE_NOT_IPV4;
  if (load<u16>(data, 12) != bpf_htons(ETH_P_IP)) return PARSE_NOT_IPV4;
  const ip = data + ETH_HLEN;
  const vihl = <u32>load<u8>(ip);
  const ihl = (vihl & 15) << 2;
  if ((vihl >> 4) != 4 || ihl < 20 || ip + ihl > end) return PARSE_INVALID;
  pkt_saddr = load<u32>(ip, 12);
  pkt_daddr = load<u32>(ip, 16);
  const proto = load<u8>(ip, 9);
  pkt_nexthdr = proto;
  pkt_l4off = ETH_HLEN + ihl;
  pkt_sport = 0;
  pkt_dport = 0;
  pkt_tcp_flags = 0;
  pkt_icmp_type = 0;
  if ((bswap<u16>(load<u16>(ip, 6)) & IP_OFFSET) != 0) return PARSE_NO_L4;
  const l4 = ip + ihl;
  if (proto == IPPROTO_TCP) {
    if (l4 + 20 > end) return PARSE_INVALID;
    pkt_sport = load<u16>(l4);
    pkt_dport = load<u16>(l4, 2);
    pkt_tcp_flags = load<u8>(l4, 13);
    return PARSE_OK;
  }
  if (proto == IPPROTO_UDP) {
    if (l4 + 8 > end) return PARSE_INVALID;
    pkt_sport = load<u16>(l4);
    pkt_dport = load<u16>(l4, 2);
    return PARSE_OK;
  }
  if (proto == IPPROTO_SCTP) {
    // The common header (RFC 9260 3.1): ports where TCP and UDP have them, then tag and CRC32c (lib/sctp.ts).
    if (l4 + 12 > end) return PARSE_INVALID;
    pkt_sport = load<u16>(l4);
    pkt_dport = load<u16>(l4, 2);
    return PARSE_OK;
  }
  if (proto == IPPROTO_ICMP) {
    if (l4 + 8 > end) return PARSE_INVALID;
    pkt_icmp_type = load<u8>(l4);
    // Echo request/reply: the identifier plays the port's role in conntrack (as in the kernel and Cilium).
    // Both "ports" hold it so a reply's reversed tuple equals the request's.
    if (pkt_icmp_type == 8 || pkt_icmp_type == 0) {
      pkt_sport = load<u16>(l4, 4);
      pkt_dport = pkt_sport;
    }
    return PARSE_OK;
  }
  return PARSE_NO_L4;
}

/** Offset of the L4 checksum field, or 0 for protocols without one rewritten incrementally (SCTP: lib/sctp.ts). */
// @ts-ignore: decorator
@inline export function l4_csum_off(): u32 {
  return pkt_nexthdr == IPPROTO_TCP ? pkt_l4off + 16 : pkt_nexthdr == IPPROTO_UDP ? pkt_l4off + 6 : 0;
}
