// The in-memory layout of maps, shared by programs (this SDK) and the host (src/ebpf/maps/layout.ts mirrors
// these numbers). A map is one region of linear memory: a header, then its buckets and elements.

// enum bpf_map_type (include/uapi/linux/bpf.h)
export const BPF_MAP_TYPE_HASH: u32 = 1;
export const BPF_MAP_TYPE_ARRAY: u32 = 2;
export const BPF_MAP_TYPE_PROG_ARRAY: u32 = 3;
export const BPF_MAP_TYPE_PERCPU_HASH: u32 = 5;
export const BPF_MAP_TYPE_PERCPU_ARRAY: u32 = 6;
export const BPF_MAP_TYPE_LRU_HASH: u32 = 9;
export const BPF_MAP_TYPE_LRU_PERCPU_HASH: u32 = 10;
export const BPF_MAP_TYPE_LPM_TRIE: u32 = 11;
export const BPF_MAP_TYPE_RINGBUF: u32 = 27;

// Header fields (byte offsets from the map's base address), all u32.
export const M_TYPE: u32 = 0;
export const M_KEY_SIZE: u32 = 4;
export const M_VALUE_SIZE: u32 = 8;
export const M_MAX_ENTRIES: u32 = 12;
export const M_FLAGS: u32 = 16;
export const M_N_BUCKETS: u32 = 20; // hash: power of two >= max_entries, like htab->n_buckets
export const M_COUNT: u32 = 24; // elements in use
export const M_ELEM_SIZE: u32 = 28; // stride of the element array
export const M_BUCKETS: u32 = 32; // address of u32[n_buckets]: element index + 1 of the chain head, 0 = empty
export const M_ELEMS: u32 = 36; // address of the element array (arrays: the values)
export const M_FREE: u32 = 40; // head of the free-element list (index + 1)
export const M_LRU_HEAD: u32 = 44; // most recently used (index + 1)
export const M_LRU_TAIL: u32 = 48; // least recently used: evicted first
export const M_SEED: u32 = 52; // htab->hashrnd
export const M_VALUE_STRIDE: u32 = 56; // value_size rounded up to 8 (one per-CPU slot)
export const M_NCPUS: u32 = 60; // per-CPU slots per element (1 for the others)
// Program lookups (bpf_map_lookup_elem calls, hit or miss; host lookups do not count), u32, wrapping. On a
// shared memory each CPU counts in its own cache line instead (M_LOOKUPS_PCPU): the total is their sum.
export const M_LOOKUPS: u32 = 64;
// LRU types: address of u32[4 * max_entries], the links of element idx at (idx - 1) * LRU_LINK_SIZE (L_PREV,
// L_NEXT, L_CPREV). Kept out of the elements so a lookup reads one element and nothing else (the links change
// only on inserts and removals).
export const M_LRU_LINKS: u32 = 68;
// Shared memory (worker threads): the map's lock, 0 = free, taken by updates and deletes (the kernel's bucket
// lock and free-list lock, coarsened to one per map: see assembly/maps.ts); lookups take no lock.
export const M_LOCK: u32 = 72;
// Shared memory: address of the per-CPU lookup counts (a u32 per CPU, 64 bytes apart), 0 otherwise.
export const M_LOOKUPS_PCPU: u32 = 76;
export const MAP_HDR_SIZE: u32 = 80; // 8-aligned
// LPM trie: a count per prefix length after the header, so lookups probe only lengths in use.
export const M_LPM_COUNTS: u32 = MAP_HDR_SIZE; // u32[129] (data up to 16 bytes: IPv4 and IPv6)
export const LPM_HDR_SIZE: u32 = MAP_HDR_SIZE + 132 * 4;
export const LPM_MAX_DATA: u32 = 16;
// Ring buffer: positions in bytes, free-running modulo 2^32; records are 8-byte aligned.
export const RB_CONSUMER: u32 = 20;
export const RB_PRODUCER: u32 = 24;
export const RB_MASK: u32 = 28;
export const RB_DATA: u32 = 32;
export const RB_DROPPED: u32 = 36;
export const RB_HDR_SIZE: u32 = 8; // BPF_RINGBUF_HDR_SZ: u32 len (with flags), u32 pad
export const RB_BUSY_BIT: u32 = 1 << 31; // BPF_RINGBUF_BUSY_BIT
export const RB_DISCARD_BIT: u32 = 1 << 30; // BPF_RINGBUF_DISCARD_BIT

// Hash element: next, hash (+ LRU ref bit), then the key padded to 8, then ncpus value slots. The element array
// starts 64-byte aligned, so an element of 64 bytes or less (a conntrack entry, a service) is one cache line.
export const E_NEXT: u32 = 0;
export const E_HASH: u32 = 4; // bits 0..30: the hash; bit 31: the LRU reference bit (LRU_REF)
export const E_KEY: u32 = 8;
export const HASH_MASK: u32 = 0x7fffffff; // the bits of the hash an element keeps (compared on lookup)
// bpf_lru_node.ref, kept in the top bit of the element's hash word: a lookup only sets it
// (bpf_lru_node_set_ref), eviction gives a referenced element a second chance (kernel/bpf/bpf_lru_list.c).
export const LRU_REF: u32 = 0x80000000;
// LRU links of an element (in the M_LRU_LINKS array): previous and next in the list, index + 1, 0 = none; and
// the element before it in its bucket's chain (0: it is the chain's first), so an eviction or a delete unlinks
// it from the chain with stores only, without reading the bucket and walking the chain to find its predecessor
// (on a full map every create evicts: that walk was a cache miss or two per create).
export const L_PREV: u32 = 0;
export const L_NEXT: u32 = 4;
export const L_CPREV: u32 = 8;
export const LRU_LINK_SIZE: u32 = 16; // one aligned 16-byte slot per element (4 bytes unused)
