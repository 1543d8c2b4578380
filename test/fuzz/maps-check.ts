// Consistency checks for a node kernel's maps after hostile traffic, and Gen 4's program counters. A hash-type map
// (hash, LRU, per-CPU, LPM trie) is consistent when its element count equals the elements reachable from its
// buckets, every reachable element is found again by a lookup of its key, the free list holds exactly the
// remaining preallocated elements, and (LRU) the recency list holds exactly the elements in use and every
// element's chain predecessor link (L_CPREV) names the element before it in its bucket.
import type { BpfKernel } from "../../src/ebpf/kernel.js";
import type { BpfMap } from "../../src/ebpf/maps/map.js";
import type { BpfProgram } from "../../src/ebpf/program.js";
import { elemAddr, lruOrder } from "../../src/ebpf/maps/htab.js";
import {
  BPF_MAP_TYPE_LPM_TRIE, E_NEXT, L_CPREV, LRU_LINK_SIZE, M_BUCKETS, M_FREE, M_LRU_LINKS, M_N_BUCKETS, isHashType, isLruType,
} from "../../src/ebpf/maps/layout.js";
import { TC_ACT_SHOT } from "../../src/ebpf/abi.js";
import type { BuiltGen4 } from "../../src/gens/gen4.js";

/** Every map a kernel holds (objects' maps and pinned ones), once each. */
export function kernelMaps(k: BpfKernel): BpfMap[] {
  const seen = new Map<number, BpfMap>();
  for (const o of k.objects) for (const m of o.maps.values()) seen.set(m.id, m);
  for (const m of k.pinned.values()) seen.set(m.id, m);
  return [...seen.values()];
}

/** Problems found in one map ("" entries never; empty list = consistent). */
export function checkMap(m: BpfMap): string[] {
  const t = m.spec.type;
  if (!isHashType(t) && t !== BPF_MAP_TYPE_LPM_TRIE) return [];
  const out: string[] = [];
  const count = m.count;
  let reachable = 0;
  for (const [key] of m.entries()) {
    reachable++;
    // LPM lookups are longest-prefix matches on the data part; a stored prefix finds itself or a longer one.
    if (t !== BPF_MAP_TYPE_LPM_TRIE && m.valueAddr(key) === 0) out.push(`map ${m.name}: element ${Buffer.from(key).toString("hex")} in a bucket but not found by lookup`);
  }
  if (reachable !== count) out.push(`map ${m.name}: count ${count} but ${reachable} elements in its buckets`);
  const u32 = m.mem.u32;
  let free = 0;
  for (let idx = u32[(m.base + M_FREE) >>> 2]!; idx !== 0 && free <= m.spec.maxEntries; idx = u32[(elemAddr(m.mem, m.base, idx) + E_NEXT) >>> 2]!) free++;
  if (count + free !== m.spec.maxEntries) out.push(`map ${m.name}: count ${count} + free ${free} != max_entries ${m.spec.maxEntries}`);
  if (isLruType(t)) {
    const lru = lruOrder(m.mem, m.base).length;
    if (lru !== count) out.push(`map ${m.name}: count ${count} but ${lru} elements on the LRU list`);
    out.push(...checkChainLinks(m));
  }
  return out;
}

/** LRU maps: each chain element's L_CPREV is the element before it (0 for the bucket's first). */
export function checkChainLinks(m: BpfMap): string[] {
  const u32 = m.mem.u32;
  const hdr = (off: number) => u32[(m.base + off) >>> 2]!;
  const cprev = (idx: number) => u32[(hdr(M_LRU_LINKS) + (idx - 1) * LRU_LINK_SIZE + L_CPREV) >>> 2]!;
  const out: string[] = [];
  for (let b = 0; b < hdr(M_N_BUCKETS); b++) {
    let prev = 0;
    for (let idx = u32[(hdr(M_BUCKETS) + b * 4) >>> 2]!; idx !== 0; idx = u32[(elemAddr(m.mem, m.base, idx) + E_NEXT) >>> 2]!) {
      if (cprev(idx) !== prev) out.push(`map ${m.name}: element ${idx} in bucket ${b} has chain predecessor ${cprev(idx)}, not ${prev}`);
      prev = idx;
    }
  }
  return out;
}

export function checkKernelMaps(k: BpfKernel): string[] {
  return kernelMaps(k).flatMap(checkMap);
}

/** The programs Gen 4 attached (each node's chains' entry points). */
export function gen4Programs(g: BuiltGen4): BpfProgram[] {
  return g.ebpf.flatMap((n) => Object.values(n.chains).map((o) => o.program("cls_main")));
}

export interface ProgramTotals {
  runs: number;
  /** TC_ACT_SHOT verdicts plus traps (a trapped packet is dropped with TC_ACT_SHOT). */
  shots: number;
  traps: { oob: number; budget: number; abort: number; trap: number };
}

export function programTotals(progs: BpfProgram[]): ProgramTotals {
  const t: ProgramTotals = { runs: 0, shots: 0, traps: { oob: 0, budget: 0, abort: 0, trap: 0 } };
  for (const p of progs) {
    t.runs += p.stats.runs;
    t.shots += p.stats.retvals.get(TC_ACT_SHOT) ?? 0;
    for (const k of Object.keys(t.traps) as (keyof ProgramTotals["traps"])[]) {
      t.traps[k] += p.stats.traps[k];
      t.shots += p.stats.traps[k];
    }
  }
  return t;
}

/** after - before, field by field. */
export function totalsSince(before: ProgramTotals, after: ProgramTotals): ProgramTotals {
  const traps = { ...after.traps };
  for (const k of Object.keys(traps) as (keyof ProgramTotals["traps"])[]) traps[k] -= before.traps[k];
  return { runs: after.runs - before.runs, shots: after.shots - before.shots, traps };
}
