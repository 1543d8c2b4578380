// snat: masquerading of traffic leaving the cluster (Cilium's BPF masquerade, bpf/lib/nat.h snat_v4_nat and
// snat_v4_rev_nat, at a node's external interface):
//  - egress: a TCP/UDP packet from inside the cluster CIDR to an address outside it leaves with the node's IP
//    as its source; its port is kept when free, else another from the configured range (nat_alloc.ts);
//    both directions go into cilium_snat_v4_external; later packets reuse the mapping;
//  - ingress: a packet to the node's IP whose tuple has a TUPLE_F_IN entry is a reply: its destination is
//    written back to the original pod address and port;
//  - everything else passes (in-cluster traffic, host traffic, ICMP: tcbox does not masquerade ICMP echo ids).
// All rewrites fix the IP and L4 checksums incrementally.
import { __sk_buff, IPPROTO_TCP, IPPROTO_UDP, map_lookup, TC_ACT_OK } from "tcbox";
import { bpf_mono_now, ct_tuple_set } from "./lib/conntrack";
import { ipv4_ct_tuple, TUPLE_F_IN, TUPLE_F_OUT } from "./lib/conntrack_map";
import { DROP_INVALID, DROP_NAT_NO_MAPPING, METRIC_EGRESS } from "./lib/drop_reasons";
import { drop_packet } from "./lib/metrics";
import { snat_v4_new_mapping } from "./lib/nat_alloc";
import { ipv4_nat_entry, SNAT_CONFIG_MAP, SNAT_MAP, snat_config } from "./lib/nat_map";
import { IP_DADDR, IP_SADDR, nat_rewrite } from "./lib/nat";
import { parse_ipv4, PARSE_INVALID, PARSE_OK, pkt_daddr, pkt_dport, pkt_nexthdr, pkt_saddr, pkt_sport } from "./lib/parse";

const tuple = changetype<ipv4_ct_tuple>(memory.data(offsetof<ipv4_ct_tuple>()));
const zero = memory.data(4);

export function cls_main(skb: __sk_buff): i32 {
  const r = parse_ipv4(skb);
  if (r == PARSE_INVALID) return drop_packet(skb, DROP_INVALID, METRIC_EGRESS);
  if (r != PARSE_OK) return TC_ACT_OK;
  const proto = pkt_nexthdr;
  if (proto != IPPROTO_TCP && proto != IPPROTO_UDP) return TC_ACT_OK;
  store<u32>(zero, 0);
  const cfg = map_lookup<snat_config>(SNAT_CONFIG_MAP, zero);
  if (cfg == null || cfg.node_ip == 0) return TC_ACT_OK;
  const saddr = pkt_saddr;
  const daddr = pkt_daddr;
  const sport = pkt_sport;
  const dport = pkt_dport;

  // Reply to a masqueraded connection?
  if (daddr == cfg.node_ip) {
    ct_tuple_set(tuple, saddr, daddr, sport, dport, proto, TUPLE_F_IN);
    const rev = map_lookup<ipv4_nat_entry>(SNAT_MAP, changetype<usize>(tuple));
    if (rev != null) nat_rewrite(skb, IP_DADDR, daddr, rev.to_addr, 2, dport, rev.to_port);
    return TC_ACT_OK;
  }
  // Leaving the cluster from inside it?
  const mask = cfg.cluster_mask;
  const cidr = cfg.cluster_cidr;
  if ((saddr & mask) != cidr || (daddr & mask) == cidr) return TC_ACT_OK;
  ct_tuple_set(tuple, saddr, daddr, sport, dport, proto, TUPLE_F_OUT);
  const fwd = map_lookup<ipv4_nat_entry>(SNAT_MAP, changetype<usize>(tuple));
  let to_port: u16;
  if (fwd != null) to_port = fwd.to_port;
  else {
    to_port = snat_v4_new_mapping(cfg, saddr, daddr, sport, dport, proto, bpf_mono_now());
    if (to_port == 0) return drop_packet(skb, DROP_NAT_NO_MAPPING, METRIC_EGRESS);
  }
  nat_rewrite(skb, IP_SADDR, saddr, cfg.node_ip, 0, sport, to_port);
  return TC_ACT_OK;
}
