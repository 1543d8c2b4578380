// Load-time checks, in the spirit of the kernel's verifier (kernel/bpf/verifier.c): a program may only call
// the SDK's helpers, must export entry points with the context signature, must run on the kernel's shared
// memory without growing it, and must keep its static data in its own region. Rejections name the program
// and say what is wrong. (Map declarations are checked when the program declares them: maps/spec.ts.)
import binaryen from "binaryen";
import { PKT_BASE, PKT_ARENA } from "./abi.js";
import { VerifierError } from "./errors.js";
import { BATCH_PREFIX, BUDGET_GLOBAL, INDEX_GLOBAL } from "./instrument.js";
import { Wasm, type WasmModule } from "./wasm-api.js";
import { dataRegion, moduleFacts, type DataRange } from "./wasm.js";

/** Helpers a program may import, by "module.name" (the SDK's @external declarations). */
export const ALLOWED_IMPORTS: Record<string, "function" | "memory"> = {
  "env.memory": "memory",
  "env.abort": "function",
  "tcbox.map_create": "function",
  "tcbox.tail_call": "function",
  "tcbox.trace_printk": "function",
  "tcbox.lock_wait": "function", // shared memory builds: a map lock taken by another thread (assembly/maps.ts)
};

/** Static data a program may have (its region): 16 MiB. */
export const MAX_PROGRAM_DATA = 16 << 20;

export interface Verified {
  module: WasmModule;
  entries: string[];
  region?: DataRange;
}

export function verify(bytes: Uint8Array, where: string): Verified {
  const fail = (msg: string): never => {
    throw new VerifierError(msg, where);
  };
  let module: WasmModule;
  try {
    module = new Wasm.Module(bytes);
  } catch (e) {
    return fail(`not a valid WebAssembly module: ${(e as Error).message}`);
  }
  let hasMemory = false;
  for (const imp of Wasm.Module.imports(module)) {
    const id = `${imp.module}.${imp.name}`;
    const kind = ALLOWED_IMPORTS[id];
    if (kind === undefined) fail(`import "${id}" is not a tcbox helper (allowed: ${Object.keys(ALLOWED_IMPORTS).join(", ")})`);
    if (kind !== imp.kind) fail(`import "${id}" must be a ${kind}, not a ${imp.kind}`);
    if (kind === "memory") hasMemory = true;
  }
  const facts = moduleFacts(bytes);
  // One that defines its own memory cannot share the kernel's.
  if (facts.definesMemory || (!hasMemory && facts.data.length > 0)) fail("program must import the kernel's shared memory as env.memory (build with tcbox build, or asc --importMemory)");
  if (facts.dynamicData > 0) fail("data segments with non-constant offsets are not supported");
  const region = dataRegion(facts);
  if (region) {
    if (region.end - region.start > MAX_PROGRAM_DATA) fail(`static data of ${region.end - region.start} bytes exceeds the limit of ${MAX_PROGRAM_DATA}`);
    const low = PKT_BASE + PKT_ARENA;
    if (region.start < low) fail(`static data at 0x${region.start.toString(16)} overlaps the kernel's contexts and packets (below 0x${low.toString(16)}): build with tcbox build`);
  }

  const m = binaryen.readBinary(bytes);
  try {
    m.setFeatures(binaryen.Features.All);
    const entries: string[] = [];
    for (let i = 0; i < m.getNumExports(); i++) {
      const e = binaryen.getExportInfo(m.getExportByIndex(i));
      if (e.name.startsWith(BATCH_PREFIX) || e.name === BUDGET_GLOBAL || e.name === INDEX_GLOBAL) fail(`export "${e.name}" uses a name reserved for tcbox`);
      if (e.kind !== binaryen.ExternalFunction) continue;
      const f = binaryen.getFunctionInfo(m.getFunction(e.value));
      const params = binaryen.expandType(f.params);
      const results = binaryen.expandType(f.results);
      if (params.length !== 1 || params[0] !== binaryen.i32 || results.length !== 1 || results[0] !== binaryen.i32) {
        fail(`exported function "${e.name}" is not an entry point: entry points take (skb: __sk_buff) and return i32`);
      }
      entries.push(e.name);
    }
    if (entries.length === 0) fail("no entry point: export a function (skb: __sk_buff): i32, e.g. `export function cls_main(skb: __sk_buff): i32`");
    // memory.grow would move the kernel's memory under the host's feet; programs allocate nothing at run time.
    if (/\bmemory\.grow\b/.test(m.emitText())) fail("program grows memory (allocates at run time): use static buffers (memory.data) instead");
    // The instrumentation (instrument.ts) keeps the budget's trap reason and the verdict counters in the kernel's
    // control block, so every program needs the memory. asc drops the import from one that never reads its
    // context (skb), a map or static data; tcbox's compiler puts it back (compile.ts withMemoryImport), so only a
    // module built some other way gets here.
    if (!hasMemory) fail("program imports no memory (env.memory): tcbox runs every program on the kernel's memory; build it with tcbox build, or import env.memory");
    return { module, entries, region };
  } finally {
    m.dispose();
  }
}
