// Hash maps (hash, LRU hash, per-CPU hash) and the LPM trie, host side: the same layout and algorithm as the
// SDK (assembly/maps.ts), so cilium-agent-style updates from TypeScript and lookups from programs agree.
// Chained buckets like kernel/bpf/hashtab.c (n_buckets = roundup_pow_of_two(max_entries), jhash with a per-map
// seed), a free list of preallocated elements, and for the LRU types one list with reference bits and
// second-chance eviction (the kernel's bpf_lru: set_ref on lookup, lazy rotation; its per-CPU free lists and
// active/inactive split are not modelled).
import type { SharedMemory } from "../memory.js";
import { jhashBytes } from "./jhash.js";
import {
  BPF_EXIST, BPF_MAP_TYPE_LPM_TRIE, BPF_NOEXIST, E_HASH, E_KEY, E_NEXT, HASH_MASK, L_CPREV, L_NEXT, L_PREV, LRU_LINK_SIZE, LRU_REF, isLruType, isPercpuType,
  M_BUCKETS, M_COUNT, M_ELEMS, M_ELEM_SIZE, M_FREE, M_KEY_SIZE, M_LPM_COUNTS, M_LRU_HEAD, M_MAX_ENTRIES, M_LRU_LINKS, M_LRU_TAIL, M_N_BUCKETS,
  M_SEED, M_TYPE, M_VALUE_SIZE, M_VALUE_STRIDE, M_NCPUS, align8,
} from "./layout.js";
import { E2BIG, EEXIST, EINVAL, ENOENT, ENOSPC } from "../abi.js";

/**
 * A program's raw store (outside the SDK's accessors) broke a map's links: an element index out of range, a
 * chain or list longer than the map holds (a cycle). BpfMap turns it into a MapError naming the map. The host
 * walks are bounded and index-checked, so they stop here instead of looping or writing outside the map.
 */
export class MapCorrupt extends Error {}

function corrupt(why: string): never {
  throw new MapCorrupt(why);
}

/** `idx` (element index + 1, read from memory) checked against max_entries. */
function checkIdx(m: SharedMemory, map: number, idx: number, what: string): number {
  const max = rd(m, map + M_MAX_ENTRIES);
  if (!(idx >= 1 && idx <= max)) corrupt(`${what} ${idx} is not an element 1..${max}`);
  return idx;
}

const rd = (m: SharedMemory, a: number) => m.u32[a >>> 2]!;
const wr = (m: SharedMemory, a: number, v: number) => {
  m.u32[a >>> 2] = v;
};

export function elemAddr(m: SharedMemory, map: number, idx: number): number {
  checkIdx(m, map, idx, "element index");
  return rd(m, map + M_ELEMS) + (idx - 1) * rd(m, map + M_ELEM_SIZE);
}
export function valueOff(m: SharedMemory, map: number): number {
  return E_KEY + align8(rd(m, map + M_KEY_SIZE));
}

function keyEq(m: SharedMemory, a: number, key: Uint8Array, size: number): boolean {
  const u8 = m.u8;
  for (let i = 0; i < size; i++) if (u8[a + i] !== key[i]) return false;
  return true;
}

export function htabHash(m: SharedMemory, map: number, key: Uint8Array): number {
  return jhashBytes(key, 0, rd(m, map + M_KEY_SIZE), rd(m, map + M_SEED));
}

/** Element index + 1 holding `key`, 0 if absent. */
export function htabFind(m: SharedMemory, map: number, key: Uint8Array, h = htabHash(m, map, key)): number {
  const ks = rd(m, map + M_KEY_SIZE);
  const max = rd(m, map + M_MAX_ENTRIES);
  let idx = rd(m, rd(m, map + M_BUCKETS) + ((h & (rd(m, map + M_N_BUCKETS) - 1)) << 2));
  for (let steps = 0; idx !== 0; steps++) {
    if (steps === max) chainLoops(h & (rd(m, map + M_N_BUCKETS) - 1), max);
    const e = elemAddr(m, map, idx);
    if (((rd(m, e + E_HASH) ^ h) & HASH_MASK) === 0 && keyEq(m, e + E_KEY, key, ks)) return idx;
    idx = rd(m, e + E_NEXT);
  }
  return 0;
}

function chainLoops(bucket: number, max: number): never {
  corrupt(`the chain of bucket ${bucket} is longer than max_entries ${max} (a cycle)`);
}

function linkTo(m: SharedMemory, map: number, idx: number): number {
  const h = rd(m, elemAddr(m, map, idx) + E_HASH);
  const max = rd(m, map + M_MAX_ENTRIES);
  const bucket = h & (rd(m, map + M_N_BUCKETS) - 1);
  let link = rd(m, map + M_BUCKETS) + (bucket << 2);
  for (let steps = 0; rd(m, link) !== idx; steps++) {
    if (steps === max) chainLoops(bucket, max);
    link = elemAddr(m, map, rd(m, link)) + E_NEXT;
  }
  return link;
}

// LRU list as in the SDK (assembly/maps.ts): links in the M_LRU_LINKS array, the reference bit in the top bit
// of the element's hash word; lookups set it and eviction gives referenced tail elements a second chance, like
// the kernel's bpf_lru.
const link = (m: SharedMemory, map: number, idx: number) => rd(m, map + M_LRU_LINKS) + (checkIdx(m, map, idx, "LRU link") - 1) * LRU_LINK_SIZE;

/** LRU types: take `idx` out of its bucket's chain through its chain predecessor link (L_CPREV). */
function lruChainUnlink(m: SharedMemory, map: number, idx: number): void {
  const e = elemAddr(m, map, idx);
  const prev = rd(m, link(m, map, idx) + L_CPREV);
  const next = rd(m, e + E_NEXT);
  if (prev !== 0) wr(m, elemAddr(m, map, prev) + E_NEXT, next);
  else wr(m, rd(m, map + M_BUCKETS) + ((rd(m, e + E_HASH) & (rd(m, map + M_N_BUCKETS) - 1)) << 2), next);
  if (next !== 0) wr(m, link(m, map, next) + L_CPREV, prev);
}

function lruUnlink(m: SharedMemory, map: number, idx: number): void {
  const l = link(m, map, idx);
  const prev = rd(m, l + L_PREV);
  const next = rd(m, l + L_NEXT);
  if (prev !== 0) wr(m, link(m, map, prev) + L_NEXT, next);
  else wr(m, map + M_LRU_HEAD, next);
  if (next !== 0) wr(m, link(m, map, next) + L_PREV, prev);
  else wr(m, map + M_LRU_TAIL, prev);
}

function lruPushHead(m: SharedMemory, map: number, idx: number): void {
  const l = link(m, map, idx);
  const head = rd(m, map + M_LRU_HEAD);
  const hw = elemAddr(m, map, idx) + E_HASH;
  wr(m, hw, rd(m, hw) & HASH_MASK);
  wr(m, l + L_PREV, 0);
  wr(m, l + L_NEXT, head);
  if (head !== 0) wr(m, link(m, map, head) + L_PREV, idx);
  else wr(m, map + M_LRU_TAIL, idx);
  wr(m, map + M_LRU_HEAD, idx);
}

/** Move `idx` to the head with its reference bit clear (an update replaces the element, as the kernel does). */
function lruMoveHead(m: SharedMemory, map: number, idx: number): void {
  if (rd(m, map + M_LRU_HEAD) !== idx) {
    lruUnlink(m, map, idx);
    lruPushHead(m, map, idx);
  }
}

/** Mark `idx` used, as a program's lookup does (bpf_lru_node_set_ref). */
export function lruTouch(m: SharedMemory, map: number, idx: number): void {
  const p = elemAddr(m, map, idx) + E_HASH;
  // Shared memory: atomic, as an update on another thread may be rewriting the word (assembly/maps.ts lru_set_ref).
  if (m.shared) Atomics.or(m.i32, p >>> 2, LRU_REF | 0);
  else wr(m, p, (rd(m, p) | LRU_REF) >>> 0);
}

/** Whether `idx` has its reference bit set. */
export function lruReferenced(m: SharedMemory, map: number, idx: number): boolean {
  return (rd(m, elemAddr(m, map, idx) + E_HASH) & LRU_REF) !== 0;
}

/** The element to evict: referenced tail elements rotate to the head (bit cleared) first. */
function lruVictim(m: SharedMemory, map: number): number {
  let idx = rd(m, map + M_LRU_TAIL);
  // Each rotation clears a reference bit: more rotations than elements means the list loops.
  const max = rd(m, map + M_MAX_ENTRIES);
  for (let steps = 0; idx !== 0 && lruReferenced(m, map, idx); steps++) {
    if (steps > max) corrupt(`the LRU list rotates more than max_entries ${max} times (a cycle)`);
    lruUnlink(m, map, idx);
    lruPushHead(m, map, idx);
    idx = rd(m, map + M_LRU_TAIL);
  }
  return idx;
}

/**
 * Insert or replace; 0 or -errno. For per-CPU maps `values` holds one value per CPU back to back, as the
 * kernel's syscall takes them, or a single value that goes to every CPU's slot.
 */
export function htabUpdate(m: SharedMemory, map: number, key: Uint8Array, values: Uint8Array, flags: number): number {
  const type = rd(m, map + M_TYPE);
  const ks = rd(m, map + M_KEY_SIZE);
  const h = htabHash(m, map, key);
  const found = htabFind(m, map, key, h);
  const lru = isLruType(type);
  if (found !== 0) {
    if (flags === BPF_NOEXIST) return -EEXIST;
    writeValues(m, map, elemAddr(m, map, found), values);
    if (lru) lruMoveHead(m, map, found);
    return 0;
  }
  if (flags === BPF_EXIST) return -ENOENT;
  let idx = rd(m, map + M_FREE);
  let evict = false;
  if (idx === 0) {
    if (!lru) return type === BPF_MAP_TYPE_LPM_TRIE ? -ENOSPC : -E2BIG;
    idx = lruVictim(m, map);
    if (idx === 0) return -E2BIG;
    evict = true;
  }
  const e = elemAddr(m, map, idx);
  if (evict) {
    lruChainUnlink(m, map, idx);
    lruUnlink(m, map, idx);
  } else {
    const next = rd(m, e + E_NEXT);
    const count = rd(m, map + M_COUNT);
    // A free list that loops onto itself, or more elements taken than the map holds.
    if (next === idx || count >= rd(m, map + M_MAX_ENTRIES)) corrupt(`free list at ${idx} (next ${next}, count ${count})`);
    wr(m, map + M_FREE, next);
    wr(m, map + M_COUNT, count + 1);
  }
  m.u8.set(key.subarray(0, ks), e + E_KEY);
  writeValues(m, map, e, values);
  const bucket = rd(m, map + M_BUCKETS) + ((h & (rd(m, map + M_N_BUCKETS) - 1)) << 2);
  const first = rd(m, bucket);
  wr(m, e + E_HASH, h & HASH_MASK);
  wr(m, e + E_NEXT, first);
  wr(m, bucket, idx);
  if (lru) {
    wr(m, link(m, map, idx) + L_CPREV, 0);
    if (first !== 0) wr(m, link(m, map, first) + L_CPREV, idx);
    lruPushHead(m, map, idx);
  }
  return 0;
}

function writeValues(m: SharedMemory, map: number, e: number, values: Uint8Array): void {
  const vs = rd(m, map + M_VALUE_SIZE);
  const stride = rd(m, map + M_VALUE_STRIDE);
  const ncpus = isPercpuType(rd(m, map + M_TYPE)) ? rd(m, map + M_NCPUS) : 1;
  const vo = e + valueOff(m, map);
  for (let cpu = 0; cpu < ncpus; cpu++) {
    const src = values.length >= vs * (cpu + 1) ? cpu * vs : 0;
    m.u8.set(values.subarray(src, src + vs), vo + cpu * stride);
  }
}

export function htabDelete(m: SharedMemory, map: number, key: Uint8Array): number {
  const idx = htabFind(m, map, key);
  if (idx === 0) return -ENOENT;
  const e = elemAddr(m, map, idx);
  if (isLruType(rd(m, map + M_TYPE))) {
    lruChainUnlink(m, map, idx);
    lruUnlink(m, map, idx);
  } else {
    wr(m, linkTo(m, map, idx), rd(m, e + E_NEXT));
  }
  wr(m, e + E_NEXT, rd(m, map + M_FREE));
  wr(m, map + M_FREE, idx);
  wr(m, map + M_COUNT, rd(m, map + M_COUNT) - 1);
  return 0;
}

/** Elements in bucket order (the order of the kernel's get_next_key walk), as element addresses. */
export function* htabElements(m: SharedMemory, map: number): Generator<number> {
  const nb = rd(m, map + M_N_BUCKETS);
  const buckets = rd(m, map + M_BUCKETS);
  const max = rd(m, map + M_MAX_ENTRIES);
  let seen = 0;
  for (let b = 0; b < nb; b++) {
    let idx = rd(m, buckets + b * 4);
    while (idx !== 0) {
      if (seen++ === max) corrupt(`the buckets chain more than max_entries ${max} elements (a cycle)`);
      const e = elemAddr(m, map, idx);
      const next = rd(m, e + E_NEXT);
      yield e;
      idx = next;
    }
  }
}

/** LRU order, most recently used first (tests check eviction order with it). */
export function lruOrder(m: SharedMemory, map: number): number[] {
  const out: number[] = [];
  const max = rd(m, map + M_MAX_ENTRIES);
  for (let idx = rd(m, map + M_LRU_HEAD); idx !== 0; idx = rd(m, link(m, map, idx) + L_NEXT)) {
    if (out.length === max) corrupt(`the LRU list is longer than max_entries ${max} (a cycle)`);
    out.push(idx);
  }
  return out;
}

// ---- LPM trie: a hash of masked keys plus a count per prefix length ----

export function lpmMask(key: Uint8Array, ks: number, plen: number): Uint8Array {
  const k = new Uint8Array(ks);
  k[0] = plen & 255;
  k[1] = (plen >>> 8) & 255;
  k[2] = (plen >>> 16) & 255;
  k[3] = (plen >>> 24) & 255;
  for (let i = 4; i < ks; i++) {
    const bit = (i - 4) * 8;
    const b = key[i]!;
    k[i] = plen >= bit + 8 ? b : plen <= bit ? 0 : b & (0xff00 >> (plen - bit));
  }
  return k;
}

function prefixLen(key: Uint8Array): number {
  return (key[0]! | (key[1]! << 8) | (key[2]! << 16) | (key[3]! << 24)) >>> 0;
}

/** Longest-prefix match: the element address, or 0. */
export function lpmLookup(m: SharedMemory, map: number, key: Uint8Array): number {
  const ks = rd(m, map + M_KEY_SIZE);
  const plen = Math.min(prefixLen(key), (ks - 4) * 8);
  for (let p = plen; p >= 0; p--) {
    if (rd(m, map + M_LPM_COUNTS + p * 4) === 0) continue;
    const idx = htabFind(m, map, lpmMask(key, ks, p));
    if (idx !== 0) return elemAddr(m, map, idx);
  }
  return 0;
}

export function lpmUpdate(m: SharedMemory, map: number, key: Uint8Array, value: Uint8Array, flags: number): number {
  const ks = rd(m, map + M_KEY_SIZE);
  const plen = prefixLen(key);
  if (plen > (ks - 4) * 8) return -EINVAL;
  const k = lpmMask(key, ks, plen);
  const had = htabFind(m, map, k) !== 0;
  const r = htabUpdate(m, map, k, value, flags);
  if (r === 0 && !had) wr(m, map + M_LPM_COUNTS + plen * 4, rd(m, map + M_LPM_COUNTS + plen * 4) + 1);
  return r;
}

export function lpmDelete(m: SharedMemory, map: number, key: Uint8Array): number {
  const ks = rd(m, map + M_KEY_SIZE);
  const plen = prefixLen(key);
  if (plen > (ks - 4) * 8) return -EINVAL;
  const r = htabDelete(m, map, lpmMask(key, ks, plen));
  if (r === 0) wr(m, map + M_LPM_COUNTS + plen * 4, rd(m, map + M_LPM_COUNTS + plen * 4) - 1);
  return r;
}
