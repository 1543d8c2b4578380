// cilium_metrics: packets and bytes per (reason, direction), a per-CPU hash every program updates on a drop
// (bpf/lib/metrics.h update_metrics). Pinned, so lb4, policy and snat count into one map like Cilium's
// programs do; the agent sums the CPUs (`cilium bpf metrics list`).
import { __sk_buff, BPF_MAP_TYPE_PERCPU_HASH, BPF_NOEXIST, map_def, map_lookup, map_update_elem, PIN_GLOBAL_NS, set_drop_reason, TC_ACT_SHOT } from "tcbox";

/** struct metrics_key. */
@unmanaged
export class metrics_key {
  reason: u8; // 0 = forwarded, else -DROP_* (drop_reasons.ts)
  dir: u8; // METRIC_INGRESS / METRIC_EGRESS / METRIC_SERVICE
  pad: u16; // zero: part of the hashed key
}

/** struct metrics_value. */
@unmanaged
export class metrics_value {
  count: u64; // packets
  bytes: u64; // bytes (skb->len)
}

export const METRICS_MAP = map_def<metrics_key, metrics_value>(BPF_MAP_TYPE_PERCPU_HASH, 1024, "cilium_metrics", PIN_GLOBAL_NS);

const mkey = changetype<metrics_key>(memory.data(offsetof<metrics_key>()));
const mval = changetype<metrics_value>(memory.data(offsetof<metrics_value>()));

/** update_metrics(): count one packet of `bytes` for (reason, dir). */
export function update_metrics(bytes: u32, dir: u8, reason: u8): void {
  mkey.reason = reason;
  mkey.dir = dir;
  mkey.pad = 0;
  const v = map_lookup<metrics_value>(METRICS_MAP, changetype<usize>(mkey));
  if (v != null) {
    v.count += 1;
    v.bytes += bytes;
    return;
  }
  mval.count = 1;
  mval.bytes = bytes;
  map_update_elem(METRICS_MAP, changetype<usize>(mkey), changetype<usize>(mval), BPF_NOEXIST);
}

/** send_drop_notify() without the event (flow.ts adds it): count the drop, give the reason, TC_ACT_SHOT. */
export function drop_packet(skb: __sk_buff, reason: u8, dir: u8): i32 {
  update_metrics(skb.len, dir, reason);
  set_drop_reason(skb, reason);
  return TC_ACT_SHOT;
}
