// lb4: the Service load balancer of Cilium's datapath (bpf/lib/lb.h lb4_local + lb4_rev_nat), as one tc
// program for both directions:
//  - a packet to a frontend {address, dport, proto} in cilium_lb4_services_v2 is DNATed to a backend: the
//    connection's TUPLE_F_SERVICE conntrack entry remembers the backend, so every later packet of the flow goes
//    to the same one; a new connection takes the client's affinity backend (sessionAffinity: ClientIP), else
//    Maglev (per-service table) or a random slot; a service without backends drops with DROP_NO_SERVICE;
//  - a reply from a backend whose reversed tuple is a load-balanced connection gets its source written back
//    to the frontend (reverse NAT);
//  - a translated request leaves its frontend in skb->cb[1..2] (lib/conntrack.ts ct_svc_meta_*) for policy,
//    which runs next in the same chain and marks the TUPLE_F_SERVICE entry allowed with the connection, so
//    replies after the reverse NAT (frontend -> client) are recognised as replies;
//  - a pod that reaches itself through a Service (hairpin) has its source rewritten to the service loopback
//    address 169.254.42.1 as well (Cilium's IPV4_LOOPBACK; the entries carry CT_F_LOOPBACK), and the reply is
//    written back from the frontend to the pod;
//  - anything else passes. ICMP is not load-balanced: an echo to a ClusterIP passes unchanged (tcbox does not
//    model Cilium's optional ICMP echo replies for service addresses); non-first fragments pass too (Cilium's
//    fragment tracking map is not modelled).
// Checksums are fixed incrementally with l3_csum_replace/l4_csum_replace (lib/nat.ts); SCTP (ports where TCP and
// UDP have them) carries a CRC32c over the whole packet instead of a pseudo-header checksum, recomputed after a
// port rewrite (lib/sctp.ts).
import { __sk_buff, IPPROTO_ICMP, IPPROTO_SCTP, IPPROTO_TCP, map_lookup, TC_ACT_OK } from "tcbox";
import { bpf_mono_now, ct_create, ct_lookup, ct_svc_meta_clear, ct_svc_meta_store, ct_tuple_set, ct_update } from "./lib/conntrack";
import { CT_F_LB, CT_F_LOOPBACK, ipv4_ct_tuple, TUPLE_F_OUT, TUPLE_F_SERVICE } from "./lib/conntrack_map";
import { DROP_CT_CREATE_FAILED, DROP_INVALID, DROP_NO_SERVICE, METRIC_EGRESS } from "./lib/drop_reasons";
import {
  lb4_affinity_backend_id, lb4_lookup_backend, lb4_lookup_service, lb4_rev_nat, lb4_rev_nat_lookup, lb4_select_backend_id,
  lb4_update_affinity, lb4_xlate,
} from "./lib/lb";
import { lb4_backend, lb4_reverse_nat, LB4_REVERSE_NAT_MAP, SVC_FLAG_AFFINITY } from "./lib/lb_map";
import { drop_packet } from "./lib/metrics";
import {
  parse_ipv4, PARSE_INVALID, PARSE_OK, pkt_daddr, pkt_dport, pkt_l4off, pkt_nexthdr, pkt_saddr, pkt_sport, pkt_tcp_flags,
} from "./lib/parse";
import { sctp_csum_update } from "./lib/sctp";
import { IP_DADDR, IP_SADDR, nat_rewrite } from "./lib/nat";

/**
 * Cilium's service loopback address (--ipv4-service-loopback-address, IPV4_LOOPBACK): a pod whose connection to a
 * Service lands on itself gets its source rewritten to it, else the packet would come back to the pod from its
 * own address and the kernel would drop it as a martian source. 169.254.42.1, network order.
 */
const IPV4_LOOPBACK: u32 = bswap<u32>(0xa9fe2a01);

const tuple = changetype<ipv4_ct_tuple>(memory.data(offsetof<ipv4_ct_tuple>()));
const u32key = memory.data(4);

/**
 * SCTP after lb4_xlate / lb4_rev_nat (which fix the IPv4 checksum; SCTP has no pseudo-header): write the port
 * at `port_off` (0 source, 2 destination) and recompute the packet's CRC32c.
 */
function sctp_port_rewrite(skb: __sk_buff, port_off: u32, port: u16): void {
  store<u16>(<usize>skb.data + pkt_l4off + port_off, port);
  sctp_csum_update(skb);
}

/** DNAT to the backend (lb4_xlate), SCTP's port and CRC32c included; hairpin: SNAT to IPV4_LOOPBACK too. */
// @ts-ignore: decorator
@inline function xlate(skb: __sk_buff, proto: u8, saddr: u32, sport: u16, daddr: u32, dport: u16, be: lb4_backend, loopback: bool): void {
  lb4_xlate(skb, daddr, dport, be);
  if (loopback) nat_rewrite(skb, IP_SADDR, saddr, IPV4_LOOPBACK, 0, sport, sport);
  if (proto == IPPROTO_SCTP) sctp_port_rewrite(skb, 2, be.port);
}

/** Reverse NAT of a reply (lb4_rev_nat), SCTP's port and CRC32c included. */
function rev_nat(skb: __sk_buff, proto: u8, rev_nat_index: u32, saddr: u32, sport: u16): void {
  if (!lb4_rev_nat(skb, rev_nat_index, saddr, sport) || proto != IPPROTO_SCTP) return;
  store<u32>(u32key, rev_nat_index);
  const nat = map_lookup<lb4_reverse_nat>(LB4_REVERSE_NAT_MAP, u32key);
  if (nat != null) sctp_port_rewrite(skb, 0, nat.port);
}

export function cls_main(skb: __sk_buff): i32 {
  ct_svc_meta_clear(skb);
  const r = parse_ipv4(skb);
  if (r == PARSE_INVALID) return drop_packet(skb, DROP_INVALID, METRIC_EGRESS);
  if (r != PARSE_OK || pkt_nexthdr == IPPROTO_ICMP) return TC_ACT_OK;
  const saddr = pkt_saddr;
  const daddr = pkt_daddr;
  const sport = pkt_sport;
  const dport = pkt_dport;
  const proto = pkt_nexthdr;
  const now = bpf_mono_now();

  const svc = lb4_lookup_service(daddr, dport, proto);
  if (svc == null) {
    // Not to a frontend: maybe a reply of a load-balanced connection.
    const e = lb4_rev_nat_lookup(saddr, daddr, sport, dport, proto, now);
    if (e != null) {
      ct_update(e, proto, pkt_tcp_flags, true, skb.len, now);
      rev_nat(skb, proto, e.rev_nat_index, saddr, sport);
      // Hairpin: the reply goes back to the pod itself (the backend's own address) from the frontend.
      if ((e.flags & CT_F_LOOPBACK) != 0) nat_rewrite(skb, IP_DADDR, daddr, saddr, 2, dport, dport);
    }
    return TC_ACT_OK;
  }
  if (svc.count == 0) return drop_packet(skb, DROP_NO_SERVICE, METRIC_EGRESS);

  // Established: the service entry holds the backend (unless the service was re-created or the backend went).
  ct_tuple_set(tuple, saddr, daddr, sport, dport, proto, TUPLE_F_SERVICE);
  const e = ct_lookup(tuple, now);
  if (e != null && e.rev_nat_index == svc.rev_nat_index) {
    const be = lb4_lookup_backend(e.backend_id);
    if (be != null) {
      ct_update(e, proto, pkt_tcp_flags, false, skb.len, now);
      xlate(skb, proto, saddr, sport, daddr, dport, be, (e.flags & CT_F_LOOPBACK) != 0);
      ct_svc_meta_store(skb, daddr, dport);
      return TC_ACT_OK;
    }
  }

  // New connection (or its backend is gone): choose a backend.
  let backend_id: u32 = 0;
  const affinity = (svc.flags & SVC_FLAG_AFFINITY) != 0;
  if (affinity) backend_id = lb4_affinity_backend_id(svc, saddr, now);
  if (backend_id == 0) backend_id = lb4_select_backend_id(svc, saddr, daddr, sport, dport);
  const be = lb4_lookup_backend(backend_id);
  if (be == null) return drop_packet(skb, DROP_NO_SERVICE, METRIC_EGRESS);
  if (affinity) lb4_update_affinity(svc, saddr, backend_id, now);
  const rev = svc.rev_nat_index;
  const tcp_flags: u8 = proto == IPPROTO_TCP ? pkt_tcp_flags : 0;
  // TUPLE_F_SERVICE entry: client -> frontend, holding the backend; then the entry of the translated
  // connection (client -> backend, or IPV4_LOOPBACK -> backend for a hairpin), whose rev_nat_index reverse-NATs
  // the replies.
  const loopback = be.address == saddr;
  const flags: u16 = loopback ? CT_F_LB | CT_F_LOOPBACK : CT_F_LB;
  if (ct_create(tuple, proto, tcp_flags, skb.len, now, backend_id, rev, flags, 0) < 0) return drop_packet(skb, DROP_CT_CREATE_FAILED, METRIC_EGRESS);
  ct_tuple_set(tuple, loopback ? IPV4_LOOPBACK : saddr, be.address, sport, be.port, proto, TUPLE_F_OUT);
  if (ct_create(tuple, proto, tcp_flags, skb.len, now, backend_id, rev, flags, 0) < 0) return drop_packet(skb, DROP_CT_CREATE_FAILED, METRIC_EGRESS);
  xlate(skb, proto, saddr, sport, daddr, dport, be, loopback);
  ct_svc_meta_store(skb, daddr, dport);
  return TC_ACT_OK;
}
