// tcbox's programmable dataplane: eBPF-style tc programs written in AssemblyScript, run as WebAssembly against
// maps shared with the TypeScript host. This file is the public entry point and records the design decisions.
//
// One memory per kernel. Every program loaded into a BpfKernel imports the same WebAssembly.Memory. Maps live
// in it, so a program's map_lookup_elem is a few loads in WebAssembly (no call into JS: a JS-backed lookup was
// measured 1.3-3.5x slower), and the host reads and writes the same bytes like cilium-agent and bpftool do
// (maps/*.ts implement the SDK's layout and algorithms a second time, in TypeScript; tests cross-check them).
//
// Regions. Low memory is the kernel's: a control block (trap reason, budget, clock, PRNG state), 1024 sk_buff
// contexts and a 1 MiB packet arena. Above it each program's static data (strings, memory.data buffers) and each
// map get their own region from a first-fit allocator. AssemblyScript places static data at an absolute
// --memoryBase, so two programs in one memory must be compiled for different bases: the loader compiles .ts
// programs itself (in-process asc, well under 2 s) at the lowest free address, and accepts a prebuilt .wasm
// (tcbox build, default base 2 MiB, --memory-base to choose) only if its data segments fall in free memory,
// else it refuses with a hint. Programs may not grow memory (no run-time allocation: the verifier rejects
// memory.grow), so nothing moves under the host.
//
// Maps are declared by the program at top level (map_def<K, V>(type, max_entries, name, pinning)), which calls
// the one load-time import tcbox.map_create: the host validates the declaration like the kernel's map_alloc
// checks, then creates the map or, for PIN_GLOBAL_NS, finds the pinned one by name (bpffs), so pinned maps
// survive unload and reload. Struct layouts (field names and types of @unmanaged classes) are recorded at build
// time in a custom section, the way BTF describes maps to bpftool, so `--maps seed.json` and `tcbox map dump`
// speak in field names.
//
// Bounded execution. The kernel proves termination statically; WebAssembly cannot, so instrument.ts adds a
// budget counter at every loop header and at the entry of every function that calls another (an inlined
// decrement; binaryen's log-execution pass, at every entry, exit and loop, for modules the walk does not know):
// 1,000,000 units per packet by default. Traps (budget, out-of-bounds packet access, abort, any WebAssembly trap)
// drop that packet with TC_ACT_SHOT, are counted per program by reason, and the batch continues with the next
// packet. Map helpers search before they write and then write without loops, so a budget stop can never leave a
// map half-updated.
//
// Fast path. A batch runner added at load time runs an entry point over N contexts in one call; the host fills
// contexts and packet bytes in place (PacketBatch) and reads verdicts and rewritten bytes back in place. The
// runner also counts the verdicts (control block), so the host visits single packets only for drops (their
// reasons) and unusual verdicts. A hash map lookup reads the bucket slot and one element: elements start
// 64-byte aligned and keep only next, hash (with the LRU reference bit), key and value; LRU list links live in
// a separate array that only inserts and evictions touch. Helpers
// that need no host (checksums, jhash, maps, redirect bookkeeping, prandom, the clock) run inside WebAssembly;
// only tail calls and bpf_printk call out.
export { BpfKernel, BpfObject, type KernelOptions, type LoadOptions } from "./kernel.js";
export { BpfProgram, type RunResult, type ProgramStats, type TrapReason } from "./program.js";
export { PacketBatch, type PacketMeta } from "./batch.js";
export { BpfMap, TypedMap } from "./maps/map.js";
export { parseLayout, encodeStruct, decodeStruct, hexBytes } from "./maps/struct.js";
export { ringbufConsume, ringbufDropped } from "./maps/ringbuf.js";
export { TcHooks, tcOutcome, type TcDirection, type TcFilter, type TcOutcome } from "./tc.js";
export { applySeed, dumpSeed, type MapSeed } from "./seed.js";
export { compileProgram } from "./compile.js";
export { BpfError, CompileError, VerifierError, MapError } from "./errors.js";
export * from "./abi.js";
export * from "./maps/layout.js";
