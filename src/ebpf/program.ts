// A loaded entry point (cilium/ebpf's *ebpf.Program): runs on a batch of packets in one call, or on one packet
// like BPF_PROG_TEST_RUN. A program that traps (budget exhausted, out-of-bounds packet access, abort, any
// WebAssembly trap) has its packet dropped with TC_ACT_SHOT and counted by reason; the batch goes on with the
// next packet and the instance keeps working (maps live in memory the host owns).
import { CB_BUDGET, CB_LOCK_HELD, CB_TRAP_REASON, CB_VERDICTS, CTX_BASE, CTX_SIZE, SKB_RETVAL, TC_ACT_SHOT, TRAP_ABORT, TRAP_BUDGET, TRAP_NONE, TRAP_OOB, VERDICT_SLOTS } from "./abi.js";
import { PacketBatch, type PacketMeta } from "./batch.js";
import type { SharedMemory } from "./memory.js";
import { Wasm } from "./wasm-api.js";
import { MAX_BUDGET } from "./instrument.js";

/** Why a program was stopped. "trap" = any other WebAssembly trap (division by zero, unreachable, stack). */
export type TrapReason = "oob" | "budget" | "abort" | "trap";
export const TRAP_NAMES: Record<number, TrapReason> = { [TRAP_OOB]: "oob", [TRAP_BUDGET]: "budget", [TRAP_ABORT]: "abort" };
const TRAP_OTHER = 9;

export interface ProgramStats {
  runs: number;
  /** Packets per verdict returned (TC_ACT_* value -> count), traps excluded. */
  readonly retvals: Map<number, number>;
  /** Packets stopped, per reason. */
  traps: Record<TrapReason, number>;
  /** TC_ACT_SHOT verdicts per drop reason the program gave (set_drop_reason; 0 = none given). */
  dropReasons: Map<number, number>;
  /** Last trap message (e.g. the abort() message), for diagnostics. */
  lastTrap?: string;
}

export interface RunResult {
  retval: number;
  /** The packet as the program left it (a copy). */
  packet: Uint8Array;
  redirect?: { ifindex: number; flags: number };
  trap?: TrapReason;
  dropReason: number;
  mark: number;
}

type BatchFn = (ctx: number, n: number) => void;
type EntryFn = (ctx: number) => number;

export class BpfProgram {
  private readonly counts = new Float64Array(VERDICT_SLOTS - 1);
  private readonly otherRetvals = new Map<number, number>();
  readonly stats: ProgramStats = newStats(() => {
    const m = new Map<number, number>();
    this.counts.forEach((n, i) => {
      if (n > 0) m.set(i - 1, n);
    });
    for (const [r, n] of this.otherRetvals) m.set(r, n);
    return m;
  });
  /** Set by the kernel when the object is closed: running it is an error. */
  closed = false;

  constructor(
    readonly id: number,
    readonly name: string,
    /** The object (file) it came from, e.g. "lb4.ts". */
    readonly objectName: string,
    readonly mem: SharedMemory,
    private readonly batchFn: BatchFn,
    readonly entryFn: EntryFn,
    /** The instance's budget global and the batch runner's packet index (instrument.ts). */
    private readonly budget: { value: number },
    private readonly index: { value: number },
    private readonly lastAbort: () => string | undefined,
    /** Base address of the lane (control block, contexts, packets) it was built for: 0, or a worker's (lanes.ts). */
    readonly lane = 0,
  ) {}

  get fullName(): string {
    return `${this.objectName}:${this.name}`;
  }

  /** Set the budget before a direct entry call (tail calls). */
  resetBudget(): void {
    this.budget.value = Math.min(this.mem.u32[(this.lane + CB_BUDGET) >>> 2]!, MAX_BUDGET);
  }

  /**
   * Run on packets [start, start + count) of `batch`; afterwards each context holds its verdict and trapped
   * packets are TC_ACT_SHOT with batch.traps[i] set. Returns the number of traps.
   */
  runBatch(batch: PacketBatch, start = 0, count = batch.length - start): number {
    if (batch.lane !== this.lane) throw new Error(`${this.fullName}: a batch of lane 0x${batch.lane.toString(16)} given to a program built for lane 0x${this.lane.toString(16)}`);
    const u32 = this.mem.u32;
    const lane = this.lane;
    let i = start;
    const end = start + count;
    let traps = 0;
    u32.fill(0, (lane + CB_VERDICTS) >>> 2, ((lane + CB_VERDICTS) >>> 2) + VERDICT_SLOTS);
    while (i < end) {
      u32[(lane + CB_TRAP_REASON) >>> 2] = TRAP_NONE;
      try {
        this.batchFn(lane + CTX_BASE + i * CTX_SIZE, end - i);
        break;
      } catch (e) {
        // The batch runner records which packet it was on (relative to the call's first context), in a global a
        // program cannot store to.
        const at = i + this.index.value;
        const code = this.classify(e);
        batch.setRetval(at, TC_ACT_SHOT);
        batch.traps[at] = code;
        traps++;
        i = at + 1;
      }
    }
    this.count(batch, start, end);
    return traps;
  }

  private classify(e: unknown): number {
    if (!(e instanceof Wasm.RuntimeError) && !(e instanceof RangeError) && !(e instanceof AbortTrap)) throw e;
    const u32 = this.mem.u32;
    // Stopped inside a map update on a shared memory: release the map's lock (its searching is done under the
    // lock, its writes are loop-free, so the map is whole; see assembly/maps.ts).
    const held = u32[(this.lane + CB_LOCK_HELD) >>> 2]!;
    if (held !== 0) {
      u32[(this.lane + CB_LOCK_HELD) >>> 2] = 0;
      Atomics.store(this.mem.i32, held >>> 2, 0);
    }
    const code = u32[(this.lane + CB_TRAP_REASON) >>> 2]!;
    const reason = TRAP_NAMES[code] ?? "trap";
    this.stats.traps[reason]++;
    this.stats.lastTrap = e instanceof AbortTrap ? e.message : `${reason}: ${(e as Error).message}`;
    return code === TRAP_NONE ? TRAP_OTHER : code;
  }

  private count(batch: PacketBatch, start: number, end: number): void {
    const s = this.stats;
    s.runs += end - start;
    // The batch runner counted the verdicts of the packets that completed (CB_VERDICTS: -1..8, then "other");
    // packets are visited only when some were TC_ACT_SHOT (drop reasons) or had another value.
    const counts = this.counts;
    const u32 = this.mem.u32;
    const v = (this.lane + CB_VERDICTS) >>> 2;
    for (let k = 0; k < counts.length; k++) counts[k]! += u32[v + k]!;
    if (u32[v + TC_ACT_SHOT + 1] === 0 && u32[v + VERDICT_SLOTS - 1] === 0) return;
    const i32 = this.mem.i32;
    const traps = batch.traps;
    for (let i = start; i < end; i++) {
      if (traps[i] !== TRAP_NONE) continue;
      const r = i32[(this.lane + CTX_BASE + i * CTX_SIZE + SKB_RETVAL) >>> 2]!;
      if (r < -1 || r > 8) this.otherRetvals.set(r, (this.otherRetvals.get(r) ?? 0) + 1);
      if (r === TC_ACT_SHOT) {
        const why = batch.dropReason(i);
        s.dropReasons.set(why, (s.dropReasons.get(why) ?? 0) + 1);
      }
    }
  }

  /** BPF_PROG_TEST_RUN: run on one packet (through a one-packet batch) and return verdict and bytes. */
  run(packet: Uint8Array, meta?: PacketMeta, batch = new PacketBatch(this.mem, this.lane)): RunResult {
    batch.reset();
    batch.add(packet, meta);
    this.runBatch(batch, 0, 1);
    return resultOf(batch, 0);
  }
}

export function resultOf(batch: PacketBatch, i: number): RunResult {
  const retval = batch.retval(i);
  const trap = batch.traps[i]! !== TRAP_NONE ? (TRAP_NAMES[batch.traps[i]!] ?? "trap") : undefined;
  return {
    retval,
    packet: batch.packet(i).slice(),
    redirect: retval === 7 && !trap ? { ifindex: batch.redirectIfindex(i), flags: batch.redirectFlags(i) } : undefined,
    trap,
    dropReason: batch.dropReason(i),
    mark: batch.mark(i),
  };
}

function newStats(retvals: () => Map<number, number>): ProgramStats {
  return {
    runs: 0,
    get retvals() {
      return retvals();
    },
    traps: { oob: 0, budget: 0, abort: 0, trap: 0 },
    dropReasons: new Map(),
  };
}

/** Thrown by the env.abort import: an assertion in the program failed. */
export class AbortTrap extends Error {}
