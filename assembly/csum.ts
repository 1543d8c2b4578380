// Checksum helpers with the kernel's semantics (net/core/filter.c, include/net/checksum.h). Values are raw
// network-order words as they sit in the packet (C's `ip4->daddr`, i.e. load_be32()), like __be32 in C; the
// one's-complement arithmetic does not care about byte order as long as all operands share it.
// tcbox packets carry complete checksums (ip_summed == CHECKSUM_NONE), so BPF_F_PSEUDO_HDR changes nothing in the
// arithmetic: the pseudo-header words are part of the TCP/UDP checksum field the helper rewrites.
import { __sk_buff } from "./ctx";
import { EFAULT, EINVAL } from "./errno";

export const BPF_F_HDR_FIELD_MASK: u64 = 0xf;
export const BPF_F_PSEUDO_HDR: u64 = 1 << 4;
export const BPF_F_MARK_MANGLED_0: u64 = 1 << 5;
export const BPF_F_MARK_ENFORCE: u64 = 1 << 6;
/** CSUM_MANGLED_0: a UDP checksum that folds to 0 is sent as 0xffff (0 means "no checksum"). */
export const CSUM_MANGLED_0: u16 = 0xffff;

// @ts-ignore: decorator
@inline export function csum_add(a: u32, b: u32): u32 {
  const r = a + b;
  return r + <u32>(r < b);
}
// @ts-ignore: decorator
@inline export function csum_sub(a: u32, b: u32): u32 {
  return csum_add(a, ~b);
}
/** csum_fold(): fold a 32-bit sum to 16 bits and complement it. */
// @ts-ignore: decorator
@inline export function csum_fold(csum: u32): u16 {
  let s = (csum & 0xffff) + (csum >> 16);
  s = (s & 0xffff) + (s >> 16);
  return <u16>~s;
}
// @ts-ignore: decorator
@inline function csum16_add(csum: u16, addend: u16): u16 {
  const res = <u16>(csum + addend);
  return <u16>(res + <u16>(res < addend));
}

/** csum_replace4(): fix the 16-bit checksum at `sum` for a 32-bit word changing from `from` to `to`. */
// @ts-ignore: decorator
@inline export function csum_replace4(sum: usize, from: u32, to: u32): void {
  const tmp = csum_sub(~(<u32>load<u16>(sum)), from);
  store<u16>(sum, csum_fold(csum_add(tmp, to)));
}
/** csum_replace2(): the same for a 16-bit word. */
// @ts-ignore: decorator
@inline export function csum_replace2(sum: usize, from: u32, to: u32): void {
  const s = <u16>~load<u16>(sum);
  store<u16>(sum, <u16>~csum16_add(csum16_add(s, <u16>~(<u16>from)), <u16>to));
}
/** csum_replace_by_diff(): apply a 32-bit difference as csum_diff() returns it. */
// @ts-ignore: decorator
@inline export function csum_replace_by_diff(sum: usize, diff: u32): void {
  store<u16>(sum, csum_fold(csum_add(diff, ~(<u32>load<u16>(sum)))));
}

// @ts-ignore: decorator
@inline function csum_field(skb: __sk_buff, offset: u32): usize {
  // kernel: offset > 0xffff or odd -> -EFAULT; bpf_try_make_writable(skb, offset + 2) fails past the end.
  if (offset > 0xffff || (offset & 1) != 0 || offset + 2 > skb.len) return 0;
  return <usize>skb.data + <usize>offset;
}

/**
 * bpf_l3_csum_replace(skb, offset, from, to, flags): fix the IP header checksum at `offset` after a field
 * changed from `from` to `to`; the field size (2 or 4, or 0 for a csum_diff() result in `to`) is in the low
 * bits of flags. Returns 0, -EINVAL or -EFAULT.
 */
// @ts-ignore: decorator
@inline export function l3_csum_replace(skb: __sk_buff, offset: u32, from: u64, to: u64, flags: u64): i32 {
  if ((flags & ~BPF_F_HDR_FIELD_MASK) != 0) return -EINVAL;
  const ptr = csum_field(skb, offset);
  if (ptr == 0) return -EFAULT;
  switch (<u32>(flags & BPF_F_HDR_FIELD_MASK)) {
    case 0:
      if (from != 0) return -EINVAL;
      csum_replace_by_diff(ptr, <u32>to);
      break;
    case 2:
      csum_replace2(ptr, <u32>from, <u32>to);
      break;
    case 4:
      csum_replace4(ptr, <u32>from, <u32>to);
      break;
    default:
      return -EINVAL;
  }
  return 0;
}

/**
 * bpf_l4_csum_replace(skb, offset, from, to, flags): the same for a TCP/UDP checksum; BPF_F_PSEUDO_HDR when
 * the field is part of the pseudo-header (an address), BPF_F_MARK_MANGLED_0 for UDP (leave a zero checksum
 * alone, write 0xffff for a result of 0).
 */
// @ts-ignore: decorator
@inline export function l4_csum_replace(skb: __sk_buff, offset: u32, from: u64, to: u64, flags: u64): i32 {
  if ((flags & ~(BPF_F_MARK_MANGLED_0 | BPF_F_MARK_ENFORCE | BPF_F_PSEUDO_HDR | BPF_F_HDR_FIELD_MASK)) != 0) return -EINVAL;
  const ptr = csum_field(skb, offset);
  if (ptr == 0) return -EFAULT;
  const mmzero = (flags & BPF_F_MARK_MANGLED_0) != 0;
  if (mmzero && (flags & BPF_F_MARK_ENFORCE) == 0 && load<u16>(ptr) == 0) return 0;
  switch (<u32>(flags & BPF_F_HDR_FIELD_MASK)) {
    case 0:
      if (from != 0) return -EINVAL;
      csum_replace_by_diff(ptr, <u32>to);
      break;
    case 2:
      csum_replace2(ptr, <u32>from, <u32>to);
      break;
    case 4:
      csum_replace4(ptr, <u32>from, <u32>to);
      break;
    default:
      return -EINVAL;
  }
  if (mmzero && load<u16>(ptr) == 0) store<u16>(ptr, CSUM_MANGLED_0);
  return 0;
}

/**
 * bpf_csum_diff(from, from_size, to, to_size, seed): the one's-complement sum of `to` minus `from` plus seed,
 * folded to 16 bits as current kernels return it (sizes are multiples of 4; at most 512 bytes together).
 * Feed it to the replace helpers with a field size of 0. Returns the sum, or -EINVAL.
 */
export function csum_diff(from: usize, from_size: u32, to: usize, to_size: u32, seed: u32): i64 {
  if (((from_size | to_size) & 3) != 0 || from_size + to_size > 512) return -EINVAL;
  // csum_partial() over [~from..., to...]: 64-bit accumulation folded with end-around carries.
  let acc: u64 = <u64>seed;
  for (let i: u32 = 0; i < from_size; i += 4) {
    const w: u32 = ~load<u32>(from + i); // complement as 32 bits (a cast around it would complement 64)
    acc += <u64>w;
  }
  for (let i: u32 = 0; i < to_size; i += 4) acc += <u64>load<u32>(to + i);
  acc = (acc & 0xffffffff) + (acc >> 32);
  acc = (acc & 0xffffffff) + (acc >> 32);
  // Current kernels fold the result to 16 bits (csum_from32to16, the same on every architecture); the
  // test/kernel differential test holds this against BPF_PROG_TEST_RUN.
  let s = <u32>acc;
  s = (s & 0xffff) + (s >> 16);
  s = (s & 0xffff) + (s >> 16);
  return <i64>s;
}
