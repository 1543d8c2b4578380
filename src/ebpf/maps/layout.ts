// Map layout in linear memory: the same numbers as assembly/map_layout.ts.
export const BPF_MAP_TYPE_HASH = 1;
export const BPF_MAP_TYPE_ARRAY = 2;
export const BPF_MAP_TYPE_PROG_ARRAY = 3;
export const BPF_MAP_TYPE_PERCPU_HASH = 5;
export const BPF_MAP_TYPE_PERCPU_ARRAY = 6;
export const BPF_MAP_TYPE_LRU_HASH = 9;
export const BPF_MAP_TYPE_LRU_PERCPU_HASH = 10;
export const BPF_MAP_TYPE_LPM_TRIE = 11;
export const BPF_MAP_TYPE_RINGBUF = 27;

export const MAP_TYPE_NAMES: Record<number, string> = {
  1: "hash",
  2: "array",
  3: "prog_array",
  5: "percpu_hash",
  6: "percpu_array",
  9: "lru_hash",
  10: "lru_percpu_hash",
  11: "lpm_trie",
  27: "ringbuf",
};

export const M_TYPE = 0;
export const M_KEY_SIZE = 4;
export const M_VALUE_SIZE = 8;
export const M_MAX_ENTRIES = 12;
export const M_FLAGS = 16;
export const M_N_BUCKETS = 20;
export const M_COUNT = 24;
export const M_ELEM_SIZE = 28;
export const M_BUCKETS = 32;
export const M_ELEMS = 36;
export const M_FREE = 40;
export const M_LRU_HEAD = 44;
export const M_LRU_TAIL = 48;
export const M_SEED = 52;
export const M_VALUE_STRIDE = 56;
export const M_NCPUS = 60;
export const M_LOOKUPS = 64; // program map_lookup_elem calls (hit or miss), u32 wrapping; host lookups do not count
export const M_LRU_LINKS = 68; // LRU types: LRU_LINK_SIZE bytes per element (L_PREV, L_NEXT, L_CPREV)
export const M_LOCK = 72; // shared memory: the map's update lock (0 = free), see maps/lock.ts
export const M_LOOKUPS_PCPU = 76; // shared memory: per-CPU lookup counts, a u32 per CPU 64 bytes apart (0: none)
export const MAP_HDR_SIZE = 80;
/** Bytes between two CPUs' lookup counts (one cache line each). */
export const LOOKUPS_PCPU_STRIDE = 64;
export const M_LPM_COUNTS = MAP_HDR_SIZE;
export const LPM_HDR_SIZE = MAP_HDR_SIZE + 132 * 4;
export const LPM_MAX_DATA = 16;
export const RB_CONSUMER = 20;
export const RB_PRODUCER = 24;
export const RB_MASK = 28;
export const RB_DATA = 32;
export const RB_DROPPED = 36;
export const RB_HDR_SIZE = 8;
export const RB_BUSY_BIT = 0x80000000;
export const RB_DISCARD_BIT = 0x40000000;

export const E_NEXT = 0;
export const E_HASH = 4; // bits 0..30 the hash, bit 31 LRU_REF
export const E_KEY = 8;
export const HASH_MASK = 0x7fffffff;
export const LRU_REF = 0x80000000; // top bit of the element's hash word: bpf_lru_node.ref
export const L_PREV = 0;
export const L_NEXT = 4;
export const L_CPREV = 8; // the element before it in its bucket's chain (0: the first)
export const LRU_LINK_SIZE = 16;
/** Alignment of the element array: elements of 64 bytes or less then sit in one cache line. */
export const ELEMS_ALIGN = 64;

export const BPF_ANY = 0;
export const BPF_NOEXIST = 1;
export const BPF_EXIST = 2;
export const BPF_F_NO_PREALLOC = 1;
export const BPF_F_ZERO_SEED = 1 << 6;
export const PIN_NONE = 0;
export const PIN_OBJECT_NS = 1;
export const PIN_GLOBAL_NS = 2;

export function isHashType(t: number): boolean {
  return t === BPF_MAP_TYPE_HASH || t === BPF_MAP_TYPE_LRU_HASH || t === BPF_MAP_TYPE_PERCPU_HASH || t === BPF_MAP_TYPE_LRU_PERCPU_HASH;
}
export function isLruType(t: number): boolean {
  return t === BPF_MAP_TYPE_LRU_HASH || t === BPF_MAP_TYPE_LRU_PERCPU_HASH;
}
export function isPercpuType(t: number): boolean {
  return t === BPF_MAP_TYPE_PERCPU_HASH || t === BPF_MAP_TYPE_LRU_PERCPU_HASH || t === BPF_MAP_TYPE_PERCPU_ARRAY;
}
export function isArrayType(t: number): boolean {
  return t === BPF_MAP_TYPE_ARRAY || t === BPF_MAP_TYPE_PERCPU_ARRAY || t === BPF_MAP_TYPE_PROG_ARRAY;
}
export function align8(n: number): number {
  return (n + 7) & ~7;
}
export function roundupPow2(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}
