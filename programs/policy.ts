// policy: identity-based network policy for the endpoints of a node (Cilium's bpf_lxc policy enforcement,
// both directions in one program so it can sit on any hook a packet between endpoints crosses):
//  - a reply of a connection policy allowed (its conntrack entry carries CT_F_POLICY_ALLOWED), found by its
//    reversed tuple, passes unchecked (for a connection lb4 load-balanced, the reply lb4 has reverse-NATed to
//    come from the frontend is found by its reversed tuple with TUPLE_F_SERVICE: the service entry lb4 named
//    in skb->cb is marked allowed with the connection);
//  - every other packet, of a new connection or an established one, is checked at egress of its source
//    endpoint and at ingress of its destination endpoint, each only when a policy selects that endpoint in
//    that direction (ENDPOINT_F_POLICY_*): otherwise allowed, as Kubernetes allows everything to an endpoint no
//    NetworkPolicy selects. Checking established packets is Cilium's behaviour (cilium/cilium#2700: conntrack
//    only short-cuts replies, so a connection is dropped as soon as policy no longer allows it), unlike
//    iptables-based plugins where RELATED,ESTABLISHED is accepted before any policy chain;
//  - allowed: the connection's conntrack entry gets CT_F_POLICY_ALLOWED (created, or set on the entry lb4
//    created: lb4 and policy share cilium_ct4_global by pinning, so lb4 -> policy chains see one table and
//    the DNATed tuple is what policy checks); denied: TC_ACT_SHOT with DROP_POLICY (no matching entry) or
//    DROP_POLICY_DENY (a deny entry), counted in cilium_metrics.
import { __sk_buff, IPPROTO_ICMP, TC_ACT_OK } from "tcbox";
import { bpf_mono_now, ct_create, ct_lookup, ct_svc_meta_entry, ct_tuple_reverse, ct_tuple_set, ct_update } from "./lib/conntrack";
import { CT_F_LOOPBACK, CT_F_POLICY_ALLOWED, ct_entry, ipv4_ct_tuple, TUPLE_F_OUT, TUPLE_F_SERVICE } from "./lib/conntrack_map";
import { DROP_INVALID, DROP_POLICY, DROP_POLICY_DENY, METRIC_EGRESS, METRIC_INGRESS } from "./lib/drop_reasons";
import { drop_packet } from "./lib/metrics";
import { identity_of, lookup_endpoint, POLICY_ALLOW, POLICY_DENY_ENTRY, policy_can_access } from "./lib/policy";
import { ENDPOINT_F_POLICY_EGRESS, ENDPOINT_F_POLICY_INGRESS } from "./lib/policy_map";
import { parse_ipv4, PARSE_INVALID, PARSE_NOT_IPV4, pkt_daddr, pkt_dport, pkt_nexthdr, pkt_saddr, pkt_sport, pkt_tcp_flags } from "./lib/parse";

const tuple = changetype<ipv4_ct_tuple>(memory.data(offsetof<ipv4_ct_tuple>()));

export function cls_main(skb: __sk_buff): i32 {
  const r = parse_ipv4(skb);
  if (r == PARSE_NOT_IPV4) return TC_ACT_OK;
  if (r == PARSE_INVALID) return drop_packet(skb, DROP_INVALID, METRIC_INGRESS);
  const saddr = pkt_saddr;
  const daddr = pkt_daddr;
  const proto = pkt_nexthdr;
  const now = bpf_mono_now();
  const dport: u16 = proto == IPPROTO_ICMP ? 0 : pkt_dport; // policy ports: ICMP has none (tcbox: no ICMP type rules)

  // A reply of an allowed connection passes without a policy check (Cilium: CT_REPLY / CT_RELATED skip it).
  ct_tuple_set(tuple, saddr, daddr, pkt_sport, pkt_dport, proto, TUPLE_F_OUT);
  const fwd = ct_lookup(tuple, now);
  const established = fwd != null && (fwd.flags & CT_F_POLICY_ALLOWED) != 0;
  if (!established) {
    ct_tuple_reverse(tuple);
    let rev = ct_lookup(tuple, now);
    if (rev == null || (rev.flags & CT_F_POLICY_ALLOWED) == 0) {
      // A reply of a load-balanced connection after lb4's reverse NAT comes from the frontend: its reversed
      // tuple is the connection's TUPLE_F_SERVICE entry (client -> frontend), allowed with the connection.
      tuple.flags = TUPLE_F_SERVICE;
      rev = ct_lookup(tuple, now);
    }
    if (rev != null && (rev.flags & CT_F_POLICY_ALLOWED) != 0) {
      ct_update(rev, proto, pkt_tcp_flags, true, skb.len, now);
      return TC_ACT_OK;
    }
    ct_tuple_reverse(tuple);
    tuple.flags = TUPLE_F_OUT;
  }

  // A pod reaching itself through a Service (lb4's hairpin, from the service loopback address): no policy, as
  // Cilium skips enforcement for hairpin flows (a pod needs no rule to talk to itself).
  if (fwd != null && (fwd.flags & CT_F_LOOPBACK) != 0) {
    if (!established) {
      fwd.flags |= CT_F_POLICY_ALLOWED;
      const svc_lb: ct_entry | null = ct_svc_meta_entry(skb, tuple, daddr, pkt_sport, proto, now);
      if (svc_lb != null) svc_lb.flags |= CT_F_POLICY_ALLOWED;
    }
    ct_update(fwd, proto, pkt_tcp_flags, false, skb.len, now);
    return TC_ACT_OK;
  }

  // New or established: every packet in the connection's own direction is checked, egress of the source
  // endpoint then ingress of the destination endpoint (Cilium's bpf_lxc runs policy_can_egress4 for CT_NEW and
  // CT_ESTABLISHED alike, and ipv4_policy drops anything but CT_REPLY/CT_RELATED the policy denies), so a
  // policy change takes effect on open connections at their next packet.
  const src_ep = lookup_endpoint(saddr);
  const src_id = src_ep != null ? src_ep.sec_id : identity_of(saddr);
  if (src_ep != null && (src_ep.flags & ENDPOINT_F_POLICY_EGRESS) != 0) {
    const v = policy_can_access(src_ep.lxc_id, identity_of(daddr), dport, proto, 1, skb.len);
    if (v != POLICY_ALLOW) return drop_packet(skb, v == POLICY_DENY_ENTRY ? DROP_POLICY_DENY : DROP_POLICY, METRIC_EGRESS);
  }
  const dst_ep = lookup_endpoint(daddr);
  if (dst_ep != null && (dst_ep.flags & ENDPOINT_F_POLICY_INGRESS) != 0) {
    const v = policy_can_access(dst_ep.lxc_id, src_id, dport, proto, 0, skb.len);
    if (v != POLICY_ALLOW) return drop_packet(skb, v == POLICY_DENY_ENTRY ? DROP_POLICY_DENY : DROP_POLICY, METRIC_INGRESS);
  }
  if (established) {
    ct_update(fwd!, proto, pkt_tcp_flags, false, skb.len, now);
    return TC_ACT_OK;
  }
  if (fwd != null) {
    fwd.flags |= CT_F_POLICY_ALLOWED;
    fwd.src_sec_id = src_id;
    ct_update(fwd, proto, pkt_tcp_flags, false, skb.len, now);
  } else {
    ct_create(tuple, proto, pkt_tcp_flags, skb.len, now, 0, 0, CT_F_POLICY_ALLOWED, src_id);
  }
  // Load-balanced by lb4 in this chain: its service entry is allowed with the connection (see above).
  const svc: ct_entry | null = ct_svc_meta_entry(skb, tuple, saddr, pkt_sport, proto, now);
  if (svc != null) svc.flags |= CT_F_POLICY_ALLOWED;
  return TC_ACT_OK;
}
