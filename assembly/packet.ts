// Packet access. Two styles, as in C programs:
//  - checked typed loads and stores at an offset from the start of the packet, in network byte order
//    (load_u16(skb, 12) == ETH_P_IP); an access outside [data, data_end) traps through oob(), which the host
//    counts as an out-of-bounds stop and drops the packet (the kernel's verifier would refuse the program);
//  - direct access through header views, after the bounds check the verifier demands in C
//    (`if (data + sizeof(*ip4) > data_end) return DROP_INVALID;`): header_ptr() returns 0 when out of bounds.
// skb_load_bytes()/skb_store_bytes() behave like the helpers: they return -EFAULT instead of trapping.
import { CB_TRAP_REASON, TRAP_OOB } from "./abi";
import { __sk_buff } from "./ctx";
import { EFAULT, EINVAL } from "./errno";

/** Trap with the out-of-bounds reason; the host drops the packet and counts it. */
// @ts-ignore: decorator
@inline export function oob(): void {
  store<u32>(CB_TRAP_REASON, TRAP_OOB);
  unreachable();
}

// @ts-ignore: decorator
@inline export function bpf_htons(x: u32): u16 {
  return bswap<u16>(<u16>x);
}
// @ts-ignore: decorator
@inline export function bpf_ntohs(x: u32): u16 {
  return bswap<u16>(<u16>x);
}
// @ts-ignore: decorator
@inline export function bpf_htonl(x: u32): u32 {
  return bswap<u32>(x);
}
// @ts-ignore: decorator
@inline export function bpf_ntohl(x: u32): u32 {
  return bswap<u32>(x);
}

/** Address of `size` bytes at `off` in the packet, or 0 when they are not all inside it. */
// @ts-ignore: decorator
@inline export function header_ptr(skb: __sk_buff, off: u32, size: u32): usize {
  const p = <usize>skb.data + <usize>off;
  return p + <usize>size > <usize>skb.data_end || off > 0xffff ? 0 : p;
}

// @ts-ignore: decorator
@inline function checked(skb: __sk_buff, off: u32, size: u32): usize {
  const p = <usize>skb.data + <usize>off;
  if (off > 0xffff || p + <usize>size > <usize>skb.data_end) oob();
  return p;
}

// @ts-ignore: decorator
@inline export function load_u8(skb: __sk_buff, off: u32): u32 {
  return load<u8>(checked(skb, off, 1));
}
// @ts-ignore: decorator
@inline export function load_u16(skb: __sk_buff, off: u32): u32 {
  return bswap<u16>(load<u16>(checked(skb, off, 2)));
}
// @ts-ignore: decorator
@inline export function load_u32(skb: __sk_buff, off: u32): u32 {
  return bswap<u32>(load<u32>(checked(skb, off, 4)));
}
/** The raw (network-order) 32-bit value, as C's `ip4->daddr`: what the checksum helpers take. */
// @ts-ignore: decorator
@inline export function load_be32(skb: __sk_buff, off: u32): u32 {
  return load<u32>(checked(skb, off, 4));
}
// @ts-ignore: decorator
@inline export function load_be16(skb: __sk_buff, off: u32): u32 {
  return load<u16>(checked(skb, off, 2));
}
// @ts-ignore: decorator
@inline export function store_u8(skb: __sk_buff, off: u32, v: u32): void {
  store<u8>(checked(skb, off, 1), <u8>v);
}
// @ts-ignore: decorator
@inline export function store_u16(skb: __sk_buff, off: u32, v: u32): void {
  store<u16>(checked(skb, off, 2), bswap<u16>(<u16>v));
}
// @ts-ignore: decorator
@inline export function store_u32(skb: __sk_buff, off: u32, v: u32): void {
  store<u32>(checked(skb, off, 4), bswap<u32>(v));
}
// @ts-ignore: decorator
@inline export function store_be32(skb: __sk_buff, off: u32, v: u32): void {
  store<u32>(checked(skb, off, 4), v);
}
// @ts-ignore: decorator
@inline export function store_be16(skb: __sk_buff, off: u32, v: u32): void {
  store<u16>(checked(skb, off, 2), <u16>v);
}

/** bpf_skb_load_bytes(): copy `len` packet bytes at `off` to `to`; 0 or -EFAULT. */
export function skb_load_bytes(skb: __sk_buff, off: u32, to: usize, len: u32): i32 {
  if (off > 0xffff || <u64>off + <u64>len > <u64>skb.len) return -EFAULT;
  memory.copy(to, <usize>skb.data + <usize>off, len);
  return 0;
}

/** BPF_F_RECOMPUTE_CSUM / BPF_F_INVALIDATE_HASH: accepted for compatibility; tcbox packets carry full checksums. */
export const BPF_F_RECOMPUTE_CSUM: u64 = 1 << 0;
export const BPF_F_INVALIDATE_HASH: u64 = 1 << 1;

/** bpf_skb_store_bytes(): copy `len` bytes from `from` into the packet at `off`; 0, -EFAULT or -EINVAL. */
export function skb_store_bytes(skb: __sk_buff, off: u32, from: usize, len: u32, flags: u64): i32 {
  if ((flags & ~(BPF_F_RECOMPUTE_CSUM | BPF_F_INVALIDATE_HASH)) != 0) return -EINVAL;
  if (off > 0xffff || <u64>off + <u64>len > <u64>skb.len) return -EFAULT;
  memory.copy(<usize>skb.data + <usize>off, from, len);
  if (flags & BPF_F_INVALIDATE_HASH) skb.hash = 0;
  return 0;
}
