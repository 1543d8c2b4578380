// oob: reads a 32-bit word at skb.cb0 bytes into the packet with the checked accessor; past the end it traps
// (the host counts an out-of-bounds stop and drops the packet). cb0 = 0 reads the first word and passes.
import { __sk_buff, load_u32, skb_load_bytes, TC_ACT_OK, TC_ACT_SHOT } from "tcbox";

export function cls_main(skb: __sk_buff): i32 {
  skb.mark = load_u32(skb, skb.cb0);
  return TC_ACT_OK;
}

/** The helper form does not trap: bpf_skb_load_bytes returns -EFAULT, which the program turns into a verdict. */
export function load_bytes(skb: __sk_buff): i32 {
  const buf = memory.data(8);
  return skb_load_bytes_checked(skb, skb.cb0, buf);
}

function skb_load_bytes_checked(skb: __sk_buff, off: u32, buf: usize): i32 {
  return skb_load_bytes(skb, off, buf, 4) < 0 ? TC_ACT_SHOT : TC_ACT_OK;
}

/** abort(): an assertion that fails when mark is 7 (counted as "abort"). */
export function asserts(skb: __sk_buff): i32 {
  if (skb.mark == 7) abort("mark 7 is not allowed");
  return TC_ACT_OK;
}
