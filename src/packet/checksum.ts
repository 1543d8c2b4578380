// The Internet checksum (RFC 1071) and its incremental update (RFC 1624), as the kernel's csum_* helpers.
// Sums are carried as plain numbers below 2^32 and folded to 16 bits at the end; nothing allocates.

/** One's-complement sum of `len` bytes at `off`, added to `initial` (unfolded, < 2^32 for any packet size). */
export function csumPartial(buf: Uint8Array, off: number, len: number, initial = 0): number {
  let sum = initial;
  const end = off + len;
  let i = off;
  // Eight bytes per step: the two-byte words are summed in any order (RFC 1071 2(B) commutativity).
  for (; i + 7 < end; i += 8) {
    sum += ((buf[i]! << 8) | buf[i + 1]!) + ((buf[i + 2]! << 8) | buf[i + 3]!) + ((buf[i + 4]! << 8) | buf[i + 5]!) + ((buf[i + 6]! << 8) | buf[i + 7]!);
  }
  for (; i + 1 < end; i += 2) sum += (buf[i]! << 8) | buf[i + 1]!;
  if (i < end) sum += buf[i]! << 8; // odd trailing byte is padded with zero
  // Fold early enough that the sum never leaves the exact-integer range.
  return (sum & 0xffff) + Math.floor(sum / 0x10000);
}

/** Fold a 32-bit sum to 16 bits (end-around carry), without complementing. */
export function csumFold(sum: number): number {
  sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  sum = (sum & 0xffff) + (sum >>> 16);
  return (sum & 0xffff) + (sum >>> 16);
}

/** The checksum field value: complement of the folded sum. */
export function csumFinish(sum: number): number {
  return ~csumFold(sum) & 0xffff;
}

/** Sum of the IPv4 pseudo-header used by TCP and UDP (RFC 793/768). */
export function pseudoHeaderSum(src: number, dst: number, proto: number, l4len: number): number {
  return (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff) + proto + l4len;
}

/** Checksum of an IPv4 header of `ihlBytes` bytes at `off`, computed with its own checksum field taken as zero. */
export function ipv4HeaderChecksum(buf: Uint8Array, off: number, ihlBytes: number): number {
  // Adding the complement of the stored field removes it from the sum (one's-complement subtraction).
  const field = (buf[off + 10]! << 8) | buf[off + 11]!;
  return csumFinish(csumPartial(buf, off, ihlBytes) + (~field & 0xffff));
}

/**
 * TCP or UDP checksum over `l4len` bytes at `off` with the pseudo-header, the checksum field (at `off + csumOff`)
 * taken as zero. For UDP a result of 0 is sent as 0xffff (RFC 768); callers writing UDP use `udpChecksumValue`.
 */
export function l4Checksum(buf: Uint8Array, off: number, l4len: number, csumOff: number, src: number, dst: number, proto: number): number {
  const field = (buf[off + csumOff]! << 8) | buf[off + csumOff + 1]!;
  return csumFinish(csumPartial(buf, off, l4len, pseudoHeaderSum(src, dst, proto, l4len)) + (~field & 0xffff));
}

export function udpChecksumValue(computed: number): number {
  return computed === 0 ? 0xffff : computed;
}

/**
 * RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'), for a 16-bit field changing from `from` to `to`.
 * Like the kernel's csum_replace2.
 */
export function csumReplace16(check: number, from: number, to: number): number {
  let sum = (~check & 0xffff) + (~from & 0xffff) + (to & 0xffff);
  // The sum is below 2^18: two end-around carries fold it exactly (no division needed on this hot path).
  sum = (sum & 0xffff) + (sum >>> 16);
  return ~((sum & 0xffff) + (sum >>> 16)) & 0xffff;
}

/** The same for a 32-bit field (an address), like the kernel's csum_replace4. */
export function csumReplace32(check: number, from: number, to: number): number {
  let sum =
    (~check & 0xffff) + (~(from >>> 16) & 0xffff) + (~from & 0xffff) + ((to >>> 16) & 0xffff) + (to & 0xffff);
  sum = (sum & 0xffff) + (sum >>> 16);
  return ~((sum & 0xffff) + (sum >>> 16)) & 0xffff;
}

/** Read and write a 16-bit big-endian field (checksums, ports) without a DataView. */
export function get16(buf: Uint8Array, off: number): number {
  return (buf[off]! << 8) | buf[off + 1]!;
}

export function set16(buf: Uint8Array, off: number, v: number): void {
  buf[off] = (v >>> 8) & 255;
  buf[off + 1] = v & 255;
}

export function get32(buf: Uint8Array, off: number): number {
  return ((buf[off]! << 24) | (buf[off + 1]! << 16) | (buf[off + 2]! << 8) | buf[off + 3]!) >>> 0;
}

export function set32(buf: Uint8Array, off: number, v: number): void {
  buf[off] = (v >>> 24) & 255;
  buf[off + 1] = (v >>> 16) & 255;
  buf[off + 2] = (v >>> 8) & 255;
  buf[off + 3] = v & 255;
}
