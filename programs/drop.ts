// drop: every packet is dropped (TC_ACT_SHOT) with a reason, the way Cilium's programs end with
// `return send_drop_notify(ctx, ..., DROP_POLICY_DENIED, ...)`. A per-CPU array counts drops.
import { __sk_buff, BPF_MAP_TYPE_PERCPU_ARRAY, map_def, map_lookup, set_drop_reason, TC_ACT_SHOT } from "tcbox";

/** Cilium's DROP_POLICY_DENIED (bpf/lib/common.h: -133); tcbox counts drops by this reason. */
export const DROP_POLICY_DENIED: u32 = 133;

@unmanaged
class DropCount {
  packets: u64;
  bytes: u64;
}

const DROP_STATS = map_def<u32, DropCount>(BPF_MAP_TYPE_PERCPU_ARRAY, 1, "drop_stats");
const key = memory.data(4);

export function cls_main(skb: __sk_buff): i32 {
  store<u32>(key, 0);
  const c = map_lookup<DropCount>(DROP_STATS, key);
  if (c != null) {
    c.packets += 1;
    c.bytes += skb.len;
  }
  set_drop_reason(skb, DROP_POLICY_DENIED);
  return TC_ACT_SHOT;
}
