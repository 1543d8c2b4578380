// Maglev lookup tables as cilium-agent computes them (pkg/maglev, after Eisenbud et al., "Maglev: A Fast and
// Reliable Software Network Load Balancer", NSDI 2016, section 3.4): each backend has a permutation of the M
// table slots, offset = h1(name) % M and skip = h2(name) % (M - 1) + 1 (M prime, so every skip visits every
// slot); backends take turns claiming their next free preferred slot until the table is full. Removing a
// backend frees only its own slots plus a few others, so almost every flow keeps its backend.
//
// Hashes: Cilium takes h1 and h2 as the two halves of MurmurHash3 x64_128 of the backend's name, seeded from
// --bpf-lb-maglev-hash-seed (base64 of 12 bytes; its first 4 bytes, big-endian, are the murmur seed and the
// datapath's HASH_INIT4_SEED). tcbox does the same with the name "IP:port/PROTO"; the exact string Cilium
// hashes has changed between releases, so tables are Cilium-shaped, not byte-identical to a given release.

/** Cilium's default table size (--bpf-lb-maglev-table-size), one of its allowed primes. */
export const MAGLEV_DEFAULT_M = 16381;
/** The primes Cilium accepts as table sizes (pkg/maglev). */
export const MAGLEV_PRIMES = [251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521, 131071] as const;
/** Cilium's default --bpf-lb-maglev-hash-seed. */
export const MAGLEV_DEFAULT_SEED = "JLfvgnHc2kaSUFaI";

const M64 = (1n << 64n) - 1n;
const C1 = 0x87c37b91114253d5n;
const C2 = 0x4cf5ad432745937fn;
const rotl64 = (x: bigint, r: bigint) => ((x << r) | (x >> (64n - r))) & M64;
function fmix64(k: bigint): bigint {
  k ^= k >> 33n;
  k = (k * 0xff51afd7ed558ccdn) & M64;
  k ^= k >> 33n;
  k = (k * 0xc4ceb9fe1a85ec53n) & M64;
  return k ^ (k >> 33n);
}
function le64(d: Uint8Array, off: number, n = 8): bigint {
  let v = 0n;
  for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(d[off + i]!);
  return v;
}

/** MurmurHash3_x64_128 (Austin Appleby's reference; Go's spaolacci/murmur3 Sum128WithSeed): [h1, h2]. */
export function murmur3x64_128(data: Uint8Array, seed: number): [bigint, bigint] {
  let h1 = BigInt(seed >>> 0);
  let h2 = h1;
  const len = data.length;
  const nblocks = len >> 4;
  for (let i = 0; i < nblocks; i++) {
    let k1 = le64(data, i * 16);
    let k2 = le64(data, i * 16 + 8);
    k1 = (rotl64((k1 * C1) & M64, 31n) * C2) & M64;
    h1 ^= k1;
    h1 = (((rotl64(h1, 27n) + h2) & M64) * 5n + 0x52dce729n) & M64;
    k2 = (rotl64((k2 * C2) & M64, 33n) * C1) & M64;
    h2 ^= k2;
    h2 = (((rotl64(h2, 31n) + h1) & M64) * 5n + 0x38495ab5n) & M64;
  }
  const tail = nblocks * 16;
  const rest = len & 15;
  if (rest > 8) {
    const k2 = le64(data, tail + 8, rest - 8);
    h2 ^= (rotl64((k2 * C2) & M64, 33n) * C1) & M64;
  }
  if (rest > 0) {
    const k1 = le64(data, tail, Math.min(rest, 8));
    h1 ^= (rotl64((k1 * C1) & M64, 31n) * C2) & M64;
  }
  h1 ^= BigInt(len);
  h2 ^= BigInt(len);
  h1 = (h1 + h2) & M64;
  h2 = (h2 + h1) & M64;
  h1 = fmix64(h1);
  h2 = fmix64(h2);
  h1 = (h1 + h2) & M64;
  h2 = (h2 + h1) & M64;
  return [h1, h2];
}

/** The murmur seed and HASH_INIT4_SEED from a --bpf-lb-maglev-hash-seed value (12 bytes, base64). */
export function maglevSeeds(seed = MAGLEV_DEFAULT_SEED): { murmur: number; jhash0: number; jhash1: number; jhash2: number } {
  const d = Buffer.from(seed, "base64");
  if (d.length !== 12) throw new RangeError(`maglev hash seed must be 12 bytes in base64 (got ${d.length})`);
  const be = (i: number) => d.readUInt32BE(i);
  return { murmur: be(0), jhash0: be(0), jhash1: be(4), jhash2: be(8) };
}

/** offset and skip of one backend's permutation. */
export function maglevOffsetSkip(name: string, m: number, murmurSeed: number): { offset: number; skip: number } {
  const [h1, h2] = murmur3x64_128(new TextEncoder().encode(name), murmurSeed);
  const M = BigInt(m);
  return { offset: Number(h1 % M), skip: Number((h2 % (M - 1n)) + 1n) };
}

/**
 * The lookup table: entry i is the index (into `backends`) of the backend owning slot i; -1 only when there
 * are no backends. Backends take turns in the order of their sorted names (as Cilium sorts them), so the
 * table does not depend on the order they are given in.
 */
export function computeMaglevTable(backends: readonly string[], m = MAGLEV_DEFAULT_M, murmurSeed = maglevSeeds().murmur): Int32Array {
  const n = backends.length;
  if (n === 0) return new Int32Array(m).fill(-1);
  const order = backends.map((name, i) => ({ name, i })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.i - b.i));
  const offset = new Float64Array(n);
  const skip = new Float64Array(n);
  for (let j = 0; j < n; j++) {
    const os = maglevOffsetSkip(order[j]!.name, m, murmurSeed);
    offset[j] = os.offset;
    skip[j] = os.skip;
  }
  return maglevFill(offset, skip, order.map((o) => o.i), m);
}

/**
 * The population loop (the paper's Pseudocode 1, Cilium's getLookupTable): backend j (in turn order) has the
 * permutation (offset[j] + k * skip[j]) % m; in rounds, each claims its next free preferred slot. Entry = ids[j].
 */
export function maglevFill(offset: ArrayLike<number>, skip: ArrayLike<number>, ids: readonly number[], m: number): Int32Array {
  const table = new Int32Array(m).fill(-1);
  const n = ids.length;
  if (n === 0) return table;
  const next = new Float64Array(n); // how far along its permutation each backend is
  let filled = 0;
  for (;;) {
    for (let j = 0; j < n; j++) {
      // permutation[j][next] = (offset + next * skip) % M; take the first free slot.
      let c = (offset[j]! + next[j]! * skip[j]!) % m;
      while (table[c]! >= 0) {
        next[j]!++;
        c = (offset[j]! + next[j]! * skip[j]!) % m;
      }
      table[c] = ids[j]!;
      next[j]!++;
      if (++filled === m) return table;
    }
  }
}
