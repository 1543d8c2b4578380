// Host-side Maglev tables (src/ebpf/maglev.ts): the hash against MurmurHash3's published outputs, the table's
// shape (full, balanced, order-independent) and the paper's minimal disruption with Cilium's default M.
import { describe, expect, it } from "vitest";
import { computeMaglevTable, maglevFill, maglevOffsetSkip, maglevSeeds, MAGLEV_DEFAULT_M, MAGLEV_PRIMES, murmur3x64_128 } from "../../src/ebpf/maglev.js";

const enc = (s: string) => new TextEncoder().encode(s);
const hex = (h: [bigint, bigint]) => h.map((x) => x.toString(16).padStart(16, "0")).join(" ");

describe("murmur3x64_128", () => {
  it.each([
    // MurmurHash3_x64_128 reference outputs (h1 h2), e.g. Python's mmh3.hash64(s, 0, signed=False).
    ["", 0, "0000000000000000 0000000000000000"],
    ["hello", 0, "cbd8a7b341bd9b02 5b1e906a48ae1d19"],
  ])("%j seed %d", (s, seed, want) => {
    expect(hex(murmur3x64_128(enc(s as string), seed as number))).toBe(want);
  });

  it("tails of every length 0..31 are hashed differently, and the seed matters", () => {
    const seen = new Set<string>();
    const base = "0123456789abcdefghijklmnopqrstuv";
    for (let n = 0; n < 32; n++) seen.add(hex(murmur3x64_128(enc(base.slice(0, n)), 7)));
    expect(seen.size).toBe(32);
    expect(hex(murmur3x64_128(enc("x"), 1))).not.toBe(hex(murmur3x64_128(enc("x"), 2)));
  });
});

describe("Maglev table", () => {
  it("the default seed decodes to 12 bytes; M is one of Cilium's primes; skip is in 1..M-1", () => {
    const s = maglevSeeds();
    expect(s.murmur).toBe(0x24b7ef82);
    expect(MAGLEV_PRIMES).toContain(MAGLEV_DEFAULT_M);
    for (let i = 0; i < 100; i++) {
      const { offset, skip } = maglevOffsetSkip(`10.0.${i}.1:80/TCP`, MAGLEV_DEFAULT_M, s.murmur);
      expect(offset).toBeLessThan(MAGLEV_DEFAULT_M);
      expect(skip).toBeGreaterThanOrEqual(1);
      expect(skip).toBeLessThan(MAGLEV_DEFAULT_M);
    }
  });

  it("is full and balanced (each of N backends owns M/N ± 1 entries... up to the round-robin remainder)", () => {
    const names = Array.from({ length: 7 }, (_, i) => `10.1.0.${i}:8080/TCP`);
    const t = computeMaglevTable(names, 1021);
    const counts = new Array(7).fill(0);
    for (const b of t) counts[b]++;
    expect(counts.reduce((a, b) => a + b)).toBe(1021);
    for (const c of counts) expect(Math.abs(c - 1021 / 7)).toBeLessThanOrEqual(1);
    expect(computeMaglevTable([], 251).every((x) => x === -1)).toBe(true);
  });

  it("does not depend on the order backends are given in", () => {
    const names = Array.from({ length: 20 }, (_, i) => `10.2.0.${i}:80/TCP`);
    const a = computeMaglevTable(names, 4093);
    const rev = [...names].reverse();
    const b = computeMaglevTable(rev, 4093);
    for (let i = 0; i < a.length; i++) expect(names[a[i]!]).toBe(rev[b[i]!]);
  });

  // Minimal disruption. The issue asks for <= 1% of the other entries at M = 16381 with 100 backends; Maglev's
  // population itself gives about 1.4% there, not a hashing artefact: with ideal (uniformly random) permutations
  // the same loop moves 1.38% on average (1.2-2.0% over 30 draws), because the backends that take the removed
  // one's slots skip ahead in their own lists and the later rounds fill differently. The paper (Eisenbud et al.
  // 2016, section 3.4 and figure 12) accordingly recommends M much larger than 100 N for minimal disruption; the
  // 1% bound holds from M = 65521 (M/N = 655: 0.53-0.59% here, 0.57% ideal). See test/README.md.
  const disruption = (m: number, gone: number) => {
    const names = Array.from({ length: 100 }, (_, i) => `10.3.${i >> 4}.${i & 15}:443/TCP`);
    const before = Array.from(computeMaglevTable(names, m), (i) => names[i]!);
    const left = names.filter((_, i) => i !== gone);
    const after = Array.from(computeMaglevTable(left, m), (i) => left[i]!);
    let own = 0;
    let moved = 0;
    let ownStayed = 0;
    for (let s = 0; s < m; s++) {
      if (before[s] === names[gone]) {
        own++;
        if (after[s] === names[gone]) ownStayed++;
      } else if (after[s] !== before[s]) moved++;
    }
    return { own, ownStayed, moved: moved / (m - own) };
  };

  it.each([0, 37, 99])("M = 16381, 100 backends, remove #%i: its own entries move, and 1-2 percent of the others", (gone) => {
    const d = disruption(MAGLEV_DEFAULT_M, gone);
    expect(d.ownStayed).toBe(0);
    expect(d.own).toBeGreaterThan(150);
    expect(d.moved).toBeGreaterThan(0.005);
    expect(d.moved).toBeLessThanOrEqual(0.02);
  });

  it.each([0, 37])("M = 65521, 100 backends, remove #%i: at most 1 percent of the other entries move", (gone) => {
    const d = disruption(65521, gone);
    expect(d.ownStayed).toBe(0);
    expect(d.moved).toBeLessThanOrEqual(0.01);
  });

  // The same population loop on uniformly random permutations (no murmur): what Maglev itself gives.
  const ideal = (m: number, trials: number) => {
    let seed = 12345;
    const rnd = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return (seed >>> 8) / 16777216;
    };
    let sum = 0;
    for (let t = 0; t < trials; t++) {
      const offset = Array.from({ length: 100 }, () => Math.floor(rnd() * m));
      const skip = Array.from({ length: 100 }, () => 1 + Math.floor(rnd() * (m - 1)));
      const ids = Array.from({ length: 100 }, (_, i) => i);
      const before = maglevFill(offset, skip, ids, m);
      const gone = t % 100;
      const left = ids.filter((i) => i !== gone);
      const after = maglevFill(left.map((i) => offset[i]!), left.map((i) => skip[i]!), left, m);
      let own = 0;
      let moved = 0;
      for (let s = 0; s < m; s++) {
        if (before[s] === gone) own++;
        else if (after[s] !== before[s]) moved++;
      }
      sum += moved / (m - own);
    }
    return sum / trials;
  };

  it("the 1.2-1.5% at M = 16381 is the algorithm's: ideal permutations give the same, and under 1% at M = 65521", () => {
    const at16381 = ideal(16381, 8);
    const ours = [0, 37, 99].map((g) => disruption(MAGLEV_DEFAULT_M, g).moved);
    const mean = ours.reduce((a, b) => a + b) / ours.length;
    expect(at16381).toBeGreaterThan(0.01);
    expect(Math.abs(mean - at16381)).toBeLessThan(0.003);
    expect(ideal(65521, 4)).toBeLessThan(0.0075);
  });
});
