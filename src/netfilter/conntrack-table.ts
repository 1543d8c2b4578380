// Conntrack storage: struct-of-arrays entries and a chained hash of their two tuples
// (kernel: struct nf_conn with tuplehash[IP_CT_DIR_MAX], nf_conntrack_hash, hlist_nulls chains).
//
// Entry `i` owns two tuple nodes: node 2i is its ORIGINAL tuple, node 2i+1 its REPLY tuple, so a node found in a
// chain gives both the entry (node >> 1) and the direction (node & 1). Chains are singly linked through `hnext`;
// bucket heads live in `heads`. Nothing here allocates per packet; the arrays grow by doubling up to `max`.
import { reciprocalScale, tupleHash } from "./tuple.js";

// ---- status bits (include/uapi/linux/netfilter/nf_conntrack_common.h, enum ip_conntrack_status) ----
export const IPS_EXPECTED = 1 << 0;
export const IPS_SEEN_REPLY = 1 << 1;
export const IPS_ASSURED = 1 << 2;
export const IPS_CONFIRMED = 1 << 3;
export const IPS_SRC_NAT = 1 << 4;
export const IPS_DST_NAT = 1 << 5;
export const IPS_NAT_MASK = IPS_SRC_NAT | IPS_DST_NAT;
export const IPS_SEQ_ADJUST = 1 << 6;
export const IPS_SRC_NAT_DONE = 1 << 7;
export const IPS_DST_NAT_DONE = 1 << 8;
export const IPS_NAT_DONE_MASK = IPS_SRC_NAT_DONE | IPS_DST_NAT_DONE;
export const IPS_DYING = 1 << 9;
export const IPS_FIXED_TIMEOUT = 1 << 10;
export const IPS_TEMPLATE = 1 << 11;
export const IPS_UNTRACKED = 1 << 12;
export const IPS_NAT_CLASH = 1 << 12; // kernel reuses the UNTRACKED bit value for NAT_CLASH (never on the same ct)
export const IPS_HELPER = 1 << 13;
export const IPS_OFFLOAD = 1 << 14;

// ---- ConntrackTable.tcp: word offsets in an entry's TCP record ----
/** Words per entry. */
export const TCP_STRIDE = 24;
/** Offset of the REPLY direction's window data (ORIGINAL's is at 0). */
export const TCP_SIDE = 8;
/** Per direction (+ dir * TCP_SIDE): td_end, td_maxend, td_maxwin, td_maxack, td_scale, flags (IP_CT_TCP_FLAG_*). */
export const TD_END = 0;
export const TD_MAXEND = 1;
export const TD_MAXWIN = 2;
export const TD_MAXACK = 3;
export const TD_SCALE = 4;
export const TD_FLAGS = 5;
/** Per entry: last_index, last_dir, retrans, last_flags, last_seq, last_ack, last_end, last_win, last_wscale. */
export const TCP_LAST_INDEX = 6;
export const TCP_LAST_DIR = 7;
export const TCP_RETRANS = 14;
export const TCP_LAST_FLAGS = 15;
export const TCP_LAST_SEQ = 16;
export const TCP_LAST_ACK = 17;
export const TCP_LAST_END = 18;
export const TCP_LAST_WIN = 19;
export const TCP_LAST_WSCALE = 20;

export const IP_CT_DIR_ORIGINAL = 0;
export const IP_CT_DIR_REPLY = 1;

/** `conntrack -S` counters (kernel struct ip_conntrack_stat, summed over CPUs). */
export interface ConntrackStats {
  found: number;
  invalid: number;
  insert: number;
  insert_failed: number;
  drop: number;
  early_drop: number;
  error: number;
  search_restart: number;
  clash_resolve: number;
  chaintoolong: number;
}

export function emptyStats(): ConntrackStats {
  return {
    found: 0,
    invalid: 0,
    insert: 0,
    insert_failed: 0,
    drop: 0,
    early_drop: 0,
    error: 0,
    search_restart: 0,
    clash_resolve: 0,
    chaintoolong: 0,
  };
}

export interface ConntrackTableOptions {
  /** net.netfilter.nf_conntrack_max: entries (confirmed or not) that may exist at once. */
  max?: number;
  /** net.netfilter.nf_conntrack_buckets: hash chains. */
  buckets?: number;
  /** Seed of the tuple hash (the kernel's random siphash key). */
  hashSeed?: number;
}

const INITIAL_CAPACITY = 64;

export class ConntrackTable {
  readonly max: number;
  readonly buckets: number;
  readonly hashSeed: number;
  /** Entries allocated (kernel cnet->count: confirmed and unconfirmed). */
  count = 0;
  capacity = 0;
  readonly stats: ConntrackStats = emptyStats();
  /** Current time in seconds (the kernel's jiffies / HZ). Advance it with `Conntrack.setTime`. */
  now = 0;

  // ---- tuple nodes (2 per entry) ----
  tSrc = new Uint32Array(0);
  tDst = new Uint32Array(0);
  tPorts = new Uint32Array(0);
  tProto = new Uint8Array(0);
  /** The same four words interleaved per node (src, dst, ports, proto): one cache line per chain step. */
  keys = new Uint32Array(0);
  /** Next node in the same hash chain, -1 at the end. */
  hnext = new Int32Array(0);
  /** 1 while the node is linked into its chain (confirmed entries; NAT_CLASH entries link only their REPLY node). */
  hashed = new Uint8Array(0);
  /** Per-direction packet and byte counters (kernel nf_conn_counter, shown with nf_conntrack_acct=1). */
  packets = new Float64Array(0);
  bytes = new Float64Array(0);

  // ---- entries ----
  /** ip_conntrack_status bits. */
  status = new Uint32Array(0);
  /** Absolute expiry time in seconds (kernel ct->timeout). */
  expires = new Float64Array(0);
  /** ct->mark (CONNMARK). */
  mark = new Uint32Array(0);
  /** L4 state: TCP_CONNTRACK_* for TCP, 0 otherwise. */
  l4state = new Uint8Array(0);
  /** UDP: time after which a replied flow counts as a stream (kernel ct->proto.udp.stream_ts). */
  streamTs = new Float64Array(0);
  /** Creation order, for listing in a stable order. */
  serial = new Float64Array(0);
  /** 1 while the entry is allocated. */
  inUse = new Uint8Array(0);
  /** Source-NAT index (kernel nf_nat_bysource): next entry with the same original source, -1 at the end. */
  bsNext = new Int32Array(0);
  bsLinked = new Uint8Array(0);
  /**
   * TCP tracking (kernel struct ip_ct_tcp), one strided record per entry at i * TCP_STRIDE (TCP_* word offsets
   * below): both directions' window data (side `dir` at + dir * TCP_SIDE) and the last-packet annotations. One
   * array and one base index per packet instead of a load and a bounds check per separate array.
   */
  tcp = new Uint32Array(0);

  readonly heads: Int32Array;
  /** 32 - log2(buckets) when the bucket count is a power of two, else -1. */
  private readonly bucketShift: number;
  readonly bsHeads: Int32Array;
  private freeList = new Int32Array(0);
  private freeTop = 0;
  private dying = new Int32Array(0);
  /** Killed slots waiting for flushDying (read by Conntrack.in to skip the call when there are none). */
  protected dyingTop = 0;
  private nextFresh = 0;
  private serialCounter = 0;

  constructor(opts: ConntrackTableOptions = {}) {
    this.max = opts.max ?? 262144;
    this.buckets = opts.buckets ?? Math.min(262144, Math.max(16, this.max));
    this.hashSeed = (opts.hashSeed ?? 0x5eed1234) >>> 0;
    this.heads = new Int32Array(this.buckets).fill(-1);
    const log2 = Math.log2(this.buckets);
    this.bucketShift = Number.isInteger(log2) ? 32 - log2 : -1;
    this.bsHeads = new Int32Array(this.buckets).fill(-1);
    this.grow(Math.min(INITIAL_CAPACITY, Math.max(1, this.max)));
  }

  private grow(cap: number): void {
    const n = cap * 2;
    const u32 = (a: Uint32Array, len: number) => { const b = new Uint32Array(len); b.set(a); return b; };
    const u8 = (a: Uint8Array, len: number) => { const b = new Uint8Array(len); b.set(a); return b; };
    const i32 = (a: Int32Array, len: number) => { const b = new Int32Array(len); b.set(a); return b; };
    const f64 = (a: Float64Array, len: number) => { const b = new Float64Array(len); b.set(a); return b; };
    this.tSrc = u32(this.tSrc, n);
    this.tDst = u32(this.tDst, n);
    this.tPorts = u32(this.tPorts, n);
    this.tProto = u8(this.tProto, n);
    this.keys = u32(this.keys, n * 4);
    this.hnext = i32(this.hnext, n);
    this.hashed = u8(this.hashed, n);
    this.packets = f64(this.packets, n);
    this.bytes = f64(this.bytes, n);
    this.tcp = u32(this.tcp, cap * TCP_STRIDE);
    this.status = u32(this.status, cap);
    this.expires = f64(this.expires, cap);
    this.mark = u32(this.mark, cap);
    this.l4state = u8(this.l4state, cap);
    this.streamTs = f64(this.streamTs, cap);
    this.serial = f64(this.serial, cap);
    this.inUse = u8(this.inUse, cap);
    this.bsNext = i32(this.bsNext, cap);
    this.bsLinked = u8(this.bsLinked, cap);
    this.freeList = i32(this.freeList, cap);
    this.dying = i32(this.dying, cap);
    this.capacity = cap;
  }

  /** Take a free entry slot and set both tuples (not hashed yet: unconfirmed). -1 when `max` entries exist. */
  allocSlot(src: number, dst: number, ports: number, proto: number, rsrc: number, rdst: number, rports: number): number {
    if (this.count >= this.max) return -1;
    let i: number;
    if (this.freeTop > 0) i = this.freeList[--this.freeTop]!;
    else {
      if (this.nextFresh >= this.capacity) this.grow(Math.min(this.max, this.capacity * 2));
      i = this.nextFresh++;
    }
    this.count++;
    const o = i * 2;
    const r = o + 1;
    this.setTuple(o, src, dst, ports, proto);
    this.setTuple(r, rsrc, rdst, rports, proto);
    this.hashed[o] = 0; this.hashed[r] = 0;
    this.packets[o] = 0; this.packets[r] = 0; this.bytes[o] = 0; this.bytes[r] = 0;
    this.tcp.fill(0, i * TCP_STRIDE, (i + 1) * TCP_STRIDE);
    this.status[i] = 0;
    this.expires[i] = 0;
    this.mark[i] = 0;
    this.l4state[i] = 0;
    this.streamTs[i] = 0;
    this.serial[i] = this.serialCounter++;
    this.inUse[i] = 1;
    this.bsLinked[i] = 0;
    return i;
  }

  /** Write a node's tuple (both layouts). Only for unhashed nodes: the bucket depends on it. */
  setTuple(node: number, src: number, dst: number, ports: number, proto: number): void {
    this.tSrc[node] = src;
    this.tDst[node] = dst;
    this.tPorts[node] = ports;
    this.tProto[node] = proto;
    const k = node * 4;
    this.keys[k] = src;
    this.keys[k + 1] = dst;
    this.keys[k + 2] = ports;
    this.keys[k + 3] = proto;
  }

  bucketOf(node: number): number {
    return this.bucketOfTuple(this.tSrc[node]!, this.tDst[node]!, this.tPorts[node]!, this.tProto[node]!);
  }

  bucketOfTuple(src: number, dst: number, ports: number, proto: number): number {
    const h = tupleHash(src, dst, ports, proto, this.hashSeed);
    // reciprocal_scale(h, 2^k) is h >>> (32 - k): no multiply when the bucket count is a power of two.
    return this.bucketShift >= 0 ? (this.bucketShift === 32 ? 0 : h >>> this.bucketShift) : reciprocalScale(h, this.buckets);
  }

  /** Link a node at the head of its chain (kernel hlist_nulls_add_head_rcu). */
  hashNode(node: number): void {
    const b = this.bucketOf(node);
    this.hnext[node] = this.heads[b]!;
    this.heads[b] = node;
    this.hashed[node] = 1;
  }

  unhashNode(node: number): void {
    if (!this.hashed[node]) return;
    const b = this.bucketOf(node);
    let n = this.heads[b]!;
    if (n === node) this.heads[b] = this.hnext[node]!;
    else {
      while (n >= 0 && this.hnext[n] !== node) n = this.hnext[n]!;
      if (n >= 0) this.hnext[n] = this.hnext[node]!;
    }
    this.hashed[node] = 0;
  }

  /**
   * The node holding this exact tuple among hashed (confirmed) entries, or -1. An expired entry found on the way
   * is removed, as the kernel's lookup does (nf_ct_gc_expired), and does not match.
   */
  findNode(src: number, dst: number, ports: number, proto: number): number {
    const keys = this.keys;
    const hnext = this.hnext;
    let n = this.heads[this.bucketOfTuple(src, dst, ports, proto)]!;
    while (n >= 0) {
      const k = n * 4;
      if (keys[k] === src && keys[k + 1] === dst && keys[k + 2] === ports && keys[k + 3] === proto) {
        const i = n >> 1;
        if (this.expires[i]! <= this.now) {
          this.kill(i);
          return -1;
        }
        return n;
      }
      n = hnext[n]!;
    }
    return -1;
  }

  /**
   * Unlink an entry from every index and free its slot (kernel nf_ct_delete + destroy). The slot is only reused
   * after `flushDying()` (called at the start of the next packet), so a packet that still refers to the entry
   * (kernel: it holds a reference) can finish its walk with the tuples intact.
   */
  kill(i: number): void {
    if (!this.inUse[i]) return;
    this.unhashNode(i * 2);
    this.unhashNode(i * 2 + 1);
    this.unlinkBysource(i);
    this.inUse[i] = 0;
    this.status[i] |= IPS_DYING;
    this.dying[this.dyingTop++] = i;
    this.count--;
  }

  /** Return killed slots to the free list. */
  flushDying(): void {
    while (this.dyingTop > 0) this.freeList[this.freeTop++] = this.dying[--this.dyingTop]!;
  }

  // ---- nf_nat_bysource: entries with a source manip, indexed by their original source (ip, port, proto) ----

  bysourceBucket(src: number, sport: number, proto: number): number {
    return reciprocalScale(tupleHash(src, 0, sport, proto, this.hashSeed ^ 0x9e3779b9), this.buckets);
  }

  linkBysource(i: number): void {
    if (this.bsLinked[i]) return;
    const o = i * 2;
    const b = this.bysourceBucket(this.tSrc[o]!, this.tPorts[o]! >>> 16, this.tProto[o]!);
    this.bsNext[i] = this.bsHeads[b]!;
    this.bsHeads[b] = i;
    this.bsLinked[i] = 1;
  }

  unlinkBysource(i: number): void {
    if (!this.bsLinked[i]) return;
    const o = i * 2;
    const b = this.bysourceBucket(this.tSrc[o]!, this.tPorts[o]! >>> 16, this.tProto[o]!);
    let n = this.bsHeads[b]!;
    if (n === i) this.bsHeads[b] = this.bsNext[i]!;
    else {
      while (n >= 0 && this.bsNext[n] !== i) n = this.bsNext[n]!;
      if (n >= 0) this.bsNext[n] = this.bsNext[i]!;
    }
    this.bsLinked[i] = 0;
  }

  /** Allocated entry indexes in creation order (setup and printing only). */
  entries(): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.nextFresh; i++) if (this.inUse[i]) out.push(i);
    return out.sort((a, b) => this.serial[a]! - this.serial[b]!);
  }

  /** Highest slot index ever used plus one (for scans). */
  get slots(): number {
    return this.nextFresh;
  }
}
