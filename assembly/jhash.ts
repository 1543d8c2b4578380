// include/linux/jhash.h: Bob Jenkins' lookup3 as the kernel has it (hash maps, conntrack, Cilium's Maglev and
// flow hashing). Bytes are read as little-endian words like __get_unaligned_cpu32 on x86 and WebAssembly.
export const JHASH_INITVAL: u32 = 0xdeadbeef;

// @ts-ignore: decorator
@inline function rol32(x: u32, k: u32): u32 {
  return rotl<u32>(x, k);
}

// @ts-ignore: decorator
@inline export function jhash_final(a: u32, b: u32, c: u32): u32 {
  c ^= b; c -= rol32(b, 14);
  a ^= c; a -= rol32(c, 11);
  b ^= a; b -= rol32(a, 25);
  c ^= b; c -= rol32(b, 16);
  a ^= c; a -= rol32(c, 4);
  b ^= a; b -= rol32(a, 14);
  c ^= b; c -= rol32(b, 24);
  return c;
}

/** The first n (0..4) bytes at p as a little-endian word. */
// @ts-ignore: decorator
@inline function tail_word(p: usize, n: u32): u32 {
  if (n >= 4) return load<u32>(p);
  if (n == 3) return <u32>load<u16>(p) | (<u32>load<u8>(p, 2) << 16);
  if (n == 2) return <u32>load<u16>(p);
  return n == 1 ? <u32>load<u8>(p) : 0;
}

/** jhash(key, length, initval): hash `length` bytes at `key`. */
export function jhash(key: usize, length: u32, initval: u32): u32 {
  let a: u32 = JHASH_INITVAL + length + initval;
  let b = a;
  let c = a;
  let k = key;
  while (length > 12) {
    a += load<u32>(k);
    b += load<u32>(k, 4);
    c += load<u32>(k, 8);
    // __jhash_mix
    a -= c; a ^= rol32(c, 4); c += b;
    b -= a; b ^= rol32(a, 6); a += c;
    c -= b; c ^= rol32(b, 8); b += a;
    a -= c; a ^= rol32(c, 16); c += b;
    b -= a; b ^= rol32(a, 19); a += c;
    c -= b; c ^= rol32(b, 4); b += a;
    length -= 12;
    k += 12;
  }
  if (length == 0) return c;
  // The C code's fall-through switch adds the last 1..12 bytes as little-endian partial words; whole words
  // are loaded at once (same value on little-endian), only the final partial word byte by byte.
  if (length >= 8) {
    a += load<u32>(k);
    b += load<u32>(k, 4);
    c += tail_word(k + 8, length - 8);
  } else if (length >= 4) {
    a += load<u32>(k);
    b += tail_word(k + 4, length - 4);
  } else {
    a += tail_word(k, length);
  }
  return jhash_final(a, b, c);
}

/** jhash2(k, length, initval): hash `length` 32-bit words at `k`. */
export function jhash2(k: usize, length: u32, initval: u32): u32 {
  let a: u32 = JHASH_INITVAL + (length << 2) + initval;
  let b = a;
  let c = a;
  while (length > 3) {
    a += load<u32>(k);
    b += load<u32>(k, 4);
    c += load<u32>(k, 8);
    a -= c; a ^= rol32(c, 4); c += b;
    b -= a; b ^= rol32(a, 6); a += c;
    c -= b; c ^= rol32(b, 8); b += a;
    a -= c; a ^= rol32(c, 16); c += b;
    b -= a; b ^= rol32(a, 19); a += c;
    c -= b; c ^= rol32(b, 4); b += a;
    length -= 3;
    k += 12;
  }
  if (length == 0) return c;
  if (length >= 3) c += load<u32>(k, 8);
  if (length >= 2) b += load<u32>(k, 4);
  a += load<u32>(k);
  return jhash_final(a, b, c);
}

// @ts-ignore: decorator
@inline function jhash_nwords(a: u32, b: u32, c: u32, initval: u32): u32 {
  a += initval;
  b += initval;
  c += initval;
  return jhash_final(a, b, c);
}
// @ts-ignore: decorator
@inline export function jhash_3words(a: u32, b: u32, c: u32, initval: u32): u32 {
  return jhash_nwords(a, b, c, initval + JHASH_INITVAL + (3 << 2));
}
// @ts-ignore: decorator
@inline export function jhash_2words(a: u32, b: u32, initval: u32): u32 {
  return jhash_nwords(a, b, 0, initval + JHASH_INITVAL + (2 << 2));
}
// @ts-ignore: decorator
@inline export function jhash_1word(a: u32, initval: u32): u32 {
  return jhash_nwords(a, 0, 0, initval + JHASH_INITVAL + (1 << 2));
}
