// tail_calls: a dispatcher that jumps through a program array by skb->cb0, as Cilium's bpf_lxc jumps into
// per-protocol programs; slot programs live in the same object here (any loaded program may be put in a slot).
import { __sk_buff, prog_array_def, tail_call, TC_ACT_OK, TC_ACT_SHOT, TC_ACT_UNSPEC, redirect } from "tcbox";

const CALLS = prog_array_def(4, "tail_calls");

export function dispatch(skb: __sk_buff): i32 {
  const r = tail_call(skb, CALLS, skb.cb0);
  if (r >= TC_ACT_UNSPEC) return r;
  skb.mark = <u32>r; // the miss: -ENOENT (empty slot) or -E2BIG (too many tail calls)
  return TC_ACT_SHOT;
}

/** Slot program: redirects to ifindex cb1 after marking the packet. */
export function to_redirect(skb: __sk_buff): i32 {
  skb.mark = 0x77;
  return redirect(skb, skb.cb1, 0);
}

/** Slot program that tail-calls itself forever: stopped by MAX_TAIL_CALL_CNT. */
export function again(skb: __sk_buff): i32 {
  skb.cb2 += 1;
  const r = tail_call(skb, CALLS, skb.cb0);
  if (r >= TC_ACT_UNSPEC) return r;
  skb.mark = <u32>r;
  return TC_ACT_OK;
}
