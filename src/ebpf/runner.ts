// `tcbox run`: a program at tc ingress over a capture. Packets go through in batches (one call per batch);
// each gets its verdict; passed and redirected packets are kept (with their rewritten bytes), dropped and
// stolen ones are left out, as the stack would. The clock (bpf_ktime_get_ns) is the capture's timestamp of each
// batch's first packet.
import type { CaptureRecord } from "../packet/pcap.js";
import { BATCH_MAX, tcActName, TRAP_NONE } from "./abi.js";
import { PacketBatch } from "./batch.js";
import type { BpfKernel } from "./kernel.js";
import { TRAP_NAMES, type BpfProgram, type TrapReason } from "./program.js";
import { TcHooks, tcOutcome, type TcOutcome } from "./tc.js";

/** The ifindex the capture's packets arrive on. */
export const RUN_IFINDEX = 1;

export interface PacketVerdict {
  /** 1-based, as the capture's frame number. */
  index: number;
  retval: number;
  verdict: string;
  outcome: TcOutcome;
  trap?: TrapReason;
  dropReason?: number;
  redirect?: { ifindex: number; ingress: boolean; peer: boolean };
  changed: boolean;
  /** The packet after the program (kept packets only). */
  data?: Uint8Array;
}

export interface RunSummary {
  packets: PacketVerdict[];
  retvals: Record<string, number>;
  traps: Record<TrapReason, number>;
  dropReasons: Record<string, number>;
  kept: number;
}

export function runCapture(kernel: BpfKernel, prog: BpfProgram, records: Iterable<CaptureRecord>): RunSummary {
  const tc = new TcHooks();
  tc.attach(RUN_IFINDEX, "ingress", prog);
  const batch = new PacketBatch(kernel.mem);
  const packets: PacketVerdict[] = [];
  const pending: CaptureRecord[] = [];
  const flush = () => {
    if (pending.length === 0) return;
    kernel.ktimeNs = pending[0]!.tsNs;
    tc.run(RUN_IFINDEX, "ingress", batch);
    for (let i = 0; i < pending.length; i++) {
      const rec = pending[i]!;
      const retval = tc.verdicts[i]!;
      const outcome = tcOutcome(retval);
      const trap = batch.traps[i] !== TRAP_NONE ? (TRAP_NAMES[batch.traps[i]!] ?? "trap") : undefined;
      const out = batch.packet(i);
      const changed = out.length !== rec.data.length || out.some((b, k) => b !== rec.data[k]);
      const v: PacketVerdict = { index: rec.index, retval, verdict: tcActName(retval), outcome, changed };
      if (trap) v.trap = trap;
      if (outcome === "drop" && !trap && batch.dropReason(i) !== 0) v.dropReason = batch.dropReason(i);
      if (outcome === "redirect") {
        const f = batch.redirectFlags(i);
        v.redirect = { ifindex: batch.redirectIfindex(i), ingress: (f & 1) !== 0, peer: (f & 2) !== 0 };
      }
      if (outcome === "pass" || outcome === "redirect") v.data = out.slice();
      packets.push(v);
    }
    batch.reset();
    pending.length = 0;
  };
  for (const rec of records) {
    if (batch.length >= BATCH_MAX || batch.room < rec.data.length) flush();
    batch.add(rec.data, { ifindex: RUN_IFINDEX, ingressIfindex: RUN_IFINDEX });
    pending.push(rec);
  }
  flush();
  const s = prog.stats;
  const retvals: Record<string, number> = {};
  for (const [r, n] of [...s.retvals].sort((a, b) => a[0] - b[0])) retvals[tcActName(r)] = n;
  const dropReasons: Record<string, number> = {};
  for (const [r, n] of s.dropReasons) dropReasons[String(r)] = n;
  return { packets, retvals, traps: { ...s.traps }, dropReasons, kept: packets.filter((p) => p.data).length };
}
