// Bob Jenkins' lookup3 hash as the kernel's include/linux/jhash.h has it (jhash2, jhash_3words), on 32-bit
// words in plain numbers: the hash behind conntrack's and many BPF maps' buckets. No allocation.

export const JHASH_INITVAL = 0xdeadbeef;

function rol32(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** jhash2(): hash `length` 32-bit words of `k` from index `at`. Returns an unsigned 32-bit number. */
export function jhash2(k: ArrayLike<number>, at: number, length: number, initval: number): number {
  let a = (JHASH_INITVAL + (length << 2) + initval) | 0;
  let b = a;
  let c = a;
  let i = at;
  while (length > 3) {
    a = (a + k[i]!) | 0;
    b = (b + k[i + 1]!) | 0;
    c = (c + k[i + 2]!) | 0;
    // __jhash_mix
    a = (a - c) | 0; a ^= rol32(c, 4); c = (c + b) | 0;
    b = (b - a) | 0; b ^= rol32(a, 6); a = (a + c) | 0;
    c = (c - b) | 0; c ^= rol32(b, 8); b = (b + a) | 0;
    a = (a - c) | 0; a ^= rol32(c, 16); c = (c + b) | 0;
    b = (b - a) | 0; b ^= rol32(a, 19); a = (a + c) | 0;
    c = (c - b) | 0; c ^= rol32(b, 4); b = (b + a) | 0;
    length -= 3;
    i += 3;
  }
  if (length === 0) return c >>> 0;
  if (length === 3) c = (c + k[i + 2]!) | 0;
  if (length >= 2) b = (b + k[i + 1]!) | 0;
  a = (a + k[i]!) | 0;
  return jhashFinal(a, b, c);
}

/** jhash_3words(): the three-word form conntrack and many helpers use. */
export function jhash3(a: number, b: number, c: number, initval: number): number {
  const iv = (initval + JHASH_INITVAL + (3 << 2)) | 0;
  return jhashFinal((a + iv) | 0, (b + iv) | 0, (c + iv) | 0);
}

/** __jhash_final(a, b, c), returning c as an unsigned 32-bit number. */
export function jhashFinal(a: number, b: number, c: number): number {
  c ^= b; c = (c - rol32(b, 14)) | 0;
  a ^= c; a = (a - rol32(c, 11)) | 0;
  b ^= a; b = (b - rol32(a, 25)) | 0;
  c ^= b; c = (c - rol32(b, 16)) | 0;
  a ^= c; a = (a - rol32(c, 4)) | 0;
  b ^= a; b = (b - rol32(a, 14)) | 0;
  c ^= b; c = (c - rol32(b, 24)) | 0;
  return c >>> 0;
}

function le32(k: Uint8Array, p: number): number {
  return k[p]! | (k[p + 1]! << 8) | (k[p + 2]! << 16) | (k[p + 3]! << 24);
}

/**
 * jhash(): the byte-string form (lookup3's hashlittle on a little-endian CPU, which the kernel reads with
 * __get_unaligned_cpu32). Used for hashing arbitrary bytes, and to check the shared mix/final against lookup3's
 * published vectors.
 */
export function jhash(k: Uint8Array, off: number, length: number, initval: number): number {
  let a = (JHASH_INITVAL + length + initval) | 0;
  let b = a;
  let c = a;
  let i = off;
  while (length > 12) {
    a = (a + le32(k, i)) | 0;
    b = (b + le32(k, i + 4)) | 0;
    c = (c + le32(k, i + 8)) | 0;
    a = (a - c) | 0; a ^= rol32(c, 4); c = (c + b) | 0;
    b = (b - a) | 0; b ^= rol32(a, 6); a = (a + c) | 0;
    c = (c - b) | 0; c ^= rol32(b, 8); b = (b + a) | 0;
    a = (a - c) | 0; a ^= rol32(c, 16); c = (c + b) | 0;
    b = (b - a) | 0; b ^= rol32(a, 19); a = (a + c) | 0;
    c = (c - b) | 0; c ^= rol32(b, 4); b = (b + a) | 0;
    length -= 12;
    i += 12;
  }
  if (length === 0) return c >>> 0;
  // The tail, zero-padded, as the kernel's fall-through switch adds it.
  let ta = 0;
  let tb = 0;
  let tc = 0;
  for (let j = 0; j < length; j++) {
    const v = k[i + j]! << ((j & 3) * 8);
    if (j < 4) ta |= v;
    else if (j < 8) tb |= v;
    else tc |= v;
  }
  return jhashFinal((a + ta) | 0, (b + tb) | 0, (c + tc) | 0);
}
