// A map as the host sees it (cilium/ebpf's *ebpf.Map): lookup, update, delete and iterate on raw bytes, with a
// typed view by struct layouts on top. The bytes live in the kernel's shared memory, where programs read them
// without calling the host. Errors are MapErrors naming the map and the key (in bpftool's hex).
import { MapError, errnoName } from "../errors.js";
import type { SharedMemory } from "../memory.js";
import type { StructLayout } from "../btf.js";
import { MapCorrupt, htabDelete, htabElements, htabFind, htabUpdate, elemAddr, lpmDelete, lpmLookup, lpmUpdate, lruTouch, valueOff } from "./htab.js";
import {
  BPF_ANY, BPF_EXIST, BPF_F_ZERO_SEED, BPF_MAP_TYPE_LPM_TRIE, BPF_MAP_TYPE_PROG_ARRAY, BPF_MAP_TYPE_RINGBUF, BPF_NOEXIST,
  E_KEY, E_NEXT, LPM_HDR_SIZE, MAP_HDR_SIZE, MAP_TYPE_NAMES, M_BUCKETS, M_COUNT, M_ELEMS, M_ELEM_SIZE, M_FLAGS, M_FREE,
  M_KEY_SIZE, M_LOOKUPS, M_LOOKUPS_PCPU, LOOKUPS_PCPU_STRIDE, M_LRU_LINKS, M_MAX_ENTRIES, M_NCPUS, M_N_BUCKETS, M_SEED, M_TYPE, M_VALUE_SIZE, M_VALUE_STRIDE, RB_DATA, RB_MASK,
  ELEMS_ALIGN, LRU_LINK_SIZE, align8, isArrayType, isHashType, isLruType, isPercpuType, roundupPow2,
} from "./layout.js";
import { withMapLock } from "./lock.js";
import type { MapSpec } from "./spec.js";
import { decodeStruct, encodeStruct, hexBytes, type FieldValue, type StructValue } from "./struct.js";
import { E2BIG, EEXIST, EINVAL, ENOENT } from "../abi.js";

export type MapEntry = [key: Uint8Array, value: Uint8Array];

/**
 * Header fields that never change after the map is created (its geometry: where buckets, elements and LRU links
 * are, their sizes, the seed). A program's raw store can overwrite them; the host keeps its own copy and writes
 * it back before each host operation, so its walks and writes stay inside the map (and programs see the map
 * whole again). Ring buffers keep their positions and drop count where hashes have geometry: theirs are the
 * mask and the data address.
 */
const FIXED_COMMON = [M_TYPE, M_KEY_SIZE, M_VALUE_SIZE, M_MAX_ENTRIES, M_FLAGS, M_VALUE_STRIDE, M_NCPUS, M_LOOKUPS_PCPU];
const FIXED_FIELDS = [...FIXED_COMMON, M_N_BUCKETS, M_ELEM_SIZE, M_BUCKETS, M_ELEMS, M_SEED, M_LRU_LINKS];
const FIXED_RINGBUF = [...FIXED_COMMON, RB_MASK, RB_DATA];

export class BpfMap {
  /** Programs (object names) using this map, for `tcbox map list`. */
  readonly users = new Set<string>();
  /** Layouts from the declaring program's BTF, when it has them. */
  keyLayout?: StructLayout;
  valueLayout?: StructLayout;

  constructor(
    readonly mem: SharedMemory,
    readonly base: number,
    readonly spec: MapSpec,
    readonly ncpus: number,
    readonly id: number,
    /** The kernel's possible CPUs (per-CPU lookup counts on a shared memory). */
    readonly cpus = 1,
  ) {
    this.fixedFields = spec.type === BPF_MAP_TYPE_RINGBUF ? FIXED_RINGBUF : FIXED_FIELDS;
    this.fixed = this.fixedFields.map((off) => mem.u32[(base + off) >>> 2]!);
  }

  /** The immutable header fields as created (FIXED_FIELDS), read once when this BpfMap is made. */
  private readonly fixedFields: number[];
  private readonly fixed: number[];
  /** Times the host found its immutable header fields overwritten by a program and wrote them back. */
  headerRestores = 0;

  /**
   * Before a host operation: write back any immutable header field a program overwrote (counted in
   * headerRestores). The links (free list, chains, LRU list) are checked as they are walked (htab.ts MapCorrupt).
   */
  restoreHeader(): void {
    const u32 = this.mem.u32;
    let restored = false;
    for (let i = 0; i < this.fixedFields.length; i++) {
      const a = (this.base + this.fixedFields[i]!) >>> 2;
      if (u32[a] !== this.fixed[i]) {
        u32[a] = this.fixed[i]!;
        restored = true;
      }
    }
    if (restored) this.headerRestores++;
  }

  /** Run a host walk of the map's links; a MapCorrupt becomes a MapError naming the map. */
  private guarded<T>(fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      if (e instanceof MapCorrupt) throw new MapError(`corrupt (${e.message}): a program wrote over it`, `map ${this.name}`, EINVAL);
      throw e;
    }
  }

  /** Allocate and initialise a map in shared memory: header, buckets, free list (like the kernel's prealloc). */
  static create(mem: SharedMemory, spec: MapSpec, seed: number, ncpus: number, id: number): BpfMap {
    const t = spec.type;
    const percpu = isPercpuType(t) ? ncpus : 1;
    const vstride = align8(spec.valueSize);
    let size: number;
    let elemSize = 0;
    let nBuckets = 0;
    let hdr = MAP_HDR_SIZE;
    if (t === BPF_MAP_TYPE_RINGBUF) size = hdr + spec.maxEntries;
    else if (isArrayType(t)) {
      elemSize = vstride * percpu;
      size = hdr + elemSize * spec.maxEntries;
    } else {
      if (t === BPF_MAP_TYPE_LPM_TRIE) hdr = LPM_HDR_SIZE;
      nBuckets = roundupPow2(spec.maxEntries);
      elemSize = E_KEY + align8(spec.keySize) + vstride * percpu;
      size = hdr + nBuckets * 4 + ELEMS_ALIGN + elemSize * spec.maxEntries + (isLruType(t) ? spec.maxEntries * LRU_LINK_SIZE : 0);
    }
    // Shared memory: each CPU's lookup count in its own cache line, after the map.
    const pcpuLookups = mem.shared ? size : 0;
    if (mem.shared) size = Math.ceil(size / LOOKUPS_PCPU_STRIDE) * LOOKUPS_PCPU_STRIDE + ncpus * LOOKUPS_PCPU_STRIDE;
    const base = mem.alloc(size, `map ${spec.name}`);
    const u32 = mem.u32;
    const w = (off: number, v: number) => {
      u32[(base + off) >>> 2] = v;
    };
    w(M_TYPE, t);
    w(M_KEY_SIZE, spec.keySize);
    w(M_VALUE_SIZE, spec.valueSize);
    w(M_MAX_ENTRIES, spec.maxEntries);
    w(M_FLAGS, spec.flags);
    w(M_VALUE_STRIDE, vstride);
    w(M_NCPUS, percpu);
    w(M_ELEM_SIZE, elemSize);
    if (mem.shared) w(M_LOOKUPS_PCPU, base + Math.ceil(pcpuLookups / LOOKUPS_PCPU_STRIDE) * LOOKUPS_PCPU_STRIDE);
    if (t === BPF_MAP_TYPE_RINGBUF) {
      w(RB_MASK, spec.maxEntries - 1);
      w(RB_DATA, base + hdr);
    } else if (isArrayType(t)) {
      w(M_ELEMS, base + hdr);
    } else {
      const buckets = base + hdr;
      const elems = (buckets + nBuckets * 4 + ELEMS_ALIGN - 1) & ~(ELEMS_ALIGN - 1);
      w(M_N_BUCKETS, nBuckets);
      w(M_BUCKETS, buckets);
      w(M_ELEMS, elems);
      if (isLruType(t)) w(M_LRU_LINKS, elems + elemSize * spec.maxEntries); // zeroed: no links yet
      // kernel: htab->hashrnd = get_random_u32() unless BPF_F_ZERO_SEED.
      w(M_SEED, spec.flags & BPF_F_ZERO_SEED ? 0 : seed >>> 0);
      for (let i = 1; i <= spec.maxEntries; i++) u32[(elems + (i - 1) * elemSize + E_NEXT) >>> 2] = i < spec.maxEntries ? i + 1 : 0;
      w(M_FREE, 1);
    }
    return new BpfMap(mem, base, spec, percpu, id, ncpus);
  }

  get name(): string {
    return this.spec.name;
  }
  get typeName(): string {
    return MAP_TYPE_NAMES[this.spec.type] ?? String(this.spec.type);
  }
  /** Elements in use (arrays: max_entries). */
  get count(): number {
    if (isArrayType(this.spec.type)) return this.spec.maxEntries;
    return this.mem.u32[(this.base + M_COUNT) >>> 2]!;
  }
  /** Bytes of one value as lookup returns it: value_size per CPU for per-CPU maps. */
  get valueBytes(): number {
    return this.spec.valueSize * this.ncpus;
  }

  private fail(op: string, key: Uint8Array, errno: number, why: string): never {
    throw new MapError(`${op}: -${errnoName(errno)} (${why})`, `map ${this.name}: key ${hexBytes(key)}`, errno);
  }

  private checkKey(key: Uint8Array): void {
    if (key.length !== this.spec.keySize) {
      throw new MapError(`key has ${key.length} bytes, the map's key_size is ${this.spec.keySize}`, `map ${this.name}: key ${hexBytes(key)}`, EINVAL);
    }
  }

  /** Address of the first value slot for `key`, or 0 (no LRU touch: the syscall lookup does not mark it used either). */
  valueAddr(key: Uint8Array): number {
    this.mem.refresh();
    this.restoreHeader();
    return this.guarded(() => this.findValue(key));
  }
  private findValue(key: Uint8Array): number {
    const t = this.spec.type;
    const m = this.mem;
    if (isArrayType(t)) {
      const i = key[0]! | (key[1]! << 8) | (key[2]! << 16) | (key[3]! << 24);
      if (i >>> 0 >= this.spec.maxEntries) return 0;
      return m.u32[(this.base + M_ELEMS) >>> 2]! + (i >>> 0) * m.u32[(this.base + M_ELEM_SIZE) >>> 2]!;
    }
    if (t === BPF_MAP_TYPE_LPM_TRIE) {
      const e = lpmLookup(m, this.base, key);
      return e === 0 ? 0 : e + valueOff(m, this.base);
    }
    if (isHashType(t)) {
      const idx = htabFind(m, this.base, key);
      return idx === 0 ? 0 : elemAddr(m, this.base, idx) + valueOff(m, this.base);
    }
    return 0;
  }

  /** A copy of the value (per-CPU maps: every CPU's value back to back), or undefined. LPM: longest match. */
  lookup(key: Uint8Array): Uint8Array | undefined {
    this.checkKey(key);
    const a = this.valueAddr(key);
    if (a === 0) return undefined;
    const vs = this.spec.valueSize;
    if (this.ncpus === 1) return this.mem.u8.slice(a, a + vs);
    const out = new Uint8Array(vs * this.ncpus);
    const stride = align8(vs);
    for (let c = 0; c < this.ncpus; c++) out.set(this.mem.u8.subarray(a + c * stride, a + c * stride + vs), c * vs);
    return out;
  }

  /** BPF_MAP_UPDATE_ELEM with BPF_ANY / BPF_NOEXIST / BPF_EXIST. Throws MapError (-EEXIST, -ENOENT, -E2BIG, ...). */
  update(key: Uint8Array, value: Uint8Array, flags = BPF_ANY): void {
    this.checkKey(key);
    this.mem.refresh();
    this.restoreHeader();
    const t = this.spec.type;
    if (flags > BPF_EXIST) this.fail("update", key, EINVAL, `flags ${flags}`);
    if (value.length !== this.spec.valueSize && value.length !== this.valueBytes) {
      this.fail("update", key, EINVAL, `value has ${value.length} bytes, value_size is ${this.spec.valueSize}`);
    }
    if (t === BPF_MAP_TYPE_RINGBUF) this.fail("update", key, EINVAL, "ring buffers have no elements");
    let r: number;
    if (isArrayType(t)) {
      const a = this.valueAddr(key);
      if (a === 0) this.fail("update", key, E2BIG, `index >= max_entries ${this.spec.maxEntries}`);
      if (flags === BPF_NOEXIST) this.fail("update", key, EEXIST, "array elements always exist");
      const vs = this.spec.valueSize;
      for (let c = 0; c < this.ncpus; c++) {
        const src = value.length >= vs * (c + 1) ? c * vs : 0;
        this.mem.u8.set(value.subarray(src, src + vs), a + c * align8(vs));
      }
      return;
    } else if (t === BPF_MAP_TYPE_LPM_TRIE) r = this.guarded(() => withMapLock(this.mem, this.base, () => lpmUpdate(this.mem, this.base, key, value, flags)));
    else r = this.guarded(() => withMapLock(this.mem, this.base, () => htabUpdate(this.mem, this.base, key, value, flags)));
    if (r === -EEXIST) this.fail("update", key, EEXIST, "key exists and BPF_NOEXIST was given");
    if (r === -ENOENT) this.fail("update", key, ENOENT, "no such key and BPF_EXIST was given");
    if (r < 0) this.fail("update", key, -r, `map full: max_entries ${this.spec.maxEntries}`);
  }

  /** BPF_MAP_DELETE_ELEM: throws MapError -ENOENT if absent, -EINVAL for arrays. */
  delete(key: Uint8Array): void {
    this.checkKey(key);
    this.mem.refresh();
    this.restoreHeader();
    const t = this.spec.type;
    if (isArrayType(t) || t === BPF_MAP_TYPE_RINGBUF) this.fail("delete", key, EINVAL, "array elements cannot be deleted");
    const r = this.guarded(() => withMapLock(this.mem, this.base, () => (t === BPF_MAP_TYPE_LPM_TRIE ? lpmDelete(this.mem, this.base, key) : htabDelete(this.mem, this.base, key))));
    if (r === -ENOENT) this.fail("delete", key, ENOENT, "no such key");
    if (r < 0) this.fail("delete", key, -r, "invalid key");
  }

  /** Mark a key referenced, as a program's lookup does (LRU maps: bpf_lru_node_set_ref). */
  touch(key: Uint8Array): void {
    this.restoreHeader();
    this.guarded(() => {
      const idx = htabFind(this.mem, this.base, key);
      if (idx !== 0) lruTouch(this.mem, this.base, idx);
    });
  }

  /** Every element as [key, value] copies: arrays by index, hashes in bucket order (bpftool map dump's order). */
  *entries(): Generator<MapEntry> {
    this.mem.refresh();
    this.restoreHeader();
    const t = this.spec.type;
    if (t === BPF_MAP_TYPE_RINGBUF) return;
    if (isArrayType(t)) {
      const key = new Uint8Array(4);
      for (let i = 0; i < this.spec.maxEntries; i++) {
        new DataView(key.buffer).setUint32(0, i, true);
        const v = this.lookup(key)!;
        if (t === BPF_MAP_TYPE_PROG_ARRAY && v.every((b) => b === 0)) continue; // empty slots are absent
        yield [key.slice(), v];
      }
      return;
    }
    const ks = this.spec.keySize;
    const vo = valueOff(this.mem, this.base);
    const vs = this.spec.valueSize;
    const stride = align8(vs);
    const it = htabElements(this.mem, this.base);
    for (;;) {
      const r = this.guarded(() => it.next());
      if (r.done) return;
      const e = r.value;
      const key = this.mem.u8.slice(e + E_KEY, e + E_KEY + ks);
      const val = new Uint8Array(vs * this.ncpus);
      for (let c = 0; c < this.ncpus; c++) val.set(this.mem.u8.subarray(e + vo + c * stride, e + vo + c * stride + vs), c * vs);
      yield [key, val];
    }
  }

  /** Delete every element (hash types) or zero every value (arrays). */
  clear(): void {
    this.restoreHeader();
    if (isArrayType(this.spec.type)) {
      const elems = this.mem.u32[(this.base + M_ELEMS) >>> 2]!;
      this.mem.u8.fill(0, elems, elems + this.spec.maxEntries * this.mem.u32[(this.base + M_ELEM_SIZE) >>> 2]!);
      return;
    }
    for (const [k] of [...this.entries()]) this.delete(k);
  }

  /** Typed access by struct layouts (the program's BTF by default). */
  typed(keyLayout = this.keyLayout, valueLayout = this.valueLayout): TypedMap {
    if (!keyLayout || !valueLayout) throw new MapError("no struct layout for its key or value: give one (parseLayout)", `map ${this.name}`, EINVAL);
    return new TypedMap(this, keyLayout, valueLayout);
  }

  /** Header fields, for tests and `tcbox map list`. */
  header(off: number): number {
    return this.mem.u32[(this.base + off) >>> 2]!;
  }
  /**
   * Programs' map_lookup_elem calls on this map (hit or miss; the kernel's bpf_map_lookup_elem call count). Host
   * lookups (lookup, dump, the agent) do not count. A u32 that wraps: take deltas as `(after - before) >>> 0`.
   */
  get lookups(): number {
    this.mem.refresh();
    this.restoreHeader();
    let n = this.header(M_LOOKUPS);
    const pcpu = this.header(M_LOOKUPS_PCPU);
    if (pcpu !== 0) for (let c = 0; c < this.cpus; c++) n += this.mem.u32[(pcpu + c * LOOKUPS_PCPU_STRIDE) >>> 2]!;
    return n >>> 0;
  }
  get seed(): number {
    return this.header(M_SEED);
  }
  get nBuckets(): number {
    return this.header(M_N_BUCKETS);
  }
  get freeHead(): number {
    return this.header(M_FREE);
  }
  get buckets(): number {
    return this.header(M_BUCKETS);
  }
}

/** Keys and values as objects of named fields (`{ address: "10.96.0.10", dport: 53, proto: 17 }`). */
export class TypedMap {
  private readonly k: Uint8Array;
  private readonly v: Uint8Array;
  constructor(
    readonly map: BpfMap,
    readonly keyLayout: StructLayout,
    readonly valueLayout: StructLayout,
  ) {
    this.k = new Uint8Array(map.spec.keySize);
    this.v = new Uint8Array(map.spec.valueSize);
  }
  encodeKey(key: StructValue | FieldValue): Uint8Array {
    encodeStruct(this.keyLayout, key, this.k, `map ${this.map.name}: key`);
    return this.k.slice();
  }
  encodeValue(value: StructValue | FieldValue): Uint8Array {
    encodeStruct(this.valueLayout, value, this.v, `map ${this.map.name}: value`);
    return this.v.slice();
  }
  lookup(key: StructValue | FieldValue): StructValue | undefined {
    const v = this.map.lookup(this.encodeKey(key));
    return v && decodeStruct(this.valueLayout, v.subarray(0, this.map.spec.valueSize));
  }
  update(key: StructValue | FieldValue, value: StructValue | FieldValue, flags = BPF_ANY): void {
    this.map.update(this.encodeKey(key), this.encodeValue(value), flags);
  }
  delete(key: StructValue | FieldValue): void {
    this.map.delete(this.encodeKey(key));
  }
  *entries(): Generator<{ key: StructValue; value: StructValue }> {
    for (const [k, v] of this.map.entries()) {
      yield { key: decodeStruct(this.keyLayout, k), value: decodeStruct(this.valueLayout, v.subarray(0, this.map.spec.valueSize)) };
    }
  }
}

export { BPF_ANY, BPF_NOEXIST, BPF_EXIST, ENOENT };
