// jhash() over bytes (include/linux/jhash.h), the hash of the map buckets: the same function the SDK runs in
// WebAssembly (assembly/jhash.ts), so host and program find the same bucket. Words are little-endian.
import { jhashFinal, JHASH_INITVAL } from "../../packet/jhash.js";

function rol32(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

function word(k: Uint8Array, i: number): number {
  return k[i]! | (k[i + 1]! << 8) | (k[i + 2]! << 16) | (k[i + 3]! << 24);
}

export function jhashBytes(k: Uint8Array, off: number, length: number, initval: number): number {
  let a = (JHASH_INITVAL + length + initval) | 0;
  let b = a;
  let c = a;
  let p = off;
  while (length > 12) {
    a = (a + word(k, p)) | 0;
    b = (b + word(k, p + 4)) | 0;
    c = (c + word(k, p + 8)) | 0;
    a = (a - c) | 0; a ^= rol32(c, 4); c = (c + b) | 0;
    b = (b - a) | 0; b ^= rol32(a, 6); a = (a + c) | 0;
    c = (c - b) | 0; c ^= rol32(b, 8); b = (b + a) | 0;
    a = (a - c) | 0; a ^= rol32(c, 16); c = (c + b) | 0;
    b = (b - a) | 0; b ^= rol32(a, 19); a = (a + c) | 0;
    c = (c - b) | 0; c ^= rol32(b, 4); b = (b + a) | 0;
    length -= 12;
    p += 12;
  }
  if (length === 0) return c >>> 0;
  // The C switch falls through from `length` down to 1.
  if (length >= 12) c = (c + (k[p + 11]! << 24)) | 0;
  if (length >= 11) c = (c + (k[p + 10]! << 16)) | 0;
  if (length >= 10) c = (c + (k[p + 9]! << 8)) | 0;
  if (length >= 9) c = (c + k[p + 8]!) | 0;
  if (length >= 8) b = (b + (k[p + 7]! << 24)) | 0;
  if (length >= 7) b = (b + (k[p + 6]! << 16)) | 0;
  if (length >= 6) b = (b + (k[p + 5]! << 8)) | 0;
  if (length >= 5) b = (b + k[p + 4]!) | 0;
  if (length >= 4) a = (a + (k[p + 3]! << 24)) | 0;
  if (length >= 3) a = (a + (k[p + 2]! << 16)) | 0;
  if (length >= 2) a = (a + (k[p + 1]! << 8)) | 0;
  a = (a + k[p]!) | 0;
  return jhashFinal(a, b, c);
}
