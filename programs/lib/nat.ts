// Address and port rewrites with incremental checksum fixes (Cilium's lb4_xlate / snat_v4_rewrite_* with
// csum_l4_replace): the IP header checksum over the changed address, the TCP/UDP checksum over the address
// (a pseudo-header field: BPF_F_PSEUDO_HDR) and the port. UDP keeps a zero "no checksum" and never writes a
// computed 0 (BPF_F_MARK_MANGLED_0). Offsets are relative to the packet start.
import { __sk_buff, BPF_F_MARK_MANGLED_0, BPF_F_PSEUDO_HDR, IPPROTO_UDP, l3_csum_replace, l4_csum_replace } from "tcbox";
import { L3_OFF, l4_csum_off, pkt_l4off, pkt_nexthdr } from "./parse";

const IP_CHECK: u32 = L3_OFF + 10;
export const IP_SADDR: u32 = L3_OFF + 12;
export const IP_DADDR: u32 = L3_OFF + 16;

/**
 * Rewrite the address at `addr_off` (IP_SADDR or IP_DADDR) and the L4 port at `port_off` (0 or 2 from L4).
 * Inlined: the offsets and flags are constants at each call site, so the checksum helpers' checks fold away
 * (UDP and the others take separate copies, so BPF_F_MARK_MANGLED_0 is a constant in each).
 */
// @ts-ignore: decorator
@inline export function nat_rewrite(skb: __sk_buff, addr_off: u32, old_addr: u32, new_addr: u32, port_off: u32, old_port: u16, new_port: u16): void {
  if (pkt_nexthdr == IPPROTO_UDP) nat_rewrite_csum(skb, addr_off, old_addr, new_addr, port_off, old_port, new_port, BPF_F_MARK_MANGLED_0);
  else nat_rewrite_csum(skb, addr_off, old_addr, new_addr, port_off, old_port, new_port, 0);
}

// @ts-ignore: decorator
@inline function nat_rewrite_csum(skb: __sk_buff, addr_off: u32, old_addr: u32, new_addr: u32, port_off: u32, old_port: u16, new_port: u16, mm0: u64): void {
  const data = <usize>skb.data;
  const csum = l4_csum_off();
  if (old_addr != new_addr) {
    store<u32>(data + addr_off, new_addr);
    l3_csum_replace(skb, IP_CHECK, old_addr, new_addr, 4);
    if (csum != 0) l4_csum_replace(skb, csum, old_addr, new_addr, BPF_F_PSEUDO_HDR | mm0 | 4);
  }
  if (old_port != new_port && csum != 0) {
    store<u16>(data + pkt_l4off + port_off, new_port);
    l4_csum_replace(skb, csum, old_port, new_port, mm0 | 2);
  }
}
