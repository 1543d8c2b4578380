// Conntrack logic (bpf/lib/conntrack.h): look a tuple up, reverse it for replies, create and refresh entries.
// Time is bpf_mono_now(): seconds of the kernel's monotonic clock (tcbox: the host's virtual clock).
import { __sk_buff, BPF_ANY, IPPROTO_TCP, ktime_get_ns, map_lookup, map_lookup_key, map_update_elem, sync_fetch_and_add } from "tcbox";
import {
  CT_CLOSE_TIMEOUT, CT_CONNECTION_LIFETIME_NONTCP, CT_CONNECTION_LIFETIME_TCP, CT_F_RX_CLOSING, CT_F_SEEN_NON_SYN,
  CT_F_TX_CLOSING, CT_MAP, CT_SYN_TIMEOUT, ct_entry, ipv4_ct_tuple, TUPLE_F_SERVICE,
} from "./conntrack_map";

export const TCP_FLAG_FIN: u8 = 0x01;
export const TCP_FLAG_SYN: u8 = 0x02;
export const TCP_FLAG_RST: u8 = 0x04;
export const TCP_FLAG_ACK: u8 = 0x10;

/**
 * bpf_mono_now(): seconds, ktime_get_ns() / NSEC_PER_SEC without a 64-bit division (a real `div` costs several
 * ns a packet): ns / 10^9 = ((ns >> 9) * M) >> (64 + 20) with M = ceil(2^84 / 1953125) (10^9 = 2^9 * 1953125),
 * exact for every u64 (Granlund-Montgomery: ns >> 9 < 2^55 and M * 1953125 - 2^84 < 2^(84 - 55)).
 */
// @ts-ignore: decorator
@inline export function bpf_mono_now(): u32 {
  return <u32>(mulhi64(ktime_get_ns() >> 9, 9903520314283042200) >> 20);
}

/** The high 64 bits of the 128-bit product a * b. */
// @ts-ignore: decorator
@inline function mulhi64(a: u64, b: u64): u64 {
  const al = a & 0xffffffff;
  const ah = a >> 32;
  const bl = b & 0xffffffff;
  const bh = b >> 32;
  const hl = ah * bl;
  const cross = ((al * bl) >> 32) + (hl & 0xffffffff) + al * bh; // < 2^64: no carry lost
  return (hl >> 32) + (cross >> 32) + ah * bh;
}

// Tuples are written and swapped as two 64-bit words, not field by field: the map helpers read keys as whole
// words (jhash, key compare), and a wide load of bytes just written by narrower stores cannot be forwarded from
// the store buffer (a stall of about 10-15 cycles per lookup on x86).
// ipv4_ct_tuple: daddr (0), saddr (4), dport (8), sport (10), nexthdr (12), flags (13), pad (14).

/** Fill `t` from packet fields (addresses and ports raw, network order). */
// @ts-ignore: decorator
@inline export function ct_tuple_set(t: ipv4_ct_tuple, saddr: u32, daddr: u32, sport: u16, dport: u16, nexthdr: u8, flags: u8): void {
  const p = changetype<usize>(t);
  store<u64>(p, <u64>daddr | (<u64>saddr << 32));
  store<u64>(p, <u64>dport | (<u64>sport << 16) | (<u64>nexthdr << 32) | (<u64>flags << 40), 8);
}

/** Swap the tuple's directions in place (ipv4_ct_tuple_reverse). */
// @ts-ignore: decorator
@inline export function ct_tuple_reverse(t: ipv4_ct_tuple): void {
  const p = changetype<usize>(t);
  store<u64>(p, rotr<u64>(load<u64>(p), 32));
  const w = load<u64>(p, 8);
  store<u64>(p, (w & 0xffffffff00000000) | <u64>rotr<u32>(<u32>w, 16), 8);
}

/** The live entry for `t`, or null (an expired one counts as gone: Cilium's GC would have removed it). */
export function ct_lookup(t: ipv4_ct_tuple, now: u32): ct_entry | null {
  const e = map_lookup_key<ipv4_ct_tuple, ct_entry>(CT_MAP, changetype<usize>(t));
  if (e == null || e.lifetime < now) return null;
  return e;
}

/** Lifetime for a packet of the connection (ct_update_timeout): SYN-only and closing states are short. */
// @ts-ignore: decorator
@inline export function ct_lifetime(nexthdr: u8, tcp_flags: u8, e_flags: u16): u32 {
  if (nexthdr != IPPROTO_TCP) return CT_CONNECTION_LIFETIME_NONTCP;
  if ((e_flags & (CT_F_RX_CLOSING | CT_F_TX_CLOSING)) != 0) return CT_CLOSE_TIMEOUT;
  return (e_flags & CT_F_SEEN_NON_SYN) != 0 ? CT_CONNECTION_LIFETIME_TCP : CT_SYN_TIMEOUT;
}

/**
 * Account a packet on a live entry; `reply` says which side sent it. As Cilium's __ct_update_timeout, the seen
 * TCP flags and the state flags are written only when a packet adds a bit, so the established packets of a
 * connection write the counters and the lifetime only.
 */
// @ts-ignore: decorator
@inline export function ct_update(e: ct_entry, nexthdr: u8, tcp_flags: u8, reply: bool, bytes: u32, now: u32): void {
  // Counters as Cilium adds them (__sync_fetch_and_add): two CPUs may account packets of one connection at once.
  sync_fetch_and_add<u64>(changetype<usize>(e) + offsetof<ct_entry>("packets"), 1);
  sync_fetch_and_add<u64>(changetype<usize>(e) + offsetof<ct_entry>("bytes"), <u64>bytes);
  if (nexthdr != IPPROTO_TCP) {
    e.lifetime = now + CT_CONNECTION_LIFETIME_NONTCP;
    return;
  }
  const f0 = e.flags;
  let f = f0;
  if ((tcp_flags & TCP_FLAG_SYN) == 0) f |= CT_F_SEEN_NON_SYN;
  if ((tcp_flags & (TCP_FLAG_FIN | TCP_FLAG_RST)) != 0) f |= reply ? CT_F_RX_CLOSING : CT_F_TX_CLOSING;
  if (f != f0) e.flags = f;
  if (reply) {
    const seen = e.rx_flags_seen;
    if ((seen | tcp_flags) != seen) e.rx_flags_seen = seen | tcp_flags;
  } else {
    const seen = e.tx_flags_seen;
    if ((seen | tcp_flags) != seen) e.tx_flags_seen = seen | tcp_flags;
  }
  e.lifetime = now + ct_lifetime(nexthdr, tcp_flags, f);
}

const scratch = changetype<ct_entry>(memory.data(offsetof<ct_entry>()));

/** ct_create4(): a new entry for `t`; returns 0 or the map's negative errno. */
export function ct_create(t: ipv4_ct_tuple, nexthdr: u8, tcp_flags: u8, bytes: u32, now: u32, backend_id: u32, rev_nat_index: u32, flags: u16, src_sec_id: u32): i32 {
  // The 40-byte entry as ct_update() leaves a zeroed one after this first packet, written in five whole words:
  // the map helper copies it with 8-byte loads, which narrower stores just before would stall (store
  // forwarding), and memory.fill would be a call out of the engine's compiled code.
  // ct_entry: packets (0), bytes (8), lifetime (16), backend_id (20), rev_nat_index (24), src_sec_id (28),
  // flags (32), tx_flags_seen (34), rx_flags_seen (35), last_report (36).
  if (offsetof<ct_entry>() != 40 || offsetof<ct_entry>("flags") != 32 || offsetof<ct_entry>("tx_flags_seen") != 34) unreachable(); // (folded away)
  let f = flags;
  let tx: u8 = 0;
  if (nexthdr == IPPROTO_TCP) {
    tx = tcp_flags;
    if ((tcp_flags & TCP_FLAG_SYN) == 0) f |= CT_F_SEEN_NON_SYN;
    if ((tcp_flags & (TCP_FLAG_FIN | TCP_FLAG_RST)) != 0) f |= CT_F_TX_CLOSING;
  }
  const lifetime = now + ct_lifetime(nexthdr, tcp_flags, f);
  const z = changetype<usize>(scratch);
  store<u64>(z, 1);
  store<u64>(z, <u64>bytes, 8);
  store<u64>(z, <u64>lifetime | (<u64>backend_id << 32), 16);
  store<u64>(z, <u64>rev_nat_index | (<u64>src_sec_id << 32), 24);
  store<u64>(z, <u64>f | (<u64>tx << 16), 32);
  return map_update_elem(CT_MAP, changetype<usize>(t), changetype<usize>(scratch), BPF_ANY);
}

// The service a packet was load-balanced through, handed from lb4 to policy in the same hook's chain (Cilium
// passes CT state between its tail calls in skb->cb / the ct tail-call buffer). cb[0] is the chain's drop reason
// (flowlog), so lb4 uses cb[1] (frontend address, network order) and cb[2] (CB_SVC_VALID | frontend port,
// network order). lb4 writes both on every packet before anything else, so policy never sees a value left
// from another packet; the tc runtime also starts every hook run with a zeroed cb.
export const CB_SVC_VALID: u32 = 1 << 31;

// @ts-ignore: decorator
@inline export function ct_svc_meta_clear(skb: __sk_buff): void {
  skb.cb1 = 0;
  skb.cb2 = 0;
}

// @ts-ignore: decorator
@inline export function ct_svc_meta_store(skb: __sk_buff, frontend: u32, fport: u16): void {
  skb.cb1 = frontend;
  skb.cb2 = CB_SVC_VALID | <u32>fport;
}

/**
 * The TUPLE_F_SERVICE entry (client -> frontend) of the packet lb4 just translated (saddr:sport is the client),
 * or null when lb4 did not load-balance it.
 */
export function ct_svc_meta_entry(skb: __sk_buff, t: ipv4_ct_tuple, saddr: u32, sport: u16, nexthdr: u8, now: u32): ct_entry | null {
  const m = skb.cb2;
  if ((m & CB_SVC_VALID) == 0) return null;
  ct_tuple_set(t, saddr, skb.cb1, sport, <u16>(m & 0xffff), nexthdr, TUPLE_F_SERVICE);
  return ct_lookup(t, now);
}
