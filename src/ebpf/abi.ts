// The memory contract with programs: the same numbers as assembly/abi.ts, assembly/ctx.ts and
// assembly/map_layout.ts (test/ebpf/abi.test.ts compiles a probe program to check they agree).

// Control block (kernel-owned, low memory).
export const CB_TRAP_REASON = 0x100;
export const CB_BATCH_INDEX = 0x104; // reserved: the batch runner keeps its index in a global now (instrument.ts INDEX_GLOBAL)
export const CB_BUDGET = 0x108;
export const CB_CPU = 0x10c;
export const CB_KTIME = 0x110;
export const CB_PRANDOM = 0x118;
export const CB_HASHRND = 0x128;
export const CB_NR_CPUS = 0x12c;
/** Shared memory: the address of the map lock the program holds (assembly/maps.ts map_lock), 0 if none. */
export const CB_LOCK_HELD = 0x130;
/**
 * Host-only: verdict counts of the current batch call, written by the batch runner (instrument.ts), read and
 * cleared by BpfProgram.runBatch: u32[VERDICT_SLOTS], slot r + 1 for TC_ACT_* r in -1..8, the last slot for
 * any other value. Programs never touch it.
 */
export const CB_VERDICTS = 0x140;
export const VERDICT_SLOTS = 11;
export const CB_SCRATCH = 0x200;

export const TRAP_NONE = 0;
export const TRAP_OOB = 1;
export const TRAP_BUDGET = 2;
export const TRAP_ABORT = 3;

export const CTX_BASE = 0x1000;
export const CTX_SIZE = 256;
export const BATCH_MAX = 1024;
export const PKT_BASE = 0x50000;
export const PKT_ARENA = 0x100000;
/**
 * A lane: the control block, contexts and packet arena of one worker thread (a "CPU"), at lane base + the
 * addresses above. Lane 0 is the kernel's own (base 0); the others are allocated above HEAP_BASE (lanes.ts).
 */
export const LANE_SIZE = PKT_BASE + PKT_ARENA;
/** Where `tcbox build` places a program's static data unless told otherwise (`--memory-base`). */
export const PREBUILT_BASE = 0x200000;
/** Maps and programs compiled at load time are allocated from here up. */
export const HEAP_BASE = 0x400000;
/** Largest packet (IPv4 total length limit plus an Ethernet header). */
export const MAX_PACKET = 65535 + 18;
export const WASM_PAGE = 65536;

// struct __sk_buff offsets (include/uapi/linux/bpf.h), then tcbox's private fields.
export const SKB_LEN = 0;
export const SKB_PKT_TYPE = 4;
export const SKB_MARK = 8;
export const SKB_QUEUE_MAPPING = 12;
export const SKB_PROTOCOL = 16;
export const SKB_PRIORITY = 32;
export const SKB_INGRESS_IFINDEX = 36;
export const SKB_IFINDEX = 40;
export const SKB_TC_INDEX = 44;
export const SKB_CB = 48;
export const SKB_HASH = 68;
export const SKB_TC_CLASSID = 72;
export const SKB_DATA = 76;
export const SKB_DATA_END = 80;
export const SKB_TSTAMP = 152;
export const SKB_WIRE_LEN = 160;
export const SKB_RETVAL = 192;
export const SKB_REDIRECT_IFINDEX = 196;
export const SKB_REDIRECT_FLAGS = 200;
export const SKB_CAPACITY = 204;
export const SKB_DROP_REASON = 208;
export const SKB_TAIL_CALLS = 212;

// include/uapi/linux/pkt_cls.h
export const TC_ACT_UNSPEC = -1;
export const TC_ACT_OK = 0;
export const TC_ACT_RECLASSIFY = 1;
export const TC_ACT_SHOT = 2;
export const TC_ACT_PIPE = 3;
export const TC_ACT_STOLEN = 4;
export const TC_ACT_QUEUED = 5;
export const TC_ACT_REPEAT = 6;
export const TC_ACT_REDIRECT = 7;
export const TC_ACT_TRAP = 8;

export const TC_ACT_NAMES: Record<number, string> = {
  [-1]: "TC_ACT_UNSPEC",
  0: "TC_ACT_OK",
  1: "TC_ACT_RECLASSIFY",
  2: "TC_ACT_SHOT",
  3: "TC_ACT_PIPE",
  4: "TC_ACT_STOLEN",
  5: "TC_ACT_QUEUED",
  6: "TC_ACT_REPEAT",
  7: "TC_ACT_REDIRECT",
  8: "TC_ACT_TRAP",
};

export function tcActName(v: number): string {
  return TC_ACT_NAMES[v] ?? `TC_ACT_${v}`;
}

export const BPF_F_INGRESS = 1;
export const BPF_F_PEER = 2;
export const MAX_TAIL_CALL_CNT = 33;

// errno
export const ENOENT = 2;
export const E2BIG = 7;
export const EAGAIN = 11;
export const EEXIST = 17;
export const EINVAL = 22;
export const ENOSPC = 28;
