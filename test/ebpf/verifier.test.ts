// Load-time rejections: each names the program and says what is wrong.
import binaryen from "binaryen";
import { describe, expect, it } from "vitest";
import { BpfKernel } from "../../src/ebpf/kernel.js";
import { compileProgram } from "../../src/ebpf/compile.js";
import { CompileError, VerifierError } from "../../src/ebpf/errors.js";

const HDR = `import { __sk_buff, map_def, ringbuf_def, BPF_MAP_TYPE_HASH, BPF_MAP_TYPE_ARRAY, BPF_MAP_TYPE_LPM_TRIE, PIN_GLOBAL_NS, TC_ACT_OK } from "tcbox";\n`;
const OK_ENTRY = `export function cls_main(skb: __sk_buff): i32 { return TC_ACT_OK; }\n`;

async function rejection(source: string, kernel = new BpfKernel()): Promise<{ where: string; message: string }> {
  try {
    await kernel.load("programs/examples/inline.ts", { source, name: "bad.ts" });
  } catch (e) {
    if (e instanceof VerifierError || e instanceof CompileError) return { where: e.where, message: e.message };
    throw e;
  }
  throw new Error("loaded, expected a rejection");
}

describe("verifier", () => {
  it.each([
    { name: "an import that is not a helper (Math.random needs env.seed)", src: `${HDR}export function cls_main(skb: __sk_buff): i32 { return <i32>(Math.random() * 3); }`, msg: /import "env.seed" is not a tcbox helper/ },
    { name: "a made-up helper", src: `${HDR}@external("tcbox", "bpf_override_return") declare function o(x: i32): void;\nexport function cls_main(skb: __sk_buff): i32 { o(1); return 0; }`, msg: /import "tcbox.bpf_override_return" is not a tcbox helper/ },
    { name: "an entry point with the wrong signature", src: `${HDR}export function cls_main(a: i32, b: i32): i32 { return a + b; }`, msg: /exported function "cls_main" is not an entry point/ },
    { name: "no entry point", src: `${HDR}function unused(skb: __sk_buff): i32 { return 0; }`, msg: /no entry point/ },
    { name: "memory.grow", src: `${HDR}export function cls_main(skb: __sk_buff): i32 { return memory.grow(1); }`, msg: /grows memory/ },
    { name: "allocation at run time", src: `${HDR}export function cls_main(skb: __sk_buff): i32 { const a = new Array<u32>(skb.len); return a.length; }`, msg: /grows memory|not a tcbox helper/ },
    { name: "max_entries 0", src: `${HDR}const M = map_def<u32, u32>(BPF_MAP_TYPE_HASH, 0, "m0");\n${OK_ENTRY}`, msg: /map m0: max_entries must be/ },
    { name: "ring buffer size not a power of 2", src: `${HDR}const R = ringbuf_def(12288, "rb");\n${OK_ENTRY}`, msg: /map rb: ring buffer size 12288 must be a power of 2/ },
    { name: "LPM key without data", src: `${HDR}const M = map_def<u32, u32>(BPF_MAP_TYPE_LPM_TRIE, 8, "lpm");\n${OK_ENTRY}`, msg: /map lpm: LPM trie key must be/ },
    { name: "array with a u64 key", src: `${HDR}const M = map_def<u64, u32>(BPF_MAP_TYPE_ARRAY, 8, "arr");\n${OK_ENTRY}`, msg: /map arr: array maps need a 4-byte/ },
    { name: "a map declared twice", src: `${HDR}const A = map_def<u32, u32>(BPF_MAP_TYPE_HASH, 8, "dup");\nconst B = map_def<u32, u32>(BPF_MAP_TYPE_HASH, 8, "dup");\n${OK_ENTRY}`, msg: /map dup declared twice/ },
    { name: "a bad map name", src: `${HDR}const A = map_def<u32, u32>(BPF_MAP_TYPE_HASH, 8, "no/slash");\n${OK_ENTRY}`, msg: /^map "no\/slash": invalid name/ },
    // Quoted: a name is whatever bytes the program points at, a newline would cut the CLI's one-line error.
    { name: "a map name with a newline", src: `${HDR}const A = map_def<u32, u32>(BPF_MAP_TYPE_HASH, 8, "a\\nb");\n${OK_ENTRY}`, msg: /^map "a\\nb": invalid name \(letters/ },
  ])("rejects $name", async ({ src, msg }) => {
    const r = await rejection(src);
    expect(r.message).toMatch(msg);
    expect(r.where).toBe("program bad.ts");
  });

  it("a pinned map declared with other sizes than the pinned one is refused", async () => {
    const kernel = new BpfKernel();
    await kernel.load("programs/examples/inline.ts", { name: "a.ts", source: `${HDR}const M = map_def<u32, u32>(BPF_MAP_TYPE_HASH, 8, "shared", PIN_GLOBAL_NS);\n${OK_ENTRY}` });
    const r = await rejection(`${HDR}const M = map_def<u32, u64>(BPF_MAP_TYPE_HASH, 8, "shared", PIN_GLOBAL_NS);\n${OK_ENTRY}`, kernel);
    expect(r.message).toMatch(/map shared: pinned map differs/);
  });

  it("compile errors come as FILE:LINE:COL", async () => {
    const r = await rejection(`${HDR}\nexport function cls_main(skb: __sk_buff): i32 {\n  return undefined_thing;\n}\n`);
    expect(r.where).toBe("bad.ts:4:10");
    expect(r.message).toMatch(/undefined_thing/);
  });

  it("a prebuilt module whose static data overlaps a loaded one is refused with a rebuild hint", async () => {
    const built = await compileProgram("programs/drop.ts", { memoryBase: 0x200000 });
    const kernel = new BpfKernel();
    kernel.loadWasm(built.wasm, "drop-1.wasm");
    expect(() => kernel.loadWasm(built.wasm, "drop-2.wasm")).toThrow(/overlaps program drop-1.wasm: load the .ts source, or rebuild with tcbox build --memory-base/);
    // Loading the source compiles it into a free region instead.
    const again = await kernel.load("programs/drop.ts");
    expect(again.program().run(new Uint8Array(60)).retval).toBe(2);
  });

  it("a map whose BTF layout has the wrong size is refused before the map is created or pinned", async () => {
    // pass.ts pins nothing; lb4's maps are pinned (PIN_GLOBAL_NS): its backend value type made 4 bytes too long.
    const built = await compileProgram("programs/lb4.ts", { memoryBase: 0x200000 });
    const layouts = built.layouts.map((l) => (l.name === "lb4_backend" ? { ...l, size: l.size + 4 } : l));
    const kernel = new BpfKernel();
    expect(() => kernel.loadWasm(built.wasm, "lb4.wasm", layouts)).toThrow(/map cilium_lb4_backends_v3: value type lb4_backend is 16 bytes in the BTF, value_size is 12/);
    expect(kernel.maps().map((m) => m.name)).toEqual([]);
    // The same module with its own layouts loads, into the region the refused load gave back.
    expect(kernel.loadWasm(built.wasm, "lb4.wasm", built.layouts).map("cilium_lb4_backends_v3").spec.valueSize).toBe(12);
  });

  it("a program that touches no memory loads and runs: the compiler puts back the env.memory import asc drops", async () => {
    const kernel = new BpfKernel({ budget: 10_000 });
    const pass = await kernel.load("programs/examples/inline.ts", { source: `${HDR}export function cls_main(skb: __sk_buff): i32 { return TC_ACT_OK; }\n`, name: "nomem.ts" });
    expect(pass.program().run(new Uint8Array(60)).retval).toBe(0);
    const spin = (await kernel.load("programs/examples/inline.ts", { source: `${HDR}export function cls_main(skb: __sk_buff): i32 { while (true) {} return 0; }\n`, name: "spin.ts" })).program();
    const r = spin.run(new Uint8Array(60));
    expect(r.retval).toBe(2); // TC_ACT_SHOT: stopped by the budget
    expect(spin.stats.traps.budget).toBe(1);
  });

  it("a module built without the kernel's memory is refused with a reason", () => {
    const m = new binaryen.Module();
    m.addFunction("main", binaryen.createType([binaryen.i32]), binaryen.i32, [], m.i32.const(0));
    m.addFunctionExport("main", "cls_main");
    const bytes = m.emitBinary();
    m.dispose();
    expect(() => new BpfKernel().loadWasm(bytes, "nomem.wasm")).toThrow(/program imports no memory \(env\.memory\): tcbox runs every program on the kernel's memory/);
  });

  it("non-WebAssembly bytes", () => {
    expect(() => new BpfKernel().loadWasm(new Uint8Array([1, 2, 3, 4]), "junk.wasm")).toThrow(/not a valid WebAssembly module/);
  });
});
