// helpers_probe: calls one helper per entry point with arguments from skb->cb[] and reports the result in
// skb->mark, so tests can hold each helper against its kernel definition (test/ebpf/helpers.test.ts).
import {
  __sk_buff, csum_diff, get_hash_recalc, get_prandom_u32, jhash, jhash2, jhash_1word, jhash_2words, jhash_3words,
  l3_csum_replace, l4_csum_replace, redirect, redirect_peer, ktime_get_ns, TC_ACT_OK, map_def, map_lookup_elem,
  map_update_elem, map_delete_elem, BPF_MAP_TYPE_LPM_TRIE, BPF_MAP_TYPE_ARRAY, BPF_MAP_TYPE_PERCPU_HASH, BPF_ANY,
  ringbuf_def, ringbuf_output, bpf_printk, store_u16, store_u32, load_u16, ipv4,
} from "tcbox";

/** l3_csum_replace(skb, cb0, cb1, cb2, cb3) (from/to as raw network-order words read from the packet). */
export function l3_replace(skb: __sk_buff): i32 {
  skb.mark = <u32>l3_csum_replace(skb, skb.cb0, skb.cb1, skb.cb2, skb.cb3);
  return TC_ACT_OK;
}

/** l4_csum_replace(skb, cb0, cb1, cb2, cb3). */
export function l4_replace(skb: __sk_buff): i32 {
  skb.mark = <u32>l4_csum_replace(skb, skb.cb0, skb.cb1, skb.cb2, skb.cb3);
  return TC_ACT_OK;
}

/** Rewrite the 32-bit word at cb0 to cb1 (host order) and fix the IP checksum at cb2 and the L4 one at cb3 by
 * csum_diff + the size-0 (diff) form of the replace helpers, as Cilium does for multi-word changes. */
export function rewrite_by_diff(skb: __sk_buff): i32 {
  const from = memory.data(4);
  const to = memory.data(4);
  store<u32>(from, load<u32>(<usize>skb.data + skb.cb0));
  store<u32>(to, bswap<u32>(skb.cb1));
  const diff = csum_diff(from, 4, to, 4, 0);
  store_u32(skb, skb.cb0, skb.cb1);
  const a = l3_csum_replace(skb, skb.cb2, 0, diff, 0);
  const b = l4_csum_replace(skb, skb.cb3, 0, diff, 1 << 4);
  skb.mark = <u32>(a | b);
  return TC_ACT_OK;
}

/** csum_diff(data, cb0, data + cb0, cb1, cb2) -> mark (low 32 bits); cb4 = the full i64 sign (1 if negative). */
export function diff(skb: __sk_buff): i32 {
  const r = csum_diff(<usize>skb.data, skb.cb0, <usize>skb.data + skb.cb0, skb.cb1, skb.cb2);
  skb.mark = <u32>r;
  skb.cb4 = r < 0 ? 1 : 0;
  return TC_ACT_OK;
}

/** jhash over the whole packet with initval cb0 -> mark; jhash2 over len/4 words -> cb1; the word forms -> cb2..cb4. */
export function hashes(skb: __sk_buff): i32 {
  const d = <usize>skb.data;
  skb.mark = jhash(d, skb.len, skb.cb0);
  skb.cb1 = jhash2(d, skb.len >> 2, skb.cb0);
  skb.cb2 = jhash_3words(load<u32>(d), load<u32>(d, 4), load<u32>(d, 8), skb.cb0);
  skb.cb3 = jhash_2words(load<u32>(d), load<u32>(d, 4), skb.cb0);
  skb.cb4 = jhash_1word(load<u32>(d), skb.cb0);
  return TC_ACT_OK;
}

/** redirect(cb0, cb1) or, with mark 1, redirect_peer(cb0, cb1). */
export function redir(skb: __sk_buff): i32 {
  return skb.mark == 1 ? redirect_peer(skb, skb.cb0, skb.cb1) : redirect(skb, skb.cb0, skb.cb1);
}

/** prandom -> mark, ktime -> cb0/cb1 (low/high), flow hash -> cb2. */
export function misc(skb: __sk_buff): i32 {
  skb.mark = get_prandom_u32();
  const t = ktime_get_ns();
  skb.cb0 = <u32>t;
  skb.cb1 = <u32>(t >> 32);
  skb.cb2 = get_hash_recalc(skb);
  bpf_printk("len %u from %pI4", skb.len, load<u32>(<usize>skb.data, 26));
  return TC_ACT_OK;
}

// ---- maps from the program side, for cross-checks with the host implementation ----

@unmanaged
class LpmKey4 {
  prefixlen: u32;
  addr: ipv4; // network order
}

const CIDRS = map_def<LpmKey4, u32>(BPF_MAP_TYPE_LPM_TRIE, 64, "probe_cidrs");
const ARR = map_def<u32, u64>(BPF_MAP_TYPE_ARRAY, 8, "probe_array");
const PCPU = map_def<u32, u64>(BPF_MAP_TYPE_PERCPU_HASH, 8, "probe_pcpu");
const EVENTS = ringbuf_def(4096, "probe_events");
const k = changetype<LpmKey4>(memory.data(offsetof<LpmKey4>()));
const k32 = memory.data(4);
const v64 = memory.data(8);

/** Longest-prefix match of the destination address: mark = value, or 0xffffffff when nothing matches. */
export function lpm(skb: __sk_buff): i32 {
  k.prefixlen = 32;
  k.addr = load<u32>(<usize>skb.data, 30);
  const v = map_lookup_elem(CIDRS, changetype<usize>(k));
  skb.mark = v == 0 ? 0xffffffff : load<u32>(v);
  return TC_ACT_OK;
}

/** Array: update index cb0 with cb1 -> mark = result; cb2 = lookup of index cb0 (or 0xffffffff). */
export function array(skb: __sk_buff): i32 {
  store<u32>(k32, skb.cb0);
  store<u64>(v64, skb.cb1);
  skb.mark = <u32>map_update_elem(ARR, k32, v64, BPF_ANY);
  const v = map_lookup_elem(ARR, k32);
  skb.cb2 = v == 0 ? 0xffffffff : <u32>load<u64>(v);
  skb.cb3 = <u32>map_delete_elem(ARR, k32);
  return TC_ACT_OK;
}

/** Per-CPU hash: add cb1 to key cb0 on this CPU. */
export function pcpu(skb: __sk_buff): i32 {
  store<u32>(k32, skb.cb0);
  const v = map_lookup_elem(PCPU, k32);
  if (v != 0) store<u64>(v, load<u64>(v) + skb.cb1);
  else {
    store<u64>(v64, skb.cb1);
    map_update_elem(PCPU, k32, v64, BPF_ANY);
  }
  return TC_ACT_OK;
}

/** Ring buffer: emit the first cb0 bytes of the packet; mark = result. */
export function emit(skb: __sk_buff): i32 {
  skb.mark = <u32>ringbuf_output(EVENTS, <usize>skb.data, skb.cb0, 0);
  return TC_ACT_OK;
}

/** Checked stores: swap the two ports (TCP/UDP at 34), no checksum fix (the test checks bytes only). */
export function swap_ports(skb: __sk_buff): i32 {
  const a = load_u16(skb, 34);
  store_u16(skb, 34, load_u16(skb, 36));
  store_u16(skb, 36, a);
  return TC_ACT_OK;
}
