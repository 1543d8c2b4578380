// The memory contract between programs and the host (src/ebpf/abi.ts holds the same numbers; a test checks
// that both agree). One WebAssembly.Memory per tcbox "kernel": low addresses are the kernel's own (control
// block, sk_buff contexts, packet slots), then program static data and maps, each in its own region.

/**
 * Lanes (src/ebpf/lanes.ts): with worker threads the kernel's memory is a shared WebAssembly.Memory and each
 * worker (a "CPU") runs its own build of the program, whose control block, contexts and packet arena sit at
 * LANE_BASE + the addresses below (the loader defines TCBOX_LANE with asc --use; 0 otherwise, so a build without
 * lanes is the same module as before). TCBOX_SHARED is defined for builds that import a shared memory: the map
 * helpers then take the map's lock for updates (assembly/maps.ts); otherwise that code is folded away.
 */
// @ts-ignore: defined by the loader (asc --use TCBOX_LANE=N) for worker lanes
export const LANE_BASE: usize = isDefined(TCBOX_LANE) ? <usize>TCBOX_LANE : 0;
// @ts-ignore: defined by the loader (asc --use TCBOX_SHARED=1) for a shared memory
export const SHARED_MEMORY: bool = isDefined(TCBOX_SHARED);

/** Control block: per-run state the host writes before a call and reads after it. */
export const CB_TRAP_REASON: usize = LANE_BASE + 0x100; // u32: why the last call trapped (TRAP_*), 0 if it did not
export const CB_BATCH_INDEX: usize = LANE_BASE + 0x104; // reserved (the batch runner keeps its index in a wasm global)
export const CB_BUDGET: usize = LANE_BASE + 0x108; // u32: budget units per packet (see src/ebpf/budget.ts)
export const CB_CPU: usize = LANE_BASE + 0x10c; // u32: bpf_get_smp_processor_id()
export const CB_KTIME: usize = LANE_BASE + 0x110; // u64: bpf_ktime_get_ns(), set by the host (virtual clock)
export const CB_PRANDOM: usize = LANE_BASE + 0x118; // u32[4]: xoshiro128** state behind bpf_get_prandom_u32()
export const CB_HASHRND: usize = LANE_BASE + 0x128; // u32: seed of the flow hash (skb_get_hash)
export const CB_NR_CPUS: usize = LANE_BASE + 0x12c; // u32: possible CPUs (per-CPU map slots)
export const CB_LOCK_HELD: usize = LANE_BASE + 0x130; // u32: address of the map lock a helper holds (shared memory), 0 if none
// 0x140..0x16c: the host's batch runner counts verdicts there (src/ebpf/abi.ts CB_VERDICTS); not for programs.
export const CB_SCRATCH: usize = LANE_BASE + 0x200; // 512 bytes: LPM masked keys, csum_diff buffer

/** Why a call trapped: set by the SDK (or the injected budget check) right before `unreachable`. */
export const TRAP_NONE: u32 = 0;
export const TRAP_OOB: u32 = 1; // packet access out of [data, data_end)
export const TRAP_BUDGET: u32 = 2; // instruction budget exhausted (runaway loop)
export const TRAP_ABORT: u32 = 3; // abort(): an assertion failed in the program

/** sk_buff contexts: one per packet of a batch. */
export const CTX_BASE: usize = LANE_BASE + 0x1000;
export const CTX_SIZE: usize = 256;
export const BATCH_MAX: u32 = 1024;
/** The packet arena: the packets of a batch, back to back; each context's data/data_end point into it. */
export const PKT_BASE: usize = LANE_BASE + 0x50000;
export const PKT_ARENA: usize = 0x100000;
