// SCTP's checksum (RFC 9260 section 6.8 and appendix A): CRC32c (Castagnoli, reflected polynomial 0x82F63B78) over
// the whole SCTP packet (common header + chunks) with the checksum field zero, stored in the order Linux's
// sctp_compute_cksum leaves it (little-endian bytes). There is no pseudo-header, so an address rewrite leaves it
// valid; a port rewrite changes covered bytes and CRC32c has no incremental update like the Internet checksum's
// RFC 1624 form, so the program recomputes it over the packet (as the kernel's sctp_manip_pkt does for netfilter
// NAT). lb4 translates a Service port to the backend's targetPort and back, so it must.
import { __sk_buff } from "tcbox";
import { L3_OFF, pkt_l4off } from "./parse";

/** Offset of the checksum in the SCTP common header. */
export const SCTP_CSUM_OFF: u32 = 8;
/** Common header: source port, destination port, verification tag, checksum. */
export const SCTP_HLEN: u32 = 12;

const TABLE = memory.data(256 * 4);
let table_ready = false;

function crc32c_table(): void {
  for (let n: u32 = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = (c & 1) != 0 ? 0x82f63b78 ^ (c >> 1) : c >> 1;
    store<u32>(TABLE + (<usize>n << 2), c);
  }
  table_ready = true;
}

/** CRC32c of [p, end). */
export function crc32c(p: usize, end: usize): u32 {
  if (!table_ready) crc32c_table();
  let c: u32 = 0xffffffff;
  for (; p < end; p++) c = load<u32>(TABLE + (<usize>((c ^ <u32>load<u8>(p)) & 0xff) << 2)) ^ (c >> 8);
  return ~c;
}

/**
 * Recompute the checksum of the parsed SCTP packet in place (after parse_ipv4 and a rewrite). The packet ends at
 * the IPv4 total length (a short frame's Ethernet padding is not part of it). False when the lengths are wrong.
 */
export function sctp_csum_update(skb: __sk_buff): bool {
  const data = <usize>skb.data;
  const end = <usize>skb.data_end;
  const l4 = data + pkt_l4off;
  const ip_end = data + L3_OFF + <usize>bswap<u16>(load<u16>(data + L3_OFF, 2));
  if (l4 + SCTP_HLEN > ip_end || ip_end > end) return false;
  store<u32>(l4 + SCTP_CSUM_OFF, 0);
  // Wasm stores little-endian: the CRC's low byte first, as Linux puts it on the wire.
  store<u32>(l4 + SCTP_CSUM_OFF, crc32c(l4, ip_end));
  return true;
}
