// runaway: loops forever on packets marked 1 (the kernel's verifier would reject it; tcbox stops it with the
// instruction budget), passes the others. The packet it was on is dropped and counted as "budget".
import { __sk_buff, TC_ACT_OK } from "tcbox";

export function cls_main(skb: __sk_buff): i32 {
  let n: u32 = 0;
  while (skb.mark == 1) {
    n++;
    skb.cb0 = n; // a side effect, so the loop is not optimised away
  }
  return TC_ACT_OK;
}

/** Deep recursion: exhausts the budget through function entries instead of loop iterations. */
export function recurse(skb: __sk_buff): i32 {
  return skb.mark == 0 ? TC_ACT_OK : recurse_n(skb, skb.mark) & 0;
}

function recurse_n(skb: __sk_buff, n: u32): i32 {
  if (n == 0) return 0;
  skb.cb1 = n;
  return recurse_n(skb, n - 1) + 1;
}
