// Several CPUs: worker threads running programs against the same maps, as the kernel runs one program on every
// CPU. The kernel's memory is then a shared WebAssembly.Memory (BpfKernel({ shared: true, nrCpus })). Each CPU
// has a lane: its own control block (bpf_get_smp_processor_id(), prandom state, budget, trap reason, batch
// index, scratch), sk_buff contexts and packet arena, at the lane's base address (kernel.lane(cpu); CPU 0's is
// the kernel's own, at 0). A program runs on a lane through a build of it for that lane (kernel.laneProgram):
// compiled again at its own memoryBase, so its statics (memory.data buffers, e.g. lb4's CT tuple) are its own
// and instantiating it (which writes its data segments) touches nothing else, with the lane's control block
// addresses as constants (asc --use TCBOX_LANE) and the map helpers taking map locks (TCBOX_SHARED). The
// maps are the loaded object's: a lane's instance gets their addresses by name instead of creating them.
// Per-CPU maps have one slot per CPU (nrCpus); each lane reads and writes its own.
import { createRequire } from "node:module";
import { Worker } from "node:worker_threads";
import { extname } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { PacketBatch } from "./batch.js";
import { VerifierError } from "./errors.js";
import { instantiate } from "./instance.js";
import type { LaneProgram } from "./kernel.js";
import { SharedMemory } from "./memory.js";
import type { BpfProgram, TrapReason } from "./program.js";

export interface Lane {
  mem: SharedMemory;
  cpu: number;
  programs: Map<string, BpfProgram>;
  /** bpf_printk lines of this lane's programs. */
  trace: string[];
  /** A batch on this lane's contexts and arena. */
  batch(): PacketBatch;
  program(name?: string): BpfProgram;
}

/**
 * Instantiate a lane build in this thread: on `mem` (the kernel's SharedMemory in the kernel's thread), or on a
 * new view of the program's shared memory (a worker). Its data segments land in its own region (reserved by the
 * kernel when it built it); its map declarations resolve to the object's maps by name.
 */
export function openLane(p: LaneProgram, mem = new SharedMemory(undefined, { memory: p.memory })): Lane {
  const where = `program ${p.objectName} (CPU ${p.cpu})`;
  const trace: string[] = [];
  const programs = new Map<string, BpfProgram>();
  const byId = new Map<number, BpfProgram>();
  const hooks = {
    mapCreate: (spec: { name: string }) => {
      const at = p.maps[spec.name];
      if (at === undefined) throw new VerifierError(`map ${spec.name} is not one of the object's maps`, where);
      return at;
    },
    programById: (id: number) => byId.get(id),
    trace: (line: string) => trace.push(`${p.objectName}: ${line}`),
  };
  for (const prog of instantiate(mem, p.module, p.entries, p.objectName, p.lane, hooks, (e) => p.ids[e] ?? 0)) {
    programs.set(prog.name, prog);
    byId.set(prog.id, prog);
  }
  return {
    mem,
    cpu: p.cpu,
    programs,
    trace,
    batch: () => new PacketBatch(mem, p.lane),
    program: (name) => {
      const prog = name === undefined ? programs.values().next().value : programs.get(name);
      if (!prog) throw new VerifierError(`no entry point "${name}"`, where);
      return prog;
    },
  };
}

/**
 * Start a worker thread on module `file` next to `base` (an import.meta.url): the .js when running the build,
 * the .ts through tsx when running from source (tests, npm run bench).
 */
export function startWorker(base: string, file: string, workerData: unknown): Worker {
  const ts = extname(fileURLToPath(base)) === ".ts";
  const url = new URL(`${file}${ts ? ".ts" : ".js"}`, base);
  if (!ts) return new Worker(url, { workerData });
  // From source: register tsx's loader in the worker, then import the module (a loader given by --import in
  // execArgv does not reach workers started from under vitest).
  const api = pathToFileURL(createRequire(base).resolve("tsx/esm/api").replace(/\.cjs$/, ".mjs")).href;
  const boot = `import(${JSON.stringify(api)}).then((m) => { m.register(); return import(${JSON.stringify(url.href)}); });`;
  return new Worker(boot, { eval: true, workerData });
}

/** The first message a worker posts (or its error / non-zero exit). */
export function nextMessage<T>(w: Worker): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onMsg = (m: T) => {
      off();
      resolve(m);
    };
    const onErr = (e: Error) => {
      off();
      reject(e);
    };
    const onExit = (code: number) => {
      off();
      reject(new Error(`worker exited with code ${code}`));
    };
    const off = () => {
      w.off("message", onMsg);
      w.off("error", onErr);
      w.off("exit", onExit);
    };
    w.on("message", onMsg);
    w.on("error", onErr);
    w.on("exit", onExit);
  });
}

export interface LaneRunRequest {
  program: LaneProgram;
  entry?: string;
  packets: Uint8Array[];
  rounds: number;
  /** Int32Array over a SharedArrayBuffer: the worker stores 1 when it starts running, 2 when done. */
  status?: Int32Array;
  /** Start together: each worker counts itself in at barrier[0] and waits until `parties` have (Atomics). */
  barrier?: { cell: Int32Array; parties: number };
}

export interface LaneRunResult {
  runs: number;
  retvals: [number, number][];
  traps: Record<TrapReason, number>;
  lastTrap?: string;
  trace: string[];
}

/** Run a lane build on `packets` in a worker thread (lane-worker.ts); resolves with its statistics. */
export async function runOnWorker(req: LaneRunRequest): Promise<LaneRunResult> {
  const w = startWorker(import.meta.url, "./lane-worker", req);
  try {
    return await nextMessage<LaneRunResult>(w);
  } finally {
    await w.terminate();
  }
}

/** Count in at a barrier and wait (in a worker) until `parties` have. */
export function awaitBarrier(cell: Int32Array, parties: number): void {
  Atomics.add(cell, 0, 1);
  Atomics.notify(cell, 0);
  for (let v = Atomics.load(cell, 0); v < parties; v = Atomics.load(cell, 0)) Atomics.wait(cell, 0, v, 100);
}
