// A small seeded PRNG (mulberry32) so every allocation and generated name is reproducible from --seed.
// Never used on the packet path.

export class Rng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  /** Uniform 32-bit unsigned integer. */
  nextU32(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }
  /** Uniform integer in [0, n). */
  int(n: number): number {
    return this.nextU32() % n;
  }
}

/** FNV-1a 32-bit over a string's UTF-16 code units (ASCII in practice): stable seeds from names. */
export function fnv32a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

// k8s.io/apimachinery/pkg/util/rand: the alphabet generateName and pod-template-hash draw from (no vowels,
// no confusable characters, so generated names never spell words).
export const SAFE_ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789";

/** generateName's 5-character suffix, drawn from the seeded source. */
export function randomSuffix(rng: Rng, n = 5): string {
  let s = "";
  for (let i = 0; i < n; i++) s += SAFE_ALPHANUMS[rng.int(SAFE_ALPHANUMS.length)];
  return s;
}

/** rand.SafeEncodeString: maps each character of the input onto the safe alphabet (used for pod-template-hash). */
export function safeEncodeString(text: string): string {
  let s = "";
  for (let i = 0; i < text.length; i++) s += SAFE_ALPHANUMS[text.charCodeAt(i) % SAFE_ALPHANUMS.length];
  return s;
}
