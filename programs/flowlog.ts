// flowlog: Hubble-like flow events for every IPv4 packet crossing the hook it is attached to (a tap: it never
// changes the packet). Each event carries the time, the verdict, the drop reason, the 5-tuple, both security
// identities (the ipcache, shared with policy.ts by pinning), the observation point and whether the packet is
// a reply of a tracked connection (cilium_ct4_global, shared with lb4 and policy).
// Verdict: an earlier program of the same hook chain that drops a packet can hand its reason on in skb->cb[0]
// (tcbox's convention for chained programs: cb[0] = drop reason, 0 = none); flowlog then reports DROPPED with
// that reason and returns TC_ACT_SHOT itself, else FORWARDED and TC_ACT_OK.
// The observation point comes from tcbox_flowlog_config (the agent sets it per attachment: from-endpoint on a
// pod veth's tc ingress, to-stack on a node's egress, ...).
import { __sk_buff, BPF_MAP_TYPE_ARRAY, map_def, map_lookup, PIN_NONE, TC_ACT_OK, TC_ACT_SHOT } from "tcbox";
import { bpf_mono_now, ct_lookup, ct_tuple_set } from "./lib/conntrack";
import { ipv4_ct_tuple, TUPLE_F_OUT } from "./lib/conntrack_map";
import { emit_flow, OBS_TO_STACK, VERDICT_DROPPED, VERDICT_FORWARDED } from "./lib/flow";
import { identity_of } from "./lib/policy";
import { parse_ipv4, PARSE_NOT_IPV4, pkt_daddr, pkt_dport, pkt_nexthdr, pkt_saddr, pkt_sport, pkt_tcp_flags } from "./lib/parse";

/** Per-attachment configuration (not pinned: each loaded flowlog has its own). */
@unmanaged
class flowlog_config {
  obs_point: u32; // OBS_* (0: OBS_TO_STACK)
}

const CONFIG = map_def<u32, flowlog_config>(BPF_MAP_TYPE_ARRAY, 1, "tcbox_flowlog_config", PIN_NONE);
const tuple = changetype<ipv4_ct_tuple>(memory.data(offsetof<ipv4_ct_tuple>()));
const zero = memory.data(4);

export function cls_main(skb: __sk_buff): i32 {
  const reason = <u8>skb.cb0;
  const verdict_code = reason != 0 ? TC_ACT_SHOT : TC_ACT_OK;
  if (parse_ipv4(skb) == PARSE_NOT_IPV4) return verdict_code;
  store<u32>(zero, 0);
  const cfg = map_lookup<flowlog_config>(CONFIG, zero);
  const obs: u8 = cfg == null || cfg.obs_point == 0 ? OBS_TO_STACK : <u8>cfg.obs_point;
  const saddr = pkt_saddr;
  const daddr = pkt_daddr;
  // A reply: its reversed tuple is a tracked connection (and its own tuple is not).
  ct_tuple_set(tuple, saddr, daddr, pkt_sport, pkt_dport, pkt_nexthdr, TUPLE_F_OUT);
  const now = bpf_mono_now();
  let is_reply = false;
  if (ct_lookup(tuple, now) == null) {
    ct_tuple_set(tuple, daddr, saddr, pkt_dport, pkt_sport, pkt_nexthdr, TUPLE_F_OUT);
    is_reply = ct_lookup(tuple, now) != null;
  }
  emit_flow(skb, saddr, daddr, pkt_sport, pkt_dport, pkt_nexthdr, pkt_tcp_flags, identity_of(saddr), identity_of(daddr),
    reason != 0 ? VERDICT_DROPPED : VERDICT_FORWARDED, reason, obs, is_reply);
  if (reason != 0) skb.tcbox_drop_reason = reason;
  return verdict_code;
}
