// tc attach points: clsact ingress and egress per interface, several cls_bpf filters per hook in priority
// order, direct-action semantics (net/sched/cls_bpf.c with `da`): filters run from the lowest pref up and the
// first one returning anything but TC_ACT_UNSPEC decides; if none does (or the hook is empty) the packet goes on
// as with TC_ACT_OK. Replacing a filter swaps its program atomically between batches (the maps belong to the
// loaded objects and pinned names, so they stay); detach removes it. Interfaces are plain ifindex numbers here:
// the network model decides what they are.
import { SKB_IFINDEX, SKB_INGRESS_IFINDEX, SKB_REDIRECT_FLAGS, SKB_REDIRECT_IFINDEX, TC_ACT_OK, TC_ACT_QUEUED, TC_ACT_REDIRECT, TC_ACT_SHOT, TC_ACT_STOLEN, TC_ACT_TRAP, TC_ACT_UNSPEC, BATCH_MAX, SKB_DROP_REASON } from "./abi.js";
import type { PacketBatch } from "./batch.js";
import { BpfError } from "./errors.js";
import type { BpfProgram } from "./program.js";

export type TcDirection = "ingress" | "egress";

export interface TcFilter {
  /** tc's "pref" (priority): lower runs first. */
  pref: number;
  /** Filter handle within the pref (tc's "handle"); 1 unless given. */
  handle: number;
  prog: BpfProgram;
}

/** What the stack does with the packet after the hook. */
export type TcOutcome = "pass" | "drop" | "redirect" | "stolen";

export function tcOutcome(verdict: number): TcOutcome {
  switch (verdict) {
    case TC_ACT_SHOT:
      return "drop";
    case TC_ACT_REDIRECT:
      return "redirect";
    case TC_ACT_STOLEN:
    case TC_ACT_QUEUED:
    case TC_ACT_TRAP:
      return "stolen";
    default:
      return "pass"; // TC_ACT_UNSPEC, OK, RECLASSIFY, PIPE, REPEAT: the packet continues
  }
}

/** The first auto-assigned pref, as the kernel's tcf_auto_prio (0xC000 = 49152), then one less each time. */
const AUTO_PREF = 49152;

export class TcHooks {
  private readonly hooks = new Map<string, TcFilter[]>();
  /** Per packet of the last run: the final verdict and which filter (index into list()) decided (-1: none). */
  readonly verdicts = new Int32Array(BATCH_MAX);
  readonly decidedBy = new Int32Array(BATCH_MAX);

  private key(ifindex: number, dir: TcDirection): string {
    return `${ifindex}/${dir}`;
  }

  list(ifindex: number, dir: TcDirection): readonly TcFilter[] {
    return this.hooks.get(this.key(ifindex, dir)) ?? [];
  }

  /** `tc filter add dev IF DIR [pref P] bpf da obj ...`. */
  attach(ifindex: number, dir: TcDirection, prog: BpfProgram, opts: { pref?: number; handle?: number } = {}): TcFilter {
    const k = this.key(ifindex, dir);
    const list = this.hooks.get(k) ?? [];
    const pref = opts.pref ?? (list.length > 0 ? Math.max(1, Math.min(...list.map((f) => f.pref)) - 1) : AUTO_PREF);
    const handle = opts.handle ?? 1;
    if (list.some((f) => f.pref === pref && f.handle === handle)) {
      throw new BpfError(`a filter with pref ${pref} handle ${handle} exists (use replace)`, `tc ${dir} on ifindex ${ifindex}`);
    }
    if (prog.closed) throw new BpfError("program is unloaded", `tc ${dir} on ifindex ${ifindex}`);
    const f: TcFilter = { pref, handle, prog };
    list.push(f);
    list.sort((a, b) => a.pref - b.pref || a.handle - b.handle);
    this.hooks.set(k, list);
    return f;
  }

  /** `tc filter replace ... pref P`: the new program takes over at once; in-flight batches finish on the old. */
  replace(ifindex: number, dir: TcDirection, pref: number, prog: BpfProgram, handle = 1): TcFilter {
    const f = this.list(ifindex, dir).find((x) => x.pref === pref && x.handle === handle);
    if (!f) return this.attach(ifindex, dir, prog, { pref, handle });
    f.prog = prog;
    return f;
  }

  /** `tc filter del ... [pref P]`: one filter, or the whole hook. */
  detach(ifindex: number, dir: TcDirection, pref?: number): void {
    const k = this.key(ifindex, dir);
    if (pref === undefined) {
      this.hooks.delete(k);
      return;
    }
    const list = this.list(ifindex, dir).filter((f) => f.pref !== pref);
    if (list.length === 0) this.hooks.delete(k);
    else this.hooks.set(k, list);
  }

  /**
   * Run the hook on every packet of `batch` as it passes `ifindex` in direction `dir`. Afterwards
   * `verdicts[i]` holds each packet's final verdict (TC_ACT_OK when no filter decided) and the batch's contexts
   * hold redirect targets. Returns the number of packets a filter decided on.
   */
  run(ifindex: number, dir: TcDirection, batch: PacketBatch): number {
    const n = batch.length;
    const list = this.list(ifindex, dir);
    const u32 = batch.mem.u32;
    for (let i = 0; i < n; i++) {
      const c = batch.ctxAddr(i) >>> 2;
      u32[c + (SKB_IFINDEX >>> 2)] = ifindex;
      if (dir === "ingress") u32[c + (SKB_INGRESS_IFINDEX >>> 2)] = ifindex;
      this.verdicts[i] = TC_ACT_UNSPEC;
      this.decidedBy[i] = -1;
    }
    let decided = 0;
    for (let fi = 0; fi < list.length; fi++) {
      const prog = list[fi]!.prog;
      if (fi === 0) {
        prog.runBatch(batch, 0, n);
        for (let i = 0; i < n; i++) decided += this.take(batch, i, fi);
        continue;
      }
      // Later filters see only the packets every earlier filter left undecided (TC_ACT_UNSPEC).
      for (let i = 0; i < n; i++) {
        if (this.decidedBy[i] !== -1) continue;
        const c = batch.ctxAddr(i) >>> 2;
        u32[c + (SKB_REDIRECT_IFINDEX >>> 2)] = 0;
        u32[c + (SKB_REDIRECT_FLAGS >>> 2)] = 0;
        u32[c + (SKB_DROP_REASON >>> 2)] = 0;
        prog.runBatch(batch, i, 1);
        decided += this.take(batch, i, fi);
      }
    }
    for (let i = 0; i < n; i++) if (this.decidedBy[i] === -1) this.verdicts[i] = TC_ACT_OK;
    return decided;
  }

  private take(batch: PacketBatch, i: number, fi: number): number {
    const r = batch.retval(i);
    if (r === TC_ACT_UNSPEC) return 0;
    this.verdicts[i] = r;
    this.decidedBy[i] = fi;
    return 1;
  }
}
