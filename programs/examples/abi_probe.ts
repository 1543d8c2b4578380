// abi_probe: reports the SDK's view of the memory contract so a test can compare it with src/ebpf/abi.ts.
import {
  __sk_buff, CB_BATCH_INDEX, CB_BUDGET, CB_CPU, CB_HASHRND, CB_KTIME, CB_PRANDOM, CB_SCRATCH, CB_TRAP_REASON, CTX_BASE,
  CTX_SIZE, PKT_BASE, PKT_ARENA, BATCH_MAX, M_ELEMS, M_LRU_TAIL, M_NCPUS, LPM_HDR_SIZE, RB_DROPPED, E_KEY, TC_ACT_OK,
} from "tcbox";

const out = memory.data(128);

/** Writes the constants at the address in cb0 order; returns the address of the table in mark. */
export function cls_main(skb: __sk_buff): i32 {
  store<u32>(out, <u32>offsetof<__sk_buff>("data"), 0);
  store<u32>(out, <u32>offsetof<__sk_buff>("data_end"), 4);
  store<u32>(out, <u32>offsetof<__sk_buff>("hwtstamp"), 8);
  store<u32>(out, <u32>offsetof<__sk_buff>("tcbox_retval"), 12);
  store<u32>(out, <u32>offsetof<__sk_buff>("tcbox_redirect_ifindex"), 16);
  store<u32>(out, <u32>offsetof<__sk_buff>("tcbox_drop_reason"), 20);
  store<u32>(out, <u32>offsetof<__sk_buff>("tcbox_tail_calls"), 24);
  store<u32>(out, <u32>offsetof<__sk_buff>("cb0"), 28);
  store<u32>(out, <u32>offsetof<__sk_buff>("mark"), 32);
  store<u32>(out, <u32>CB_TRAP_REASON, 36);
  store<u32>(out, <u32>CB_BATCH_INDEX, 40);
  store<u32>(out, <u32>CB_BUDGET, 44);
  store<u32>(out, <u32>CB_CPU, 48);
  store<u32>(out, <u32>CB_KTIME, 52);
  store<u32>(out, <u32>CB_PRANDOM, 56);
  store<u32>(out, <u32>CB_HASHRND, 60);
  store<u32>(out, <u32>CB_SCRATCH, 64);
  store<u32>(out, <u32>CTX_BASE, 68);
  store<u32>(out, <u32>CTX_SIZE, 72);
  store<u32>(out, <u32>PKT_BASE, 76);
  store<u32>(out, <u32>PKT_ARENA, 80);
  store<u32>(out, BATCH_MAX, 84);
  store<u32>(out, M_ELEMS, 88);
  store<u32>(out, M_LRU_TAIL, 92);
  store<u32>(out, M_NCPUS, 96);
  store<u32>(out, LPM_HDR_SIZE, 100);
  store<u32>(out, RB_DROPPED, 104);
  store<u32>(out, E_KEY, 108);
  store<u32>(out, <u32>offsetof<__sk_buff>(), 112);
  skb.mark = <u32>out;
  return TC_ACT_OK;
}
