// The "kernel" programs are loaded into: one shared memory, the maps (pinned ones by name, like bpffs), the
// loaded objects and their programs. Loading = compile (for .ts) -> verify -> instrument -> instantiate,
// during which the program's top-level map_def() calls create or find its maps. See runtime.ts for the design.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { basename, extname } from "node:path";
import { CB_BUDGET, CB_CPU, CB_HASHRND, CB_KTIME, CB_NR_CPUS, CB_PRANDOM, CB_TRAP_REASON, LANE_SIZE, TRAP_BUDGET, TRAP_NONE } from "./abi.js";
import { BTF_SECTION, decodeBtf, primitiveLayout, type StructLayout } from "./btf.js";
import { compileProgram, type CompileOptions, type CompileResult } from "./compile.js";
import { BpfError, VerifierError } from "./errors.js";
import { DEFAULT_BUDGET, MAX_BUDGET, instrument, type EntryPoint, type Instrumented } from "./instrument.js";
import { instantiate, readString } from "./instance.js";
import { BpfMap } from "./maps/map.js";
import { PIN_GLOBAL_NS } from "./maps/layout.js";
import { validateSpec, type MapSpec } from "./maps/spec.js";
import { SharedMemory } from "./memory.js";
import type { BpfProgram } from "./program.js";
import { verify } from "./verifier.js";
import { Wasm, type WasmMemory, type WasmModule } from "./wasm-api.js";
import type { DataRange } from "./wasm.js";

export interface KernelOptions {
  /** Seed of map hash seeds, bpf_get_prandom_u32 and the flow hash: same seed, same run. */
  seed?: number;
  /** Budget units per packet (see instrument.ts); default 1,000,000, at most MAX_BUDGET (2^24). */
  budget?: number;
  /** Possible CPUs (per-CPU map slots; with worker threads, one per worker: lanes.ts). */
  nrCpus?: number;
  /**
   * A shared WebAssembly.Memory, so worker threads can run programs against the same maps (lanes.ts). Programs
   * are then built for a shared memory and their map updates take map locks; off by default (one thread).
   */
  shared?: boolean;
}

/**
 * One entry point's build for a lane (a worker thread's "CPU"): everything a worker needs to instantiate it on
 * the kernel's shared memory (lanes.ts). Structured-cloneable: postMessage it to the worker.
 */
export interface LaneProgram {
  memory: WasmMemory;
  /** Instrumented, built at its own memoryBase (its statics) for this lane's control block. */
  module: WasmModule;
  entries: EntryPoint[];
  objectName: string;
  /** Program ids of the entries (the ids the kernel gave them): tail calls within the object resolve in the lane. */
  ids: Record<string, number>;
  /** The object's maps: name -> address (what map_create returns in the worker). */
  maps: Record<string, number>;
  cpu: number;
  /** Base address of the lane. */
  lane: number;
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
  /** The .ts it was compiled from (and its load options), for builds of it on other lanes (laneProgram). */
  source?: { file: string; opts: LoadOptions };
  /** Static data regions of its lane builds (freed with the object). */
  readonly laneRegions: number[] = [];
  /** Maps its load created and pinned: unpinned again if the load fails (libbpf's bpf_object__load does too). */
  readonly pinnedByLoad: BpfMap[] = [];
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

function instrumentedModule(bytes: Uint8Array, entries: string[], lane = 0): { inst: Instrumented; module: WasmModule } {
  const key = createHash("sha256").update(bytes).update(`\0${entries.join(",")}\0${lane}`).digest("hex");
  let hit = instrumentedCache.get(key);
  if (hit === undefined) {
    const inst = instrument(bytes, entries, lane);
    hit = { inst, module: new Wasm.Module(inst.wasm) };
    if (instrumentedCache.size >= INSTRUMENTED_CACHE_MAX) instrumentedCache.delete(instrumentedCache.keys().next().value!);
    instrumentedCache.set(key, hit);
  }
  return hit;
}

export class BpfKernel {
  readonly mem: SharedMemory;
  /** Lane base addresses by CPU (lane 0: base 0, the kernel's own control block, contexts and arena). */
  private readonly lanes = new Map<number, number>([[0, 0]]);
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
    this.mem = new SharedMemory(undefined, { shared: opts.shared === true });
    this.rng = (opts.seed ?? 0x7cb0c5) >>> 0;
    const u32 = this.mem.u32;
    this.budget = opts.budget ?? DEFAULT_BUDGET;
    u32[CB_CPU >>> 2] = 0;
    u32[CB_NR_CPUS >>> 2] = opts.nrCpus ?? 1;
    for (let i = 0; i < 4; i++) u32[(CB_PRANDOM >>> 2) + i] = this.random() || 1;
    u32[CB_HASHRND >>> 2] = this.random();
  }

  /** Possible CPUs: per-CPU map slots, and the lanes there can be. */
  get nrCpus(): number {
    return this.opts.nrCpus ?? 1;
  }

  /**
   * The base address of CPU `cpu`'s lane: its control block (bpf_get_smp_processor_id() = cpu, its own prandom
   * state; the budget, clock and flow-hash seed of lane 0), contexts and packet arena. Allocated on first use.
   */
  lane(cpu: number): number {
    if (!Number.isInteger(cpu) || cpu < 0 || cpu >= this.nrCpus) throw new BpfError(`no CPU ${cpu} (nrCpus ${this.nrCpus})`, "kernel");
    let base = this.lanes.get(cpu);
    if (base === undefined) {
      base = this.mem.alloc(LANE_SIZE, `lane ${cpu}`, 65536);
      const u32 = this.mem.u32;
      u32[(base + CB_BUDGET) >>> 2] = this.budget;
      u32[(base + CB_CPU) >>> 2] = cpu;
      u32[(base + CB_NR_CPUS) >>> 2] = this.nrCpus;
      for (let i = 0; i < 4; i++) u32[((base + CB_PRANDOM) >>> 2) + i] = this.random() || 1;
      u32[(base + CB_HASHRND) >>> 2] = u32[CB_HASHRND >>> 2]!;
      this.mem.dv.setBigUint64(base + CB_KTIME, this.ktimeNs, true);
      this.lanes.set(cpu, base);
    }
    return base;
  }

  /**
   * Build a loaded object's program for CPU `cpu`'s lane, to run on a worker thread (lanes.ts): compiled again
   * from its source at a free memoryBase (its own statics) for the lane's control block, verified, instrumented.
   * The maps are the object's: the worker's instance finds them by name. Lane 0 is the kernel's own programs'.
   */
  async laneProgram(obj: BpfObject, cpu: number): Promise<LaneProgram> {
    const where = `program ${obj.name} (CPU ${cpu})`;
    if (!obj.source) throw new BpfError("built only for lane 0 (loaded from a .wasm): load its .ts source", where);
    const lane = this.lane(cpu);
    const src = obj.source;
    const built = await this.compileFree(src.file, { displayName: obj.name, source: src.opts.source, shared: this.mem.shared, lane }, where);
    const v = verify(built.wasm, where);
    if (v.region) {
      this.mem.reserve(v.region.start, v.region.end, where);
      obj.laneRegions.push(v.region.start);
    }
    const { inst, module } = instrumentedModule(built.wasm, v.entries, lane);
    const ids: Record<string, number> = {};
    for (const [n, p] of obj.programs) ids[n] = p.id;
    const maps: Record<string, number> = {};
    for (const [n, m] of obj.maps) maps[n] = m.base;
    return { memory: this.mem.memory, module, entries: inst.entries, objectName: obj.name, ids, maps, cpu, lane };
  }

  /** splitmix32: the host's deterministic randomness (map seeds, prandom state). */
  random(): number {
    let z = (this.rng = (this.rng + 0x9e3779b9) >>> 0);
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  }

  /** The host's copy (CB_BUDGET is in the programs' memory, where a raw store can change it). */
  private budgetUnits = DEFAULT_BUDGET;
  get budget(): number {
    return this.budgetUnits;
  }
  set budget(v: number) {
    if (!Number.isInteger(v) || v <= 0 || v > MAX_BUDGET) throw new BpfError(`budget ${v} is not an integer 1..${MAX_BUDGET}`, "kernel");
    this.budgetUnits = v;
    for (const l of this.lanes.values()) this.mem.u32[(l + CB_BUDGET) >>> 2] = v;
  }
  /** bpf_ktime_get_ns(): a virtual clock the host advances (on every lane). */
  set ktimeNs(ns: bigint) {
    for (const l of this.lanes.values()) this.mem.dv.setBigUint64(l + CB_KTIME, ns, true);
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
    const built = await this.compileFree(file, { displayName: name, source: opts.source, shared: this.mem.shared }, `program ${name}`);
    const obj = this.loadWasm(built.wasm, name, built.layouts);
    obj.source = { file, opts };
    return obj;
  }

  /** Compile where the static data fits: at the lowest free address, or again above if it does not fit the hole. */
  private async compileFree(file: string, opts: Omit<CompileOptions, "memoryBase">, where: string): Promise<CompileResult> {
    // 64 KiB is a guess at the size (most programs have far less static data), so small holes are skipped.
    let base = this.mem.findFree(65536, 16);
    for (let attempt = 0; attempt < 3; attempt++) {
      const built = await compileProgram(file, { ...opts, memoryBase: base });
      const facts = verify(built.wasm, where).region;
      if (!facts || !this.mem.isFree(facts.start, facts.end)) return built;
      base = this.mem.findFree(facts.end - base, 16);
    }
    throw new BpfError("no free memory region for the program", where);
  }

  /** Load a built module. Its static data region must be free (else: rebuild with another --memory-base, or load the .ts). */
  loadWasm(bytes: Uint8Array, name: string, layouts?: StructLayout[]): BpfObject {
    const where = `program ${name}`;
    const v = verify(bytes, where);
    const btf = layouts ?? decodeBtf(Wasm.Module.customSections(v.module, BTF_SECTION), where);
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
      const hooks = {
        mapCreate: (spec: MapSpec) => this.mapCreate(obj, spec),
        programById: (id: number) => this.programsById.get(id),
        trace: (line: string) => this.trace.push(`${name}: ${line}`),
      };
      for (const prog of instantiate(this.mem, module, inst.entries, name, 0, hooks, () => this.nextProgId++)) {
        obj.programs.set(prog.name, prog);
        this.programsById.set(prog.id, prog);
      }
    } catch (e) {
      this.release(obj);
      for (const m of obj.pinnedByLoad) if (this.pinned.get(m.name) === m) this.unpin(m.name);
      if (e instanceof BpfError) throw e;
      if (this.mem.shared && e instanceof Wasm.LinkError) {
        throw new VerifierError(`load failed: the kernel's memory is shared (worker threads) and the module was built for an unshared one: load the .ts source (${(e as Error).message})`, where);
      }
      // The start function (top-level code) ran out of its budget: the budget tick left its reason.
      const budget = e instanceof Wasm.RuntimeError && this.mem.u32[CB_TRAP_REASON >>> 2] === TRAP_BUDGET;
      this.mem.u32[CB_TRAP_REASON >>> 2] = TRAP_NONE;
      if (budget) throw new VerifierError(`load failed: its top-level code ran past the budget (${MAX_BUDGET} units)`, where);
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
    // Checked before a map is created or pinned: a refused load leaves no map behind.
    const keyLayout = this.sizedLayout(obj, spec, "key", spec.keyType, spec.keySize);
    const valueLayout = this.sizedLayout(obj, spec, "value", spec.valueType, spec.valueSize);
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
        // A program using it before may have stored over its header: the new one starts from the real geometry.
        map.restoreHeader();
      }
    }
    if (!map) {
      map = BpfMap.create(this.mem, spec, this.random(), this.opts.nrCpus ?? 1, this.nextMapId++);
      if (spec.pinning === PIN_GLOBAL_NS) {
        this.pinned.set(spec.name, map);
        obj.pinnedByLoad.push(map);
      }
    }
    map.keyLayout ??= keyLayout;
    map.valueLayout ??= valueLayout;
    map.users.add(obj.name);
    obj.maps.set(spec.name, map);
    return map.base;
  }

  /** The layout of a map's key or value type; its size must be the map's (the kernel's map_check_btf: -EINVAL). */
  private sizedLayout(obj: BpfObject, spec: MapSpec, what: "key" | "value", type: string, size: number): StructLayout | undefined {
    const l = obj.layout(type);
    if (l && l.size !== size) {
      throw new VerifierError(`map ${spec.name}: ${what} type ${l.name} is ${l.size} bytes in the BTF, ${what}_size is ${size}`, `program ${obj.name}`);
    }
    return l;
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
    for (const r of obj.laneRegions) this.mem.free(r);
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
    return readString(this.mem, ptr);
  }
}

export { formatPrintk } from "./instance.js";
