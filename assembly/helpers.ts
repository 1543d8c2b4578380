// Helpers that are not about maps, packets or checksums: redirects, randomness, time, flow hash, tail calls,
// bpf_printk. Only tail calls and bpf_printk call the host; the rest reads or writes the control block.
import { CB_CPU, CB_HASHRND, CB_KTIME, CB_PRANDOM, SHARED_MEMORY } from "./abi";
import { __sk_buff, TC_ACT_REDIRECT, TC_ACT_SHOT } from "./ctx";
import { jhash_3words } from "./jhash";
import { MapRef, map_def, PIN_NONE } from "./maps";
import { BPF_MAP_TYPE_PROG_ARRAY } from "./map_layout";

/** bpf_redirect() flag: deliver to the target's ingress instead of transmitting on it. */
export const BPF_F_INGRESS: u64 = 1 << 0;
/** tcbox's marker for redirect_peer() in the redirect flags the host reads (the kernel keeps it internal). */
export const BPF_F_PEER: u32 = 1 << 1;
/** MAX_TAIL_CALL_CNT (include/linux/bpf.h). */
export const MAX_TAIL_CALL_CNT: u32 = 33;

/**
 * bpf_redirect(ifindex, flags): returns TC_ACT_REDIRECT and records the target, which the host uses once the
 * program returns that verdict; flags other than BPF_F_INGRESS make it return TC_ACT_SHOT.
 */
export function redirect(skb: __sk_buff, ifindex: u32, flags: u64): i32 {
  if ((flags & ~BPF_F_INGRESS) != 0) return TC_ACT_SHOT;
  skb.tcbox_redirect_ifindex = ifindex;
  skb.tcbox_redirect_flags = <u32>flags;
  return TC_ACT_REDIRECT;
}

/** bpf_redirect_peer(ifindex, flags): to the ingress of the peer of a veth `ifindex` (flags must be 0). */
export function redirect_peer(skb: __sk_buff, ifindex: u32, flags: u64): i32 {
  if (flags != 0) return TC_ACT_SHOT;
  skb.tcbox_redirect_ifindex = ifindex;
  skb.tcbox_redirect_flags = BPF_F_PEER;
  return TC_ACT_REDIRECT;
}

/** bpf_get_prandom_u32(): xoshiro128** over state the host seeds, so runs are reproducible. */
export function get_prandom_u32(): u32 {
  const s0 = load<u32>(CB_PRANDOM);
  const s1 = load<u32>(CB_PRANDOM, 4);
  const s2 = load<u32>(CB_PRANDOM, 8);
  const s3 = load<u32>(CB_PRANDOM, 12);
  const result = rotl<u32>(s1 * 5, 7) * 9;
  const t = s1 << 9;
  const n2 = s2 ^ s0;
  const n3 = s3 ^ s1;
  store<u32>(CB_PRANDOM, s0 ^ n3);
  store<u32>(CB_PRANDOM, s1 ^ n2, 4);
  store<u32>(CB_PRANDOM, n2 ^ t, 8);
  store<u32>(CB_PRANDOM, rotl<u32>(n3, 11), 12);
  return result;
}

/** bpf_ktime_get_ns(): the host's virtual monotonic clock. */
// @ts-ignore: decorator
@inline export function ktime_get_ns(): u64 {
  return load<u64>(CB_KTIME);
}

/**
 * __sync_fetch_and_add(): add `v` to the T at `ptr` (a map value's counter; naturally aligned), returning the old
 * value. An atomic add when the program runs on several CPUs (a shared memory, `tcbox bench --workers`), as the
 * BPF_ATOMIC add it compiles to in the kernel; a plain load and store when one CPU runs everything.
 */
// @ts-ignore: decorator
@inline export function sync_fetch_and_add<T>(ptr: usize, v: T): T {
  if (SHARED_MEMORY) return atomic.add<T>(ptr, v);
  const old = load<T>(ptr);
  store<T>(ptr, old + v);
  return old;
}

/** bpf_get_smp_processor_id(). */
// @ts-ignore: decorator
@inline export function get_smp_processor_id(): u32 {
  return load<u32>(CB_CPU);
}

/**
 * bpf_get_hash_recalc(): the flow hash of the packet (IPv4 addresses, protocol and TCP/UDP/SCTP ports of the
 * first fragment), stored in skb->hash. Same flow, same hash; never 0. The kernel hashes the dissected flow
 * keys with siphash; tcbox uses jhash_3words with a per-kernel random seed: the values differ, the contract
 * (stable per flow, spread across flows) does not.
 */
export function get_hash_recalc(skb: __sk_buff): u32 {
  const data = <usize>skb.data;
  const end = <usize>skb.data_end;
  let h: u32 = 0;
  if (data + 34 <= end && load<u16>(data, 12) == 0x0008) {
    const ip = data + 14;
    const ihl = <usize>(load<u8>(ip) & 15) << 2;
    const proto = <u32>load<u8>(ip, 9);
    let ports: u32 = 0;
    const frag = bswap<u16>(load<u16>(ip, 6)) & 0x1fff;
    if ((proto == 6 || proto == 17 || proto == 132) && frag == 0 && ip + ihl + 4 <= end) ports = load<u32>(ip + ihl);
    h = jhash_3words(load<u32>(ip, 12), load<u32>(ip, 16), ports ^ proto, load<u32>(CB_HASHRND));
  } else {
    h = jhash_3words(<u32>skb.protocol, skb.ifindex, skb.len, load<u32>(CB_HASHRND));
  }
  if (h == 0) h = 1;
  skb.hash = h;
  return h;
}

/** A program array for tail calls; the host (or a loader) puts programs in it: `tcbox` API `setProgram`. */
// @ts-ignore: decorator
@inline export function prog_array_def(max_entries: u32, name: string, pinning: u32 = PIN_NONE): MapRef {
  return map_def<u32, u32>(BPF_MAP_TYPE_PROG_ARRAY, max_entries, name, pinning);
}

// @ts-ignore: decorator
@external("tcbox", "tail_call")
declare function __tail_call(skb: __sk_buff, map: usize, index: u32): i32;

/**
 * bpf_tail_call(skb, prog_array, index): run the program in slot `index` on this packet. In the kernel it does
 * not return when it succeeds; here it returns that program's verdict (>= TC_ACT_UNSPEC), so write
 * `const r = tail_call(skb, CALLS, i); if (r >= TC_ACT_UNSPEC) return r;` and handle the miss after it.
 * A miss (empty slot, index out of range, more than MAX_TAIL_CALL_CNT calls) returns -ENOENT or -E2BIG.
 */
export function tail_call(skb: __sk_buff, map: MapRef, index: u32): i32 {
  return __tail_call(skb, map, index);
}

// @ts-ignore: decorator
@external("tcbox", "trace_printk")
declare function __trace_printk(fmt: string, a: u64, b: u64, c: u64): void;

/** bpf_printk(fmt, ...): %d %u %x %pI4 (an address in network order) and %%; lines go to the host's trace log. */
export function bpf_printk(fmt: string, a: u64 = 0, b: u64 = 0, c: u64 = 0): void {
  __trace_printk(fmt, a, b, c);
}
