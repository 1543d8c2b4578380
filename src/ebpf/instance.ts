// Instantiating a verified, instrumented program on a memory: its imports (the tcbox helpers that call the host)
// and its entry points as BpfPrograms. The kernel does it for programs it loads (kernel.ts); a worker thread does
// it for its lane's build of a program, on its view of the kernel's shared memory (lanes.ts).
import { CB_TRAP_REASON, E2BIG, ENOENT, MAX_TAIL_CALL_CNT, SKB_TAIL_CALLS, TRAP_ABORT } from "./abi.js";
import type { EntryPoint } from "./instrument.js";
import { BPF_MAP_TYPE_PROG_ARRAY, M_ELEMS, M_ELEM_SIZE, M_MAX_ENTRIES } from "./maps/layout.js";
import { acquire, PROGRAM_HOLDS } from "./maps/lock.js";
import type { MapSpec } from "./maps/spec.js";
import type { SharedMemory } from "./memory.js";
import { AbortTrap, BpfProgram } from "./program.js";
import { Wasm, type WasmGlobal, type WasmModule } from "./wasm-api.js";

export interface InstanceHooks {
  /** map_create: the address of the map the program declares (created, or found by name). */
  mapCreate(spec: MapSpec): number;
  /** The program a program array slot names, by id. */
  programById(id: number): BpfProgram | undefined;
  /** A bpf_printk line (without the object name). */
  trace(line: string): void;
}

/** Instantiate `module` (built for `lane`) and return its entry points, given ids by `idOf`. */
export function instantiate(
  mem: SharedMemory,
  module: WasmModule,
  entries: EntryPoint[],
  objectName: string,
  lane: number,
  hooks: InstanceHooks,
  idOf: (entry: string) => number,
): BpfProgram[] {
  let abortMsg: string | undefined;
  const instance = new Wasm.Instance(module, {
    env: {
      memory: mem.memory,
      abort: (msg: number, file: number, line: number, col: number) => {
        mem.u32[(lane + CB_TRAP_REASON) >>> 2] = TRAP_ABORT;
        abortMsg = `abort: ${readString(mem, msg)} at ${readString(mem, file)}:${line}:${col}`;
        throw new AbortTrap(abortMsg);
      },
    },
    tcbox: {
      map_create: (type: number, ks: number, vs: number, max: number, flags: number, namePtr: number, pinning: number, kt: number, vt: number) =>
        hooks.mapCreate({ type, keySize: ks, valueSize: vs, maxEntries: max, flags, name: readString(mem, namePtr), pinning, keyType: readString(mem, kt), valueType: readString(mem, vt) }),
      tail_call: (ctx: number, map: number, index: number) => tailCall(mem, ctx, map, index, hooks),
      // map_lock found the lock taken: wait for it here, off the budget (shared memory only).
      lock_wait: (lock: number) => acquire(mem.i32, lock >>> 2, PROGRAM_HOLDS),
      trace_printk: (fmt: number, a: bigint, b: bigint, c: bigint) => hooks.trace(formatPrintk(readString(mem, fmt), [a, b, c])),
    },
  });
  mem.refresh();
  const budget = instance.exports.__tcbox_budget as WasmGlobal;
  return entries.map(
    (e) =>
      new BpfProgram(
        idOf(e.name),
        e.name,
        objectName,
        mem,
        instance.exports[e.batch] as (c: number, n: number) => void,
        instance.exports[e.name] as (c: number) => number,
        budget,
        instance.exports.__tcbox_index as WasmGlobal,
        () => abortMsg,
        lane,
      ),
  );
}

/** bpf_tail_call: run the program in slot `index` of the program array on the same context. */
function tailCall(mem: SharedMemory, ctx: number, map: number, index: number, hooks: InstanceHooks): number {
  const u32 = mem.u32;
  if (u32[map >>> 2] !== BPF_MAP_TYPE_PROG_ARRAY || index >>> 0 >= u32[(map + M_MAX_ENTRIES) >>> 2]!) return -ENOENT;
  const id = u32[(u32[(map + M_ELEMS) >>> 2]! + index * u32[(map + M_ELEM_SIZE) >>> 2]!) >>> 2]!;
  const prog = id === 0 ? undefined : hooks.programById(id);
  if (!prog || prog.closed) return -ENOENT;
  const n = u32[(ctx + SKB_TAIL_CALLS) >>> 2]!;
  if (n >= MAX_TAIL_CALL_CNT) return -E2BIG;
  u32[(ctx + SKB_TAIL_CALLS) >>> 2] = n + 1;
  prog.resetBudget();
  return prog.entryFn(ctx);
}

/** The most bytes readString takes: a string's length word is the program's to write, up to 4 GiB. */
export const MAX_STRING_BYTES = 4096;

/**
 * An AssemblyScript string (UTF-16, its byte length in the word before it) from the program's memory: a map or
 * type name, an abort message, a printk format. At most MAX_STRING_BYTES and never past the end of memory ("..."
 * marks a cut), as bpf_probe_read_str takes a size: a corrupt length must not make the host build a 2 GiB string.
 */
export function readString(mem: SharedMemory, ptr: number): string {
  if (ptr === 0) return "";
  mem.refresh();
  const claimed = mem.u32[(ptr - 4) >>> 2] ?? 0;
  const len = Math.min(claimed, MAX_STRING_BYTES, Math.max(0, mem.u8.length - ptr));
  let s = "";
  for (let i = 0; i + 1 < len; i += 2) s += String.fromCharCode(mem.u8[ptr + i]! | (mem.u8[ptr + i + 1]! << 8));
  return len < claimed ? s + "..." : s;
}

/** bpf_printk formatting: %d %i %u %x %lld %llu %llx %pI4 and %%. */
export function formatPrintk(fmt: string, args: bigint[]): string {
  let i = 0;
  return fmt.replace(/%(%|l{0,2}[diux]|pI4)/g, (m, spec: string) => {
    if (spec === "%") return "%";
    const v = args[i++] ?? 0n;
    if (spec === "pI4") {
      const n = Number(v & 0xffffffffn);
      return [n & 255, (n >>> 8) & 255, (n >>> 16) & 255, n >>> 24].join(".");
    }
    const long = spec.startsWith("ll");
    const c = spec[spec.length - 1];
    if (c === "x") return (long ? BigInt.asUintN(64, v) : BigInt.asUintN(32, v)).toString(16);
    if (c === "u") return (long ? BigInt.asUintN(64, v) : BigInt.asUintN(32, v)).toString();
    return (long ? BigInt.asIntN(64, v) : BigInt.asIntN(32, v)).toString();
  });
}
