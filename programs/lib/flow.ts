// Flow events through a ring buffer, the shape Hubble builds its flows from (Cilium's trace and drop
// notifications, bpf/lib/trace.h / drop.h, decoded by the agent: src/k8s/agent/flow-decoder.ts).
import { __sk_buff, ipv4, be16, ktime_get_ns, PIN_GLOBAL_NS, ringbuf_def, ringbuf_reserve, ringbuf_submit } from "tcbox";

/** Hubble's Verdict (flow.proto). */
export const VERDICT_FORWARDED: u8 = 1;
export const VERDICT_DROPPED: u8 = 2;

/** Hubble's TraceObservationPoint (flow.proto). */
export const OBS_TO_PROXY: u8 = 1;
export const OBS_TO_HOST: u8 = 2;
export const OBS_TO_STACK: u8 = 3;
export const OBS_TO_OVERLAY: u8 = 4;
export const OBS_FROM_ENDPOINT: u8 = 5;
export const OBS_FROM_PROXY: u8 = 6;
export const OBS_FROM_HOST: u8 = 7;
export const OBS_FROM_STACK: u8 = 8;
export const OBS_FROM_OVERLAY: u8 = 9;
export const OBS_FROM_NETWORK: u8 = 10;
export const OBS_TO_NETWORK: u8 = 11;
export const OBS_TO_ENDPOINT: u8 = 101;

/** One ring-buffer record. */
@unmanaged
export class flow_event {
  time_ns: u64; // bpf_ktime_get_ns()
  saddr: ipv4; // network order
  daddr: ipv4;
  src_identity: u32;
  dst_identity: u32;
  sport: be16; // network order (ICMP echo: identifier)
  dport: be16;
  nexthdr: u8; // IPPROTO_*
  verdict: u8; // VERDICT_*
  drop_reason: u8; // -DROP_* when dropped (drop_reasons.ts), else 0
  obs_point: u8; // OBS_* (101 does not fit a u8 in Hubble's numbering; stored as 101 here as it fits)
  is_reply: u8; // 1 when the packet is a reply of a tracked connection
  tcp_flags: u8;
  pad: u16;
  ifindex: u32; // the device the hook runs on
  len: u32; // packet length
}

/** Ring of flow events (Cilium: the cilium_events perf buffer; 256 KiB here). */
export const FLOW_RING_SIZE: u32 = 262144;
export const FLOW_RING = ringbuf_def(FLOW_RING_SIZE, "tcbox_flow_events", PIN_GLOBAL_NS);

/** Emit one event; returns false when the ring is full (the event is lost and counted by the ring). */
export function emit_flow(skb: __sk_buff, saddr: u32, daddr: u32, sport: u16, dport: u16, nexthdr: u8, tcp_flags: u8, src_id: u32, dst_id: u32, verdict: u8, reason: u8, obs: u8, is_reply: bool): bool {
  const p = ringbuf_reserve(FLOW_RING, offsetof<flow_event>(), 0);
  if (p == 0) return false;
  const e = changetype<flow_event>(p);
  e.time_ns = ktime_get_ns();
  e.saddr = saddr;
  e.daddr = daddr;
  e.src_identity = src_id;
  e.dst_identity = dst_id;
  e.sport = sport;
  e.dport = dport;
  e.nexthdr = nexthdr;
  e.verdict = verdict;
  e.drop_reason = reason;
  e.obs_point = obs;
  e.is_reply = is_reply ? 1 : 0;
  e.tcp_flags = tcp_flags;
  e.pad = 0;
  e.ifindex = skb.ifindex;
  e.len = skb.len;
  ringbuf_submit(p, 0);
  return true;
}
