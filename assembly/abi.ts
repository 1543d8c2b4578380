// The memory contract between programs and the host (src/ebpf/abi.ts holds the same numbers; a test checks
// that both agree). One WebAssembly.Memory per tcbox "kernel": low addresses are the kernel's own (control
// block, sk_buff contexts, packet slots), then program static data and maps, each in its own region.

/** Control block: per-run state the host writes before a call and reads after it. */
export const CB_TRAP_REASON: usize = 0x100; // u32: why the last call trapped (TRAP_*), 0 if it did not
export const CB_BATCH_INDEX: usize = 0x104; // u32: index of the context being run in a batch
export const CB_BUDGET: usize = 0x108; // u32: budget units per packet (see src/ebpf/budget.ts)
export const CB_CPU: usize = 0x10c; // u32: bpf_get_smp_processor_id()
export const CB_KTIME: usize = 0x110; // u64: bpf_ktime_get_ns(), set by the host (virtual clock)
export const CB_PRANDOM: usize = 0x118; // u32[4]: xoshiro128** state behind bpf_get_prandom_u32()
export const CB_HASHRND: usize = 0x128; // u32: seed of the flow hash (skb_get_hash)
export const CB_NR_CPUS: usize = 0x12c; // u32: possible CPUs (per-CPU map slots)
// 0x140..0x16c: the host's batch runner counts verdicts there (src/ebpf/abi.ts CB_VERDICTS); not for programs.
export const CB_SCRATCH: usize = 0x200; // 512 bytes: LPM masked keys, csum_diff buffer

/** Why a call trapped: set by the SDK (or the injected budget check) right before `unreachable`. */
export const TRAP_NONE: u32 = 0;
export const TRAP_OOB: u32 = 1; // packet access out of [data, data_end)
export const TRAP_BUDGET: u32 = 2; // instruction budget exhausted (runaway loop)
export const TRAP_ABORT: u32 = 3; // abort(): an assertion failed in the program

/** sk_buff contexts: one per packet of a batch. */
export const CTX_BASE: usize = 0x1000;
export const CTX_SIZE: usize = 256;
export const BATCH_MAX: u32 = 1024;
/** The packet arena: the packets of a batch, back to back; each context's data/data_end point into it. */
export const PKT_BASE: usize = 0x50000;
export const PKT_ARENA: usize = 0x100000;
