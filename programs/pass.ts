// pass: the smallest tc program. Every packet continues up the stack unchanged (TC_ACT_OK), counted per
// protocol in a per-CPU array, like a first program one attaches with `tc filter add dev eth0 ingress bpf da`.
import { __sk_buff, BPF_MAP_TYPE_PERCPU_ARRAY, map_def, map_lookup, TC_ACT_OK, ETH_P_IP, bpf_ntohs } from "tcbox";

/** Packets seen: slot 0 = IPv4, slot 1 = everything else. */
@unmanaged
class PassCount {
  packets: u64;
  bytes: u64;
}

const PASS_STATS = map_def<u32, PassCount>(BPF_MAP_TYPE_PERCPU_ARRAY, 2, "pass_stats");
const key = memory.data(4);

export function cls_main(skb: __sk_buff): i32 {
  store<u32>(key, bpf_ntohs(skb.protocol) == ETH_P_IP ? 0 : 1);
  const c = map_lookup<PassCount>(PASS_STATS, key);
  if (c != null) {
    c.packets += 1;
    c.bytes += skb.len;
  }
  return TC_ACT_OK;
}
