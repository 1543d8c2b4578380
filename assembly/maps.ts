// Maps, program side: declaration (the host allocates or finds the pinned map and returns its address) and the
// bpf_map_*_elem helpers, which run inside WebAssembly on memory the host shares. The lookup returns the
// address of the value in place, as the kernel returns a pointer into the map: read and write its fields
// through an @unmanaged class (`changetype<Lb4Service>(p)`).
//
// Every helper does its searching (loops: the only places the budget can stop it) before it writes, and then
// writes in straight-line code, so a program stopped by the budget never leaves a map half-updated.
import { CB_CPU, CB_LOCK_HELD, CB_SCRATCH, SHARED_MEMORY } from "./abi";
import { E2BIG, EEXIST, EINVAL, ENOENT, ENOSPC } from "./errno";
import { jhash, jhash2, jhash_final, JHASH_INITVAL } from "./jhash";
import {
  BPF_MAP_TYPE_ARRAY, BPF_MAP_TYPE_HASH, BPF_MAP_TYPE_LPM_TRIE, BPF_MAP_TYPE_LRU_HASH, BPF_MAP_TYPE_LRU_PERCPU_HASH,
  BPF_MAP_TYPE_PERCPU_ARRAY, BPF_MAP_TYPE_PERCPU_HASH, E_HASH, E_KEY, E_NEXT, HASH_MASK, L_CPREV, L_NEXT, L_PREV, LRU_REF, M_BUCKETS,
  M_COUNT, M_ELEMS, M_ELEM_SIZE, M_FREE, M_KEY_SIZE, M_LOCK, M_LOOKUPS, M_LOOKUPS_PCPU, M_LPM_COUNTS, M_LRU_HEAD, M_LRU_LINKS, M_LRU_TAIL,
  M_MAX_ENTRIES, M_N_BUCKETS, M_SEED, M_TYPE, M_VALUE_SIZE, M_VALUE_STRIDE,
} from "./map_layout";

export * from "./map_layout";

/** A map as the program holds it: the address of its header in shared memory. */
export type MapRef = usize;

// Update flags (include/uapi/linux/bpf.h).
export const BPF_ANY: u64 = 0;
export const BPF_NOEXIST: u64 = 1;
export const BPF_EXIST: u64 = 2;
// map_flags
export const BPF_F_NO_PREALLOC: u32 = 1 << 0;
export const BPF_F_ZERO_SEED: u32 = 1 << 6;
// Pinning, as libbpf's LIBBPF_PIN_* / iproute2's PIN_*: PIN_GLOBAL_NS shares the map by name across programs
// and keeps it when the program is unloaded or replaced (bpffs /sys/fs/bpf/tc/globals/NAME).
export const PIN_NONE: u32 = 0;
export const PIN_OBJECT_NS: u32 = 1;
export const PIN_GLOBAL_NS: u32 = 2;

// @ts-ignore: decorator
@external("tcbox", "map_create")
declare function __map_create(type: u32, key_size: u32, value_size: u32, max_entries: u32, map_flags: u32, name: string, pinning: u32, key_type: string, value_type: string): usize;

// @ts-ignore: decorator
@inline function size_of<T>(): u32 {
  return isReference<T>() ? <u32>offsetof<T>() : <u32>sizeof<T>();
}

/**
 * Declare a map, at top level: `const SERVICES = map_def<Lb4Key, Lb4Service>(BPF_MAP_TYPE_HASH, 65536,
 * "cilium_lb4_services_v2", PIN_GLOBAL_NS)`. K and V are @unmanaged classes (or integer types); their names
 * tell the host which struct layout describes them (tcbox build records the layouts, like BTF).
 */
// @ts-ignore: decorator
@inline export function map_def<K, V>(type: u32, max_entries: u32, name: string, pinning: u32 = PIN_NONE, map_flags: u32 = 0): MapRef {
  return __map_create(type, size_of<K>(), size_of<V>(), max_entries, map_flags, name, pinning, nameof<K>(), nameof<V>());
}

// Worker threads (a shared memory, SHARED_MEMORY): updates and deletes of a map run under its lock, lookups
// take none, as in the kernel (its hash maps lock the bucket for an update or delete, lookups are RCU readers; a
// preallocated element may be reused right after its delete, so a concurrent lookup may see the new contents).
// tcbox's lock is one per map (the kernel: one per bucket plus per-CPU free lists; the LRU types a global LRU
// list lock): the free list, the element count and the LRU list are per map here. The holder's address goes to
// CB_LOCK_HELD, so if the program is stopped while holding it (budget, trap) the host releases it. Without a
// shared memory these fold away.
// A lock held by another thread is waited for in the host (tcbox.lock_wait): a spin loop here would spend the
// packet's budget while the holder's thread is descheduled (the kernel's holders cannot be preempted; threads
// here can), and a packet would be dropped for waiting.
// @ts-ignore: decorator
@external("tcbox", "lock_wait")
declare function __lock_wait(lock: usize): void;
// @ts-ignore: decorator
@inline export function map_lock(map: usize): void {
  if (SHARED_MEMORY) {
    if (atomic.cmpxchg<u32>(map + M_LOCK, 0, 1) != 0) __lock_wait(map + M_LOCK);
    store<u32>(CB_LOCK_HELD, <u32>(map + M_LOCK));
  }
}
// @ts-ignore: decorator
@inline export function map_unlock(map: usize): void {
  if (SHARED_MEMORY) {
    store<u32>(CB_LOCK_HELD, 0);
    atomic.store<u32>(map + M_LOCK, 0);
  }
}

// @ts-ignore: decorator
@inline function elem_addr(map: usize, idx: u32): usize {
  return load<u32>(map, M_ELEMS) + <usize>(idx - 1) * load<u32>(map, M_ELEM_SIZE);
}
// @ts-ignore: decorator
@inline function value_off(map: usize): usize {
  return E_KEY + ((load<u32>(map, M_KEY_SIZE) + 7) & ~7);
}
// @ts-ignore: decorator
@inline function this_cpu_slot(map: usize): usize {
  return <usize>load<u32>(CB_CPU) * load<u32>(map, M_VALUE_STRIDE);
}
// @ts-ignore: decorator
@inline function is_percpu(type: u32): bool {
  return type == BPF_MAP_TYPE_PERCPU_HASH || type == BPF_MAP_TYPE_LRU_PERCPU_HASH || type == BPF_MAP_TYPE_PERCPU_ARRAY;
}
// @ts-ignore: decorator
@inline function is_lru(type: u32): bool {
  return type == BPF_MAP_TYPE_LRU_HASH || type == BPF_MAP_TYPE_LRU_PERCPU_HASH;
}

// @ts-ignore: decorator
@inline function key_eq(a: usize, b: usize, size: u32): bool {
  // Common key sizes compare without a loop (each loop iteration costs a budget unit too).
  if (size == 8) return load<u64>(a) == load<u64>(b);
  if (size == 4) return load<u32>(a) == load<u32>(b);
  if (size == 12) return load<u64>(a) == load<u64>(b) && load<u32>(a, 8) == load<u32>(b, 8);
  if (size == 16) return load<u64>(a) == load<u64>(b) && load<u64>(a, 8) == load<u64>(b, 8);
  let i: u32 = 0;
  for (; i + 4 <= size; i += 4) if (load<u32>(a + i) != load<u32>(b + i)) return false;
  for (; i < size; i++) if (load<u8>(a + i) != load<u8>(b + i)) return false;
  return true;
}

/**
 * memory.copy for keys and values: up to 64 bytes in straight-line loads and stores (memory.copy is a call out
 * of the engine's compiled code, several ns each), whole 8-byte words with an overlapping last one. No loops, so
 * the write phase of an update stays loop-free. `dst` and `src` do not overlap.
 */
// @ts-ignore: decorator
@inline function copy_small(dst: usize, src: usize, n: u32): void {
  if (n > 64) {
    memory.copy(dst, src, n);
  } else if (n >= 8) {
    // Words at 0, 8, .. cover the first half, words ending at n the last: [0, n) whatever n in 8..64.
    const t = <usize>n - 8;
    const a = load<u64>(src);
    const z = load<u64>(src + t);
    if (n > 16) {
      const b = load<u64>(src, 8);
      const y = load<u64>(src + t - 8);
      if (n > 32) {
        const c = load<u64>(src, 16);
        const d = load<u64>(src, 24);
        const x = load<u64>(src + t - 16);
        const w = load<u64>(src + t - 24);
        store<u64>(dst, c, 16);
        store<u64>(dst, d, 24);
        store<u64>(dst + t - 16, x);
        store<u64>(dst + t - 24, w);
      }
      store<u64>(dst, b, 8);
      store<u64>(dst + t - 8, y);
    }
    store<u64>(dst, a);
    store<u64>(dst + t, z);
  } else if (n >= 4) {
    const a = load<u32>(src);
    const z = load<u32>(src + <usize>n - 4);
    store<u32>(dst, a);
    store<u32>(dst + <usize>n - 4, z);
  } else if (n >= 2) {
    const a = load<u16>(src);
    const z = load<u16>(src + <usize>n - 2);
    store<u16>(dst, a);
    store<u16>(dst + <usize>n - 2, z);
  } else if (n == 1) {
    store<u8>(dst, load<u8>(src));
  }
}

/**
 * htab_map_hash(): jhash2 over the words when the key size is a multiple of 4 (as the kernel does), else jhash.
 * The key sizes maps use most (4, 8, 12, 16 bytes) are unrolled without the loop; same values as jhash2.
 */
// @ts-ignore: decorator
@inline function htab_hash(key: usize, ks: u32, seed: u32): u32 {
  if (ks == 4 || ks == 8 || ks == 12 || ks == 16) return htab_hash_words(key_lo(key, ks), key_hi(key, ks), ks, seed);
  return (ks & 3) == 0 ? jhash2(key, ks >> 2, seed) : jhash(key, ks, seed);
}

/** htab_hash() of a key of `ks` (4, 8, 12 or 16) bytes given as two little-endian words (key_lo, key_hi). */
// @ts-ignore: decorator
@inline function htab_hash_words(lo: u64, hi: u64, ks: u32, seed: u32): u32 {
  const init: u32 = JHASH_INITVAL + ks + seed;
  if (ks == 4) return jhash_final(init + <u32>lo, init, init);
  if (ks == 8) return jhash_final(init + <u32>lo, init + <u32>(lo >> 32), init);
  if (ks == 12) return jhash_final(init + <u32>lo, init + <u32>(lo >> 32), init + <u32>hi);
  let a = init + <u32>lo;
  let b = init + <u32>(lo >> 32);
  let c = init + <u32>hi;
  // __jhash_mix
  a -= c; a ^= rotl<u32>(c, 4); c += b;
  b -= a; b ^= rotl<u32>(a, 6); a += c;
  c -= b; c ^= rotl<u32>(b, 8); b += a;
  a -= c; a ^= rotl<u32>(c, 16); c += b;
  b -= a; b ^= rotl<u32>(a, 19); a += c;
  c -= b; c ^= rotl<u32>(b, 4); b += a;
  return jhash_final(a + <u32>(hi >> 32), b, c);
}

/** Bytes 0..7 of a key of `ks` (4, 8, 12 or 16) bytes as a little-endian word (only the key's bytes read). */
// @ts-ignore: decorator
@inline function key_lo(key: usize, ks: u32): u64 {
  return ks == 4 ? <u64>load<u32>(key) : load<u64>(key);
}
/** Bytes 8..15 of such a key (0 past its end). */
// @ts-ignore: decorator
@inline function key_hi(key: usize, ks: u32): u64 {
  return ks == 16 ? load<u64>(key, 8) : ks == 12 ? <u64>load<u32>(key, 8) : 0;
}

/** Index + 1 of the element holding `key` in the chain of hash `h`, 0 if absent. */
// @ts-ignore: decorator
@inline function htab_find(map: usize, key: usize, h: u32, ks: u32 = load<u32>(map, M_KEY_SIZE)): u32 {
  let idx = load<u32>(load<u32>(map, M_BUCKETS) + ((h & (load<u32>(map, M_N_BUCKETS) - 1)) << 2));
  while (idx != 0) {
    const e = elem_addr(map, idx);
    if (((load<u32>(e, E_HASH) ^ h) & HASH_MASK) == 0 && key_eq(e + E_KEY, key, ks)) return idx;
    idx = load<u32>(e, E_NEXT);
  }
  return 0;
}

/** The chain link (bucket slot or previous element's next field) that points at `idx`. */
function htab_link_to(map: usize, idx: u32): usize {
  const h = load<u32>(elem_addr(map, idx), E_HASH);
  let link = load<u32>(map, M_BUCKETS) + ((h & (load<u32>(map, M_N_BUCKETS) - 1)) << 2);
  while (load<u32>(link) != idx) link = elem_addr(map, load<u32>(link)) + E_NEXT;
  return link;
}

// LRU list: doubly linked through the M_LRU_LINKS array (index + 1), head = most recently inserted. The kernel's
// bpf_lru does not move an element on lookup: it sets the node's reference bit (bpf_lru_node_set_ref, only if
// clear, so a hot element's cache line is not dirtied again) and rotates lazily when it needs a free node; a
// referenced element at the tail gets a second chance (moved to the head, bit cleared) instead of eviction.
// The reference bit lives in the element's hash word (the line a lookup reads anyway). Straight-line.
// @ts-ignore: decorator
@inline function lru_link(map: usize, idx: u32): usize {
  return load<u32>(map, M_LRU_LINKS) + (<usize>(idx - 1) << 4); // LRU_LINK_SIZE
}
/**
 * LRU types: take `idx` out of its bucket's chain through its chain predecessor link (L_CPREV), with stores
 * only (htab_link_to() reads the bucket and walks the chain). Straight-line.
 */
// @ts-ignore: decorator
@inline function lru_chain_unlink(map: usize, idx: u32): void {
  const e = elem_addr(map, idx);
  const prev = load<u32>(lru_link(map, idx), L_CPREV);
  const next = load<u32>(e, E_NEXT);
  if (prev != 0) store<u32>(elem_addr(map, prev), next, E_NEXT);
  else store<u32>(load<u32>(map, M_BUCKETS) + ((load<u32>(e, E_HASH) & (load<u32>(map, M_N_BUCKETS) - 1)) << 2), next);
  if (next != 0) store<u32>(lru_link(map, next), prev, L_CPREV);
}
// @ts-ignore: decorator
@inline function lru_unlink(map: usize, idx: u32): void {
  const l = lru_link(map, idx);
  const prev = load<u32>(l, L_PREV);
  const next = load<u32>(l, L_NEXT);
  if (prev != 0) store<u32>(lru_link(map, prev), next, L_NEXT);
  else store<u32>(map, next, M_LRU_HEAD);
  if (next != 0) store<u32>(lru_link(map, next), prev, L_PREV);
  else store<u32>(map, prev, M_LRU_TAIL);
}
/** Push at the head with the reference bit clear (a new or rotated node; a new one's is clear already). */
// @ts-ignore: decorator
@inline function lru_push_head(map: usize, idx: u32, clear_ref: bool = true): void {
  const l = lru_link(map, idx);
  const head = load<u32>(map, M_LRU_HEAD);
  if (clear_ref) {
    const hw = elem_addr(map, idx) + E_HASH;
    store<u32>(hw, load<u32>(hw) & ~LRU_REF);
  }
  store<u32>(l, 0, L_PREV);
  store<u32>(l, head, L_NEXT);
  if (head != 0) store<u32>(lru_link(map, head), idx, L_PREV);
  else store<u32>(map, idx, M_LRU_TAIL);
  store<u32>(map, idx, M_LRU_HEAD);
}
// @ts-ignore: decorator
@inline function lru_touch(map: usize, idx: u32): void {
  if (load<u32>(map, M_LRU_HEAD) != idx) {
    lru_unlink(map, idx);
    lru_push_head(map, idx);
  }
}
/** bpf_lru_node_set_ref(): mark used; written only when clear. */
// @ts-ignore: decorator
@inline function lru_set_ref(map: usize, idx: u32): void {
  const p = elem_addr(map, idx) + E_HASH;
  const v = load<u32>(p);
  // Shared memory: an atomic or, as an update may be rewriting the word (a reused element's new hash).
  if ((v & LRU_REF) == 0) {
    if (SHARED_MEMORY) atomic.or<u32>(p, LRU_REF);
    else store<u32>(p, v | LRU_REF);
  }
}
/**
 * The element to evict: rotate referenced tail elements to the head (bit cleared) until an unreferenced one is
 * at the tail. Each iteration is a complete move, so a budget stop between iterations leaves a valid list (the
 * kernel's rotation is likewise independent of the insert that triggered it). At most `count` iterations.
 */
function lru_victim(map: usize): u32 {
  let idx = load<u32>(map, M_LRU_TAIL);
  while (idx != 0 && (load<u32>(elem_addr(map, idx), E_HASH) & LRU_REF) != 0) {
    lru_unlink(map, idx);
    lru_push_head(map, idx);
    idx = load<u32>(map, M_LRU_TAIL);
  }
  return idx;
}

function htab_update(map: usize, key: usize, value: usize, flags: u64, type: u32): i32 {
  const ks = load<u32>(map, M_KEY_SIZE);
  const vs = load<u32>(map, M_VALUE_SIZE);
  const seed = load<u32>(map, M_SEED);
  // The hash and the search with the common key sizes as constants, as htab_lookup does.
  let h: u32;
  let found: u32;
  if (ks == 16) {
    h = htab_hash(key, 16, seed);
    found = htab_find(map, key, h, 16);
  } else if (ks == 12) {
    h = htab_hash(key, 12, seed);
    found = htab_find(map, key, h, 12);
  } else if (ks == 8) {
    h = htab_hash(key, 8, seed);
    found = htab_find(map, key, h, 8);
  } else if (ks == 4) {
    h = htab_hash(key, 4, seed);
    found = htab_find(map, key, h, 4);
  } else {
    h = htab_hash(key, ks, seed);
    found = htab_find(map, key, h, ks);
  }
  const lru = is_lru(type);
  if (found != 0) {
    if (flags == BPF_NOEXIST) return -EEXIST;
    copy_small(elem_addr(map, found) + value_off(map) + (is_percpu(type) ? this_cpu_slot(map) : 0), value, vs);
    if (lru) lru_touch(map, found);
    return 0;
  }
  if (flags == BPF_EXIST) return -ENOENT;
  let idx = load<u32>(map, M_FREE);
  let evict = false;
  if (idx == 0) {
    if (!lru) return type == BPF_MAP_TYPE_LPM_TRIE ? -ENOSPC : -E2BIG;
    idx = lru_victim(map); // evict the least recently used unreferenced element
    if (idx == 0) return -E2BIG;
    evict = true;
  }
  // ---- no loops below: the map changes all at once ----
  const e = elem_addr(map, idx);
  if (evict) {
    lru_chain_unlink(map, idx);
    lru_unlink(map, idx);
  } else {
    store<u32>(map, load<u32>(e, E_NEXT), M_FREE);
    store<u32>(map, load<u32>(map, M_COUNT) + 1, M_COUNT);
  }
  const vo = value_off(map);
  if (is_percpu(type)) memory.fill(e + vo, 0, <usize>load<u32>(map, M_ELEM_SIZE) - vo); // pcpu_init_value
  copy_small(e + E_KEY, key, ks);
  copy_small(e + vo + (is_percpu(type) ? this_cpu_slot(map) : 0), value, vs);
  const bucket = load<u32>(map, M_BUCKETS) + ((h & (load<u32>(map, M_N_BUCKETS) - 1)) << 2);
  const first = load<u32>(bucket); // (read after an evicted element left its chain: it may be this one)
  store<u32>(e, h & HASH_MASK, E_HASH);
  store<u32>(e, first, E_NEXT);
  store<u32>(bucket, idx);
  if (lru) {
    store<u32>(lru_link(map, idx), 0, L_CPREV);
    if (first != 0) store<u32>(lru_link(map, first), idx, L_CPREV);
    lru_push_head(map, idx, false); // E_HASH was just written with the reference bit clear
  }
  return 0;
}

function htab_delete(map: usize, key: usize, type: u32): i32 {
  const h = htab_hash(key, load<u32>(map, M_KEY_SIZE), load<u32>(map, M_SEED));
  const idx = htab_find(map, key, h);
  if (idx == 0) return -ENOENT;
  const e = elem_addr(map, idx);
  if (is_lru(type)) {
    lru_chain_unlink(map, idx);
    lru_unlink(map, idx);
  } else {
    const link = htab_link_to(map, idx);
    // ---- no loops below ----
    store<u32>(link, load<u32>(e, E_NEXT));
  }
  store<u32>(e, load<u32>(map, M_FREE), E_NEXT);
  store<u32>(map, idx, M_FREE);
  store<u32>(map, load<u32>(map, M_COUNT) - 1, M_COUNT);
  return 0;
}

/** The first plen - bit prefix bits of the 4 data bytes from data bit `bit`, as a little-endian word load sees them. */
// @ts-ignore: decorator
@inline function lpm_word_mask(plen: u32, bit: u32): u32 {
  if (plen >= bit + 32) return 0xffffffff;
  if (plen <= bit) return 0;
  return bswap<u32>(0xffffffff << (32 - (plen - bit)));
}

/**
 * Copy an LPM key to the scratch area with the data masked to `plen` bits; returns the scratch address. Whole
 * words where it can (the lookup reads the key as words: bytes written one by one would stall those loads).
 */
function lpm_mask(key: usize, ks: u32, plen: u32): usize {
  const k = CB_SCRATCH;
  if (ks == 8) {
    // IPv4: prefix length and one word of data, in one store.
    store<u64>(k, <u64>plen | (<u64>(load<u32>(key, 4) & lpm_word_mask(plen, 0)) << 32));
    return k;
  }
  store<u32>(k, plen);
  let i: u32 = 4;
  for (; i + 4 <= ks; i += 4) store<u32>(k + i, load<u32>(key + i) & lpm_word_mask(plen, (i - 4) << 3));
  for (; i < ks; i++) {
    const bit = (i - 4) << 3;
    const b = load<u8>(key + i);
    store<u8>(k + i, plen >= bit + 8 ? b : plen <= bit ? 0 : b & <u8>(0xff00 >> (plen - bit)));
  }
  return k;
}

function lpm_lookup(map: usize, key: usize): usize {
  const ks = load<u32>(map, M_KEY_SIZE);
  const maxlen = (ks - 4) << 3;
  let plen = load<u32>(key);
  if (plen > maxlen) plen = maxlen;
  const seed = load<u32>(map, M_SEED);
  for (let p = <i32>plen; p >= 0; p--) {
    if (load<u32>(map + M_LPM_COUNTS + (<usize>p << 2)) == 0) continue;
    const k = lpm_mask(key, ks, <u32>p);
    const idx = htab_find(map, k, htab_hash(k, ks, seed));
    if (idx != 0) return elem_addr(map, idx) + value_off(map);
  }
  return 0;
}

function lpm_update(map: usize, key: usize, value: usize, flags: u64): i32 {
  const ks = load<u32>(map, M_KEY_SIZE);
  const plen = load<u32>(key);
  if (plen > (ks - 4) << 3) return -EINVAL;
  const k = lpm_mask(key, ks, plen);
  const had = htab_find(map, k, htab_hash(k, ks, load<u32>(map, M_SEED))) != 0;
  const r = htab_update(map, k, value, flags, BPF_MAP_TYPE_LPM_TRIE);
  if (r == 0 && !had) {
    const c = map + M_LPM_COUNTS + (<usize>plen << 2);
    store<u32>(c, load<u32>(c) + 1);
  }
  return r;
}

function lpm_delete(map: usize, key: usize): i32 {
  const ks = load<u32>(map, M_KEY_SIZE);
  const plen = load<u32>(key);
  if (plen > (ks - 4) << 3) return -EINVAL;
  const r = htab_delete(map, lpm_mask(key, ks, plen), BPF_MAP_TYPE_LPM_TRIE);
  if (r == 0) {
    const c = map + M_LPM_COUNTS + (<usize>plen << 2);
    store<u32>(c, load<u32>(c) - 1);
  }
  return r;
}

/**
 * htab_find(htab_hash()) with the key sizes maps use most (16, 12, 8, 4 bytes) as constants, so the hash and the
 * key compare are specialised once per lookup instead of testing the size at every chain element.
 */
// @ts-ignore: decorator
@inline function htab_lookup(map: usize, key: usize): u32 {
  const ks = load<u32>(map, M_KEY_SIZE);
  const seed = load<u32>(map, M_SEED);
  if (ks == 16) return htab_find(map, key, htab_hash(key, 16, seed), 16);
  if (ks == 12) return htab_find(map, key, htab_hash(key, 12, seed), 12);
  if (ks == 8) return htab_find(map, key, htab_hash(key, 8, seed), 8);
  if (ks == 4) return htab_find(map, key, htab_hash(key, 4, seed), 4);
  return htab_find(map, key, htab_hash(key, ks, seed), ks);
}

/**
 * A program's bpf_map_lookup_elem call, hit or miss (wraps); on a shared memory in this CPU's own counter (no
 * atomic, no shared line).
 */
// @ts-ignore: decorator
@inline function count_lookup(map: usize): void {
  if (SHARED_MEMORY) {
    const c = <usize>load<u32>(map, M_LOOKUPS_PCPU) + (<usize>load<u32>(CB_CPU) << 6);
    store<u32>(c, load<u32>(c) + 1);
  } else store<u32>(map, load<u32>(map, M_LOOKUPS) + 1, M_LOOKUPS);
}

/** bpf_map_lookup_elem(): address of the value for `key` (this CPU's slot for per-CPU maps), 0 if none. */
export function map_lookup_elem(map: MapRef, key: usize): usize {
  count_lookup(map);
  const type = load<u32>(map, M_TYPE);
  if (type == BPF_MAP_TYPE_HASH || type == BPF_MAP_TYPE_LRU_HASH || type == BPF_MAP_TYPE_PERCPU_HASH || type == BPF_MAP_TYPE_LRU_PERCPU_HASH) {
    const idx = htab_lookup(map, key);
    if (idx == 0) return 0;
    if (is_lru(type)) lru_set_ref(map, idx);
    return elem_addr(map, idx) + value_off(map) + (is_percpu(type) ? this_cpu_slot(map) : 0);
  }
  if (type == BPF_MAP_TYPE_ARRAY || type == BPF_MAP_TYPE_PERCPU_ARRAY) {
    const i = load<u32>(key);
    if (i >= load<u32>(map, M_MAX_ENTRIES)) return 0;
    return load<u32>(map, M_ELEMS) + <usize>i * load<u32>(map, M_ELEM_SIZE) + (type == BPF_MAP_TYPE_PERCPU_ARRAY ? this_cpu_slot(map) : 0);
  }
  if (type == BPF_MAP_TYPE_LPM_TRIE) return lpm_lookup(map, key);
  return 0; // program arrays and ring buffers have no lookup from programs
}

/** Typed lookup: `const svc = map_lookup<Lb4Service>(SERVICES, key); if (svc == null) ...`. */
// @ts-ignore: decorator
@inline export function map_lookup<V>(map: MapRef, key: usize): V | null {
  return changetype<V | null>(map_lookup_elem(map, key));
}

// Typed lookup: with the key type K known at compile time, a lookup in a hash or LRU hash map whose key size is
// sizeof<K> (4, 8, 12 or 16 bytes) is searched inline with that size as a constant, as the kernel's verifier
// inlines map lookups (map_gen_lookup): the hash, the key compare and the value offset are specialised, and the
// key is read once, as two little-endian words, for both the hash and the compares. Any other map (or a key
// size that is not sizeof<K>) takes map_lookup_elem(). Same results, same lookup counts, same LRU reference bits.

/** Whether a lookup with keys of `ks` bytes in the map whose M_TYPE and M_KEY_SIZE words are `type_ks` is inline. */
// @ts-ignore: decorator
@inline function htab_inline_ok(type_ks: u64, ks: u32): bool {
  return (ks == 4 || ks == 8 || ks == 12 || ks == 16) && (type_ks == (<u64>BPF_MAP_TYPE_HASH | (<u64>ks << 32)) || type_ks == (<u64>BPF_MAP_TYPE_LRU_HASH | (<u64>ks << 32)));
}

/** key_eq() against a key of `ks` (4, 8, 12 or 16) bytes given as two little-endian words. */
// @ts-ignore: decorator
@inline function key_eq_words(a: usize, lo: u64, hi: u64, ks: u32): bool {
  if (ks == 4) return load<u32>(a) == <u32>lo;
  if (ks == 8) return load<u64>(a) == lo;
  if (ks == 12) return load<u64>(a) == lo && load<u32>(a, 8) == <u32>hi;
  return load<u64>(a) == lo && load<u64>(a, 8) == hi;
}

/**
 * The inline search (htab_inline_ok): counts the lookup, returns the value's address or 0. The chain's first
 * element is tested before the loop (the common case: it is the one, or there is none).
 */
// @ts-ignore: decorator
@inline function htab_lookup_words(map: usize, type_ks: u64, lo: u64, hi: u64, ks: u32): usize {
  count_lookup(map);
  const h = htab_hash_words(lo, hi, ks, load<u32>(map, M_SEED));
  let idx = load<u32>(load<u32>(map, M_BUCKETS) + ((h & (load<u32>(map, M_N_BUCKETS) - 1)) << 2));
  if (idx == 0) return 0;
  let e = elem_addr(map, idx);
  if (((load<u32>(e, E_HASH) ^ h) & HASH_MASK) != 0 || !key_eq_words(e + E_KEY, lo, hi, ks)) {
    idx = load<u32>(e, E_NEXT);
    while (idx != 0) {
      e = elem_addr(map, idx);
      if (((load<u32>(e, E_HASH) ^ h) & HASH_MASK) == 0 && key_eq_words(e + E_KEY, lo, hi, ks)) break;
      idx = load<u32>(e, E_NEXT);
    }
    if (idx == 0) return 0;
  }
  if (<u32>type_ks == BPF_MAP_TYPE_LRU_HASH) lru_set_ref(map, idx);
  return e + E_KEY + ((ks + 7) & ~7);
}

/** Typed lookup, key in memory: `map_lookup_key<lb4_key, lb4_service>(SERVICES, key)`; as map_lookup<V>(). */
// @ts-ignore: decorator
@inline export function map_lookup_key<K, V>(map: MapRef, key: usize): V | null {
  const ks = size_of<K>();
  const type_ks = load<u64>(map, M_TYPE); // M_TYPE, M_KEY_SIZE
  if (!htab_inline_ok(type_ks, ks)) return changetype<V | null>(map_lookup_elem(map, key));
  return changetype<V | null>(htab_lookup_words(map, type_ks, key_lo(key, ks), key_hi(key, ks), ks));
}

/** bpf_map_update_elem(): 0, or -EEXIST (BPF_NOEXIST), -ENOENT (BPF_EXIST), -E2BIG (full), -EINVAL. */
export function map_update_elem(map: MapRef, key: usize, value: usize, flags: u64): i32 {
  if (flags > BPF_EXIST) return -EINVAL;
  const type = load<u32>(map, M_TYPE);
  if (type == BPF_MAP_TYPE_HASH || type == BPF_MAP_TYPE_LRU_HASH || type == BPF_MAP_TYPE_PERCPU_HASH || type == BPF_MAP_TYPE_LRU_PERCPU_HASH) {
    map_lock(map);
    const r = htab_update(map, key, value, flags, type);
    map_unlock(map);
    return r;
  }
  if (type == BPF_MAP_TYPE_ARRAY || type == BPF_MAP_TYPE_PERCPU_ARRAY) {
    const i = load<u32>(key);
    if (i >= load<u32>(map, M_MAX_ENTRIES)) return -E2BIG;
    if (flags == BPF_NOEXIST) return -EEXIST; // every array element always exists
    const slot = type == BPF_MAP_TYPE_PERCPU_ARRAY ? this_cpu_slot(map) : 0;
    copy_small(load<u32>(map, M_ELEMS) + <usize>i * load<u32>(map, M_ELEM_SIZE) + slot, value, load<u32>(map, M_VALUE_SIZE));
    return 0;
  }
  if (type == BPF_MAP_TYPE_LPM_TRIE) {
    map_lock(map);
    const r = lpm_update(map, key, value, flags);
    map_unlock(map);
    return r;
  }
  return -EINVAL;
}

/** bpf_map_delete_elem(): 0, -ENOENT, or -EINVAL for arrays (their elements cannot be deleted). */
export function map_delete_elem(map: MapRef, key: usize): i32 {
  const type = load<u32>(map, M_TYPE);
  if (type == BPF_MAP_TYPE_HASH || type == BPF_MAP_TYPE_LRU_HASH || type == BPF_MAP_TYPE_PERCPU_HASH || type == BPF_MAP_TYPE_LRU_PERCPU_HASH) {
    map_lock(map);
    const r = htab_delete(map, key, type);
    map_unlock(map);
    return r;
  }
  if (type == BPF_MAP_TYPE_LPM_TRIE) {
    map_lock(map);
    const r = lpm_delete(map, key);
    map_unlock(map);
    return r;
  }
  return -EINVAL;
}
