// The "kernel" programs are loaded into: one shared memory, the maps (pinned ones by name, like bpffs), the
// loaded objects and their programs. Loading = compile (for .ts) -> verify -> instrument -> instantiate,
// during which the program's top-level map_def() calls create or find its maps. See runtime.ts for the design.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { basename, extname } from "node:path";
import { CB_BUDGET, CB_CPU, CB_HASHRND, CB_KTIME, CB_NR_CPUS, CB_PRANDOM, CB_TRAP_REASON, E2BIG, ENOENT, MAX_TAIL_CALL_CNT, SKB_TAIL_CALLS, TRAP_ABORT } from "./abi.js";
import { BTF_SECTION, decodeBtf, primitiveLayout, type StructLayout } from "./btf.js";
import { compileProgram } from "./compile.js";
import { BpfError, VerifierError } from "./errors.js";
import { DEFAULT_BUDGET, instrument, type Instrumented } from "./instrument.js";
import { BpfMap } from "./maps/map.js";
import { BPF_MAP_TYPE_PROG_ARRAY, M_ELEMS, M_ELEM_SIZE, M_MAX_ENTRIES, PIN_GLOBAL_NS } from "./maps/layout.js";
import { validateSpec, type MapSpec } from "./maps/spec.js";
import { SharedMemory } from "./memory.js";
import { AbortTrap, BpfProgram } from "./program.js";
import { verify } from "./verifier.js";
import { Wasm, type WasmGlobal, type WasmModule } from "./wasm-api.js";
import type { DataRange } from "./wasm.js";

export interface KernelOptions {
  /** Seed of map hash seeds, bpf_get_prandom_u32 and the flow hash: same seed, same run. */
  seed?: number;
  /** Budget units per packet (see instrument.ts); default 1,000,000. */
  budget?: number;
  /** Possible CPUs (per-CPU map slots). */
  nrCpus?: number;
}

export interface LoadOptions {
  /** Object name shown in errors and listings (default: the file's base name). */
  name?: string;
  /** Source text for a .ts program (instead of reading the file). */
  source?: string;
}

/** A loaded object file (libbpf's bpf_object): its programs, maps and struct layouts. */
export class BpfObject {
  readonly maps = new Map<string, BpfMap>();
  readonly programs = new Map<string, BpfProgram>();
  closed = false;
  constructor(
    readonly kernel: BpfKernel,
    readonly name: string,
    readonly layouts: StructLayout[],
    readonly region: DataRange | undefined,
  ) {}

  program(name?: string): BpfProgram {
    if (name === undefined) {
      const first = this.programs.values().next();
      if (first.done) throw new BpfError("no programs", `object ${this.name}`);
      return first.value;
    }
    const p = this.programs.get(name);
    if (!p) throw new BpfError(`no entry point "${name}" (has: ${[...this.programs.keys()].join(", ")})`, `object ${this.name}`);
    return p;
  }

  map(name: string): BpfMap {
    const m = this.maps.get(name);
    if (!m) throw new BpfError(`no map "${name}" (has: ${[...this.maps.keys()].join(", ") || "none"})`, `object ${this.name}`);
    return m;
  }

  layout(name: string): StructLayout | undefined {
    return this.layouts.find((l) => l.name === name) ?? primitiveLayout(name);
  }

  /** Unload: free the program region and the maps nobody else holds; pinned maps stay (bpffs). */
  close(): void {
    this.kernel.unload(this);
  }
}

/** Instrumented and compiled modules by the bytes they came from: instrumenting (binaryen passes) and compiling
 *  cost tens of milliseconds, and a cluster loads the same program into every node's kernel. A WebAssembly.Module
 *  holds no state (each kernel instantiates its own), so sharing it is safe. Bounded; oldest dropped first. */
const instrumentedCache = new Map<string, { inst: Instrumented; module: WasmModule }>();
const INSTRUMENTED_CACHE_MAX = 64;

function instrumentedModule(bytes: Uint8Array, entries: string[]): { inst: Instrumented; module: WasmModule } {
  const key = createHash("sha256").update(bytes).update(`\0${entries.join(",")}`).digest("hex");
  let hit = instrumentedCache.get(key);
  if (hit === undefined) {
    const inst = instrument(bytes, entries);
    hit = { inst, module: new Wasm.Module(inst.wasm) };
    if (instrumentedCache.size >= INSTRUMENTED_CACHE_MAX) instrumentedCache.delete(instrumentedCache.keys().next().value!);
    instrumentedCache.set(key, hit);
  }
  return hit;
}

export class BpfKernel {
  readonly mem = new SharedMemory();
  /** Pinned maps by name (/sys/fs/bpf/tc/globals/NAME). */
  readonly pinned = new Map<string, BpfMap>();
  readonly objects = new Set<BpfObject>();
  /** bpf_printk output (trace_pipe). */
  readonly trace: string[] = [];
  private readonly programsById = new Map<number, BpfProgram>();
  private nextProgId = 1;
  private nextMapId = 1;
  private rng: number;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(readonly opts: KernelOptions = {}) {
    this.rng = (opts.seed ?? 0x7cb0c5) >>> 0;
    const u32 = this.mem.u32;
    u32[CB_BUDGET >>> 2] = opts.budget ?? DEFAULT_BUDGET;
    u32[CB_CPU >>> 2] = 0;
    u32[CB_NR_CPUS >>> 2] = opts.nrCpus ?? 1;
    for (let i = 0; i < 4; i++) u32[(CB_PRANDOM >>> 2) + i] = this.random() || 1;
    u32[CB_HASHRND >>> 2] = this.random();
  }

  /** splitmix32: the host's deterministic randomness (map seeds, prandom state). */
  random(): number {
    let z = (this.rng = (this.rng + 0x9e3779b9) >>> 0);
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  }

  get budget(): number {
    return this.mem.u32[CB_BUDGET >>> 2]!;
  }
  set budget(v: number) {
    this.mem.u32[CB_BUDGET >>> 2] = v;
  }
  /** bpf_ktime_get_ns(): a virtual clock the host advances. */
  set ktimeNs(ns: bigint) {
    this.mem.dv.setBigUint64(CB_KTIME, ns, true);
  }
  get ktimeNs(): bigint {
    return this.mem.dv.getBigUint64(CB_KTIME, true);
  }

  programById(id: number): BpfProgram | undefined {
    return this.programsById.get(id);
  }

  /** Load a program file: .ts (compiled here into a free region) or .wasm (built by tcbox build). */
  load(file: string, opts: LoadOptions = {}): Promise<BpfObject> {
    const run = this.queue.then(() => this.loadNow(file, opts));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async loadNow(file: string, opts: LoadOptions): Promise<BpfObject> {
    const name = opts.name ?? basename(file);
    if (extname(file) === ".wasm") return this.loadWasm(readFileSync(file), name);
    // Compile at the lowest free address; if the result does not fit the hole there, compile again above.
    // 64 KiB is a guess at the size (most programs have far less static data), so small holes are skipped.
    let base = this.mem.findFree(65536, 16);
    for (let attempt = 0; attempt < 3; attempt++) {
      const built = await compileProgram(file, { memoryBase: base, displayName: name, source: opts.source });
      const facts = verify(built.wasm, `program ${name}`).region;
      if (!facts || !this.mem.isFree(facts.start, facts.end)) return this.loadWasm(built.wasm, name, built.layouts);
      base = this.mem.findFree(facts.end - base, 16);
    }
    throw new BpfError("no free memory region for the program", `program ${name}`);
  }

  /** Load a built module. Its static data region must be free (else: rebuild with another --memory-base, or load the .ts). */
  loadWasm(bytes: Uint8Array, name: string, layouts?: StructLayout[]): BpfObject {
    const where = `program ${name}`;
    const v = verify(bytes, where);
    const btf = layouts ?? decodeBtf(Wasm.Module.customSections(v.module, BTF_SECTION));
    if (v.region) {
      const clash = this.mem.isFree(v.region.start, v.region.end);
      if (clash) {
        throw new VerifierError(
          `static data [0x${v.region.start.toString(16)}, 0x${v.region.end.toString(16)}) overlaps ${clash.owner}: load the .ts source, or rebuild with tcbox build --memory-base`,
          where,
        );
      }
      this.mem.reserve(v.region.start, v.region.end, where);
    }
    const obj = new BpfObject(this, name, btf, v.region);
    try {
      const { inst, module } = instrumentedModule(bytes, v.entries);
      let abortMsg: string | undefined;
      const instance = new Wasm.Instance(module, {
        env: {
          memory: this.mem.memory,
          abort: (msg: number, file: number, line: number, col: number) => {
            this.mem.u32[CB_TRAP_REASON >>> 2] = TRAP_ABORT;
            abortMsg = `abort: ${this.readString(msg)} at ${this.readString(file)}:${line}:${col}`;
            throw new AbortTrap(abortMsg);
          },
        },
        tcbox: {
          map_create: (type: number, ks: number, vs: number, max: number, flags: number, namePtr: number, pinning: number, kt: number, vt: number) =>
            this.mapCreate(obj, { type, keySize: ks, valueSize: vs, maxEntries: max, flags, name: this.readString(namePtr), pinning, keyType: this.readString(kt), valueType: this.readString(vt) }),
          tail_call: (ctx: number, map: number, index: number) => this.tailCall(ctx, map, index),
          trace_printk: (fmt: number, a: bigint, b: bigint, c: bigint) => {
            this.trace.push(`${name}: ${formatPrintk(this.readString(fmt), [a, b, c])}`);
          },
        },
      });
      this.mem.refresh();
      const budget = instance.exports.__tcbox_budget as WasmGlobal;
      for (const e of inst.entries) {
        const id = this.nextProgId++;
        const prog = new BpfProgram(
          id,
          e.name,
          name,
          this.mem,
          instance.exports[e.batch] as (c: number, n: number) => void,
          instance.exports[e.name] as (c: number) => number,
          budget,
          () => abortMsg,
        );
        obj.programs.set(e.name, prog);
        this.programsById.set(id, prog);
      }
    } catch (e) {
      this.release(obj);
      if (e instanceof BpfError) throw e;
      throw new VerifierError(`load failed: ${(e as Error).message}`, where);
    }
    this.objects.add(obj);
    return obj;
  }

  /** map_create import: validate, then create the map or find the pinned one (iproute2/libbpf pinning). */
  private mapCreate(obj: BpfObject, spec: MapSpec): number {
    const where = `program ${obj.name}`;
    validateSpec(spec, where);
    if (obj.maps.has(spec.name)) throw new VerifierError(`map ${spec.name} declared twice`, where);
    let map: BpfMap | undefined;
    if (spec.pinning === PIN_GLOBAL_NS) {
      map = this.pinned.get(spec.name);
      if (map) {
        const p = map.spec;
        if (p.type !== spec.type || p.keySize !== spec.keySize || p.valueSize !== spec.valueSize || p.maxEntries !== spec.maxEntries || p.flags !== spec.flags) {
          throw new VerifierError(
            `map ${spec.name}: pinned map differs (type ${p.type}/${spec.type}, key ${p.keySize}/${spec.keySize}, value ${p.valueSize}/${spec.valueSize}, max_entries ${p.maxEntries}/${spec.maxEntries})`,
            where,
          );
        }
      }
    }
    if (!map) {
      map = BpfMap.create(this.mem, spec, this.random(), this.opts.nrCpus ?? 1, this.nextMapId++);
      if (spec.pinning === PIN_GLOBAL_NS) this.pinned.set(spec.name, map);
    }
    map.keyLayout ??= obj.layout(spec.keyType);
    map.valueLayout ??= obj.layout(spec.valueType);
    map.users.add(obj.name);
    obj.maps.set(spec.name, map);
    return map.base;
  }

  /** bpf_tail_call: run the program in slot `index` of the program array on the same context. */
  private tailCall(ctx: number, map: number, index: number): number {
    const u32 = this.mem.u32;
    if (u32[map >>> 2] !== BPF_MAP_TYPE_PROG_ARRAY || index >>> 0 >= u32[(map + M_MAX_ENTRIES) >>> 2]!) return -ENOENT;
    const id = u32[(u32[(map + M_ELEMS) >>> 2]! + index * u32[(map + M_ELEM_SIZE) >>> 2]!) >>> 2]!;
    const prog = id === 0 ? undefined : this.programsById.get(id);
    if (!prog || prog.closed) return -ENOENT;
    const n = u32[(ctx + SKB_TAIL_CALLS) >>> 2]!;
    if (n >= MAX_TAIL_CALL_CNT) return -E2BIG;
    u32[(ctx + SKB_TAIL_CALLS) >>> 2] = n + 1;
    prog.resetBudget();
    return prog.entryFn(ctx);
  }

  /** Put a program into a program array slot (what a loader does with bpf_map_update_elem on a PROG_ARRAY). */
  setTailCall(map: BpfMap, index: number, prog: BpfProgram | undefined): void {
    const k = new Uint8Array(4);
    new DataView(k.buffer).setUint32(0, index, true);
    const v = new Uint8Array(4);
    new DataView(v.buffer).setUint32(0, prog?.id ?? 0, true);
    map.update(k, v);
  }

  unload(obj: BpfObject): void {
    if (obj.closed) return;
    obj.closed = true;
    this.objects.delete(obj);
    this.release(obj);
  }

  private release(obj: BpfObject): void {
    for (const p of obj.programs.values()) {
      p.closed = true;
      this.programsById.delete(p.id);
    }
    if (obj.region) this.mem.free(obj.region.start);
    for (const m of obj.maps.values()) {
      m.users.delete(obj.name);
      const pinned = this.pinned.get(m.name) === m;
      if (!pinned && m.users.size === 0) this.mem.free(m.base);
    }
  }

  /** Every map alive: pinned ones and those of loaded objects. */
  maps(): BpfMap[] {
    const out = new Set<BpfMap>(this.pinned.values());
    for (const o of this.objects) for (const m of o.maps.values()) out.add(m);
    return [...out].sort((a, b) => a.id - b.id);
  }

  /** Remove a pin; the map is freed when no loaded object uses it. */
  unpin(name: string): void {
    const m = this.pinned.get(name);
    if (!m) throw new BpfError("not pinned", `map ${name}`);
    this.pinned.delete(name);
    if (m.users.size === 0) this.mem.free(m.base);
  }

  /** An AssemblyScript string (UTF-16, byte length at ptr - 4) from memory. */
  readString(ptr: number): string {
    if (ptr === 0) return "";
    this.mem.refresh();
    const len = this.mem.u32[(ptr - 4) >>> 2]!;
    let s = "";
    for (let i = 0; i < len; i += 2) s += String.fromCharCode(this.mem.u8[ptr + i]! | (this.mem.u8[ptr + i + 1]! << 8));
    return s;
  }
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
