// snat: masquerading of traffic leaving the cluster (Cilium's BPF masquerade, bpf/lib/nat.h snat_v4_nat and
// snat_v4_rev_nat, at a node's external interface):
//  - egress: a TCP/UDP packet from inside the cluster CIDR to an address outside it leaves with the node's IP
//    as its source; its port is kept when free, else another from the configured range (nat_alloc.ts);
//    both directions go into cilium_snat_v4_external; later packets reuse the mapping;
//  - ingress: a packet to the node's IP whose tuple has a TUPLE_F_IN entry is a reply: its destination is
//    written back to the original pod address and port;
//  - ICMP (bpf/lib/nat.h's IPPROTO_ICMP cases): an echo request leaving is masqueraded like a connection whose
//    "port" is the echo identifier (OUT tuple sport = id, dport = 0; the id kept when free, else another from the
//    whole 16-bit range); the echo reply coming back (IN tuple sport = 0, dport = id) gets the pod's address and
//    id back. A destination unreachable (codes 0-15) or time exceeded (TTL, reassembly) error coming back about a
//    masqueraded TCP/UDP connection or echo has its embedded header reverse-translated too
//    (snat_v4_rev_nat_handle_icmp_error), and such an error a pod sends out about a masqueraded TCP/UDP
//    connection's packet gets the node's address in the embedded header (snat_v4_nat_handle_icmp_error).
//    Other ICMP passes unchanged (Cilium punts echo replies to the stack and drops other types from pods with
//    DROP_NAT_UNSUPP_PROTO; tcbox lets them through as before);
//  - everything else passes (in-cluster traffic, host traffic).
// All rewrites fix the IP and L4 checksums incrementally; the ICMP checksum (no pseudo-header) changes only for
// the echo id, or, in an error, for every embedded word rewritten (address, IP checksum, port, L4 checksum).
import { __sk_buff, IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, l3_csum_replace, l4_csum_replace, BPF_F_MARK_MANGLED_0, BPF_F_PSEUDO_HDR, map_lookup, TC_ACT_OK } from "tcbox";
import { bpf_mono_now, ct_tuple_set } from "./lib/conntrack";
import { ipv4_ct_tuple, TUPLE_F_IN, TUPLE_F_OUT } from "./lib/conntrack_map";
import { DROP_INVALID, DROP_NAT_NO_MAPPING, METRIC_EGRESS } from "./lib/drop_reasons";
import { drop_packet } from "./lib/metrics";
import { snat_v4_new_mapping } from "./lib/nat_alloc";
import { ipv4_nat_entry, SNAT_CONFIG_MAP, SNAT_MAP, snat_config } from "./lib/nat_map";
import { IP_DADDR, IP_SADDR, nat_rewrite } from "./lib/nat";
import { parse_ipv4, PARSE_INVALID, PARSE_OK, pkt_daddr, pkt_dport, pkt_icmp_type, pkt_l4off, pkt_nexthdr, pkt_saddr, pkt_sport } from "./lib/parse";

const ICMP_ECHOREPLY: u8 = 0;
const ICMP_DEST_UNREACH: u8 = 3;
const ICMP_ECHO: u8 = 8;
const ICMP_TIME_EXCEEDED: u8 = 11;
const NR_ICMP_UNREACH: u8 = 15;
const ICMP_EXC_FRAGTIME: u8 = 1;
const ICMP_CSUM: u32 = 2; // offsets in the ICMP header
const ICMP_ID: u32 = 4;
const ICMP_HLEN: u32 = 8;

const tuple = changetype<ipv4_ct_tuple>(memory.data(offsetof<ipv4_ct_tuple>()));
const zero = memory.data(4);

export function cls_main(skb: __sk_buff): i32 {
  const r = parse_ipv4(skb);
  if (r == PARSE_INVALID) return drop_packet(skb, DROP_INVALID, METRIC_EGRESS);
  if (r != PARSE_OK) return TC_ACT_OK;
  const proto = pkt_nexthdr;
  if (proto != IPPROTO_TCP && proto != IPPROTO_UDP && proto != IPPROTO_ICMP) return TC_ACT_OK;
  store<u32>(zero, 0);
  const cfg = map_lookup<snat_config>(SNAT_CONFIG_MAP, zero);
  if (cfg == null || cfg.node_ip == 0) return TC_ACT_OK;
  const saddr = pkt_saddr;
  const daddr = pkt_daddr;
  let sport = pkt_sport;
  let dport = pkt_dport;
  const icmp = proto == IPPROTO_ICMP;
  const type = pkt_icmp_type;

  // Reply to a masqueraded connection?
  if (daddr == cfg.node_ip) {
    if (icmp) {
      if (type == ICMP_ECHOREPLY) sport = 0;
      else if (is_icmp_error(skb, type)) return icmp_error_xlate(skb, true);
      else return TC_ACT_OK;
    }
    ct_tuple_set(tuple, saddr, daddr, sport, dport, proto, TUPLE_F_IN);
    const rev = map_lookup<ipv4_nat_entry>(SNAT_MAP, changetype<usize>(tuple));
    if (rev == null) return TC_ACT_OK;
    if (icmp) {
      nat_rewrite(skb, IP_DADDR, daddr, rev.to_addr, 0, 0, 0);
      icmp_id_rewrite(skb, dport, rev.to_port);
    } else nat_rewrite(skb, IP_DADDR, daddr, rev.to_addr, 2, dport, rev.to_port);
    return TC_ACT_OK;
  }
  // Leaving the cluster from inside it?
  const mask = cfg.cluster_mask;
  const cidr = cfg.cluster_cidr;
  if ((saddr & mask) != cidr || (daddr & mask) == cidr) return TC_ACT_OK;
  let min = <u32>cfg.min_port;
  let max = <u32>cfg.max_port;
  if (icmp) {
    if (is_icmp_error(skb, type)) return icmp_error_xlate(skb, false);
    if (type != ICMP_ECHO) return TC_ACT_OK;
    dport = 0;
    min = 0; // "Don't clamp the ID field"
    max = 0xffff;
  }
  ct_tuple_set(tuple, saddr, daddr, sport, dport, proto, TUPLE_F_OUT);
  const fwd = map_lookup<ipv4_nat_entry>(SNAT_MAP, changetype<usize>(tuple));
  let to_port: u16;
  if (fwd != null) to_port = fwd.to_port;
  else {
    const p = snat_v4_new_mapping(cfg, min, max, saddr, daddr, sport, dport, proto, bpf_mono_now());
    if (p < 0) return drop_packet(skb, DROP_NAT_NO_MAPPING, METRIC_EGRESS);
    to_port = <u16>p;
  }
  if (icmp) {
    nat_rewrite(skb, IP_SADDR, saddr, cfg.node_ip, 0, 0, 0);
    icmp_id_rewrite(skb, sport, to_port);
  } else nat_rewrite(skb, IP_SADDR, saddr, cfg.node_ip, 0, sport, to_port);
  return TC_ACT_OK;
}

/** Destination unreachable (codes up to NR_ICMP_UNREACH) and time exceeded (TTL, reassembly): errors that
 *  carry the offending packet's header, as bpf/lib/nat.h accepts them. */
// @ts-ignore: decorator
@inline function is_icmp_error(skb: __sk_buff, type: u8): bool {
  const code = load<u8>(<usize>skb.data + pkt_l4off, 1);
  return (type == ICMP_DEST_UNREACH && code <= NR_ICMP_UNREACH) || (type == ICMP_TIME_EXCEEDED && code <= ICMP_EXC_FRAGTIME);
}

/** The echo identifier in the outer ICMP header, and the ICMP checksum over it (no pseudo-header). */
// @ts-ignore: decorator
@inline function icmp_id_rewrite(skb: __sk_buff, old_id: u16, new_id: u16): void {
  if (old_id == new_id) return;
  store<u16>(<usize>skb.data + pkt_l4off + ICMP_ID, new_id);
  l4_csum_replace(skb, pkt_l4off + ICMP_CSUM, old_id, new_id, 2);
}

/**
 * An ICMP error about a masqueraded connection's packet. `ingress` (snat_v4_rev_nat_handle_icmp_error): coming
 * back to the node IP about a packet that left masqueraded; the embedded source (node IP, allocated port or echo
 * id) becomes the pod's again and so does the outer destination. Egress (snat_v4_nat_handle_icmp_error): a pod
 * reporting a reply packet of a masqueraded TCP/UDP connection; the embedded destination (pod, its port) and the
 * outer source become the node's. The embedded IP and L4 checksums are fixed, then the outer ICMP checksum for
 * every embedded word that changed. No mapping, or an embedded header too short for its ports: unchanged.
 */
// @ts-ignore: decorator
@inline function icmp_error_xlate(skb: __sk_buff, ingress: bool): i32 {
  const data = <usize>skb.data;
  const end = <usize>skb.data_end;
  const l3 = pkt_l4off + ICMP_HLEN; // the embedded IP header
  if (data + l3 + 20 > end) return TC_ACT_OK;
  const vihl = <u32>load<u8>(data + l3);
  const ihl = (vihl & 15) << 2;
  if ((vihl >> 4) != 4 || ihl < 20 || data + l3 + ihl > end) return TC_ACT_OK;
  const proto = load<u8>(data + l3, 9);
  const in_saddr = load<u32>(data + l3, 12);
  const in_daddr = load<u32>(data + l3, 16);
  const l4 = l3 + ihl;
  let in_sport: u16 = 0;
  let in_dport: u16 = 0;
  let port_off: u32 = ingress ? 0 : 2;
  let csum_off: u32 = 0;
  if (proto == IPPROTO_TCP || proto == IPPROTO_UDP) {
    if (data + l4 + 4 > end) return TC_ACT_OK;
    in_sport = load<u16>(data + l4);
    in_dport = load<u16>(data + l4, 2);
    csum_off = proto == IPPROTO_TCP ? 16 : 6;
  } else if (ingress && proto == IPPROTO_ICMP) {
    // An error about an echo request that left: its id is the "source port", the IN tuple's sport is 0.
    if (data + l4 + ICMP_HLEN > end || load<u8>(data + l4) != ICMP_ECHO) return TC_ACT_OK;
    in_sport = load<u16>(data + l4, ICMP_ID);
    port_off = ICMP_ID;
    csum_off = ICMP_CSUM;
  } else return TC_ACT_OK;
  // The embedded packet's tuple reversed is the tuple of the packets this node translates.
  ct_tuple_set(tuple, in_daddr, in_saddr, in_dport, in_sport, proto, ingress ? TUPLE_F_IN : TUPLE_F_OUT);
  const nat = map_lookup<ipv4_nat_entry>(SNAT_MAP, changetype<usize>(tuple));
  if (nat == null) return TC_ACT_OK;
  const old_addr = ingress ? in_saddr : in_daddr;
  const old_port = ingress ? in_sport : in_dport;
  const new_addr = nat.to_addr;
  const new_port = nat.to_port;
  // A frag-needed error may embed only 8 bytes of TCP: no checksum to fix then.
  const has_csum = data + l4 + csum_off + 2 <= end;
  const old_ipc = load<u16>(data + l3, 10);
  const old_l4c = has_csum ? load<u16>(data + l4 + csum_off) : 0;
  store<u32>(data + l3 + (ingress ? 12 : 16), new_addr);
  l3_csum_replace(skb, l3 + 10, old_addr, new_addr, 4);
  store<u16>(data + l4 + port_off, new_port);
  if (has_csum) {
    if (proto == IPPROTO_ICMP) l4_csum_replace(skb, l4 + csum_off, old_port, new_port, 2);
    else {
      const mm0: u64 = proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;
      l4_csum_replace(skb, l4 + csum_off, old_addr, new_addr, BPF_F_PSEUDO_HDR | mm0 | 4);
      l4_csum_replace(skb, l4 + csum_off, old_port, new_port, mm0 | 2);
    }
  }
  // The outer ICMP checksum covers the embedded bytes (all words at even offsets from the ICMP header).
  const csum = pkt_l4off + ICMP_CSUM;
  l4_csum_replace(skb, csum, old_addr, new_addr, 4);
  l4_csum_replace(skb, csum, old_ipc, load<u16>(data + l3, 10), 2);
  l4_csum_replace(skb, csum, old_port, new_port, 2);
  if (has_csum) l4_csum_replace(skb, csum, old_l4c, load<u16>(data + l4 + csum_off), 2);
  if (ingress) nat_rewrite(skb, IP_DADDR, pkt_daddr, new_addr, 0, 0, 0);
  else nat_rewrite(skb, IP_SADDR, pkt_saddr, new_addr, 0, 0, 0);
  return TC_ACT_OK;
}
