// Load-time rewriting with binaryen (the copy assemblyscript ships): the instruction budget and the batch
// runners. The kernel bounds a program statically (the verifier walks at most 1M instructions,
// BPF_COMPLEXITY_LIMIT_INSNS) and loops must provably end; WebAssembly cannot be bounded statically, so tcbox
// bounds it at run time:
//   a budget tick (a decrement of a per-instance budget global, inlined, which traps with TRAP_BUDGET when it
//   goes below zero) at every loop header and at the entry of every function that calls another (only those can
//   take part in recursion; a function that calls nothing runs its straight-line code and its loops, which tick,
//   once per call). Everything between two ticks is straight-line code of bounded length, so the budget bounds
//   the work like the verifier's instruction count. One budget unit = one loop iteration or one entry into a
//   calling function: the default of 1,000,000 units per packet allows about a million loop iterations (each at
//   least one and usually several instructions), at least as much work as the kernel lets a program do, and a
//   runaway loop stops in a few milliseconds. (Function exits do not tick: every exit follows its entry.)
//   The walk that finds the loops knows the expressions asc emits; a module with any other kind of expression
//   gets binaryen's log-execution pass instead (a tick at every function entry, exit and loop header).
// A batch runner `__tcbox_batch_<entry>(ctx, n)` is added for every entry point: it runs the entry on n
// consecutive contexts, resets the budget from CB_BUDGET before each one (capped at MAX_BUDGET: the control block
// is in the program's memory, and a raw store there must not lift the bound off the packets after it), writes
// each verdict into the context, counts it (CB_VERDICTS: so the host does not visit every packet for its
// statistics), and records the index it is at in a global (INDEX_GLOBAL, out of the program's reach, not
// CB_BATCH_INDEX) so the host knows which packet a trap stopped. A program built for a
// worker's lane (lanes.ts) uses that lane's control block: `lane` is its base address.
import binaryen from "binaryen";
import { CB_BUDGET, CB_TRAP_REASON, CB_VERDICTS, CTX_SIZE, SKB_RETVAL, TRAP_BUDGET, VERDICT_SLOTS } from "./abi.js";

export const BUDGET_GLOBAL = "__tcbox_budget";
export const BATCH_PREFIX = "__tcbox_batch_";
export const INDEX_GLOBAL = "__tcbox_index";
export const DEFAULT_BUDGET = 1_000_000;
/** The most budget units a packet gets, whatever CB_BUDGET holds (~16x the default; a runaway packet: tens of ms). */
export const MAX_BUDGET = 1 << 24;
/** The tick function (log-execution's logger name, so its calls resolve to it too); inlined everywhere. */
const TICK = "log_execution";

export interface EntryPoint {
  /** Exported name, e.g. "cls_main". */
  name: string;
  /** Exported name of its batch runner. */
  batch: string;
}

export interface Instrumented {
  wasm: Uint8Array;
  entries: EntryPoint[];
}

/** Add the budget and the batch runners to a verified module. `entries` are exported (i32) -> i32 functions. */
export function instrument(bytes: Uint8Array, entries: string[], lane = 0): Instrumented {
  const m = binaryen.readBinary(bytes);
  try {
    m.setFeatures(binaryen.Features.All);
    const internal = new Map<string, string>();
    for (let i = 0; i < m.getNumExports(); i++) {
      const e = binaryen.getExportInfo(m.getExportByIndex(i));
      if (e.kind === binaryen.ExternalFunction) internal.set(e.name, e.value);
    }
    m.addGlobal(BUDGET_GLOBAL, binaryen.i32, true, m.i32.const(MAX_BUDGET)); // the start function (top-level code) runs on it
    m.addGlobalExport(BUDGET_GLOBAL, BUDGET_GLOBAL);
    m.addGlobal(INDEX_GLOBAL, binaryen.i32, true, m.i32.const(0));
    m.addGlobalExport(INDEX_GLOBAL, INDEX_GLOBAL);
    if (!addBudgetTicks(m)) {
      m.runPasses(["log-execution"]);
      // Replace the imported logger the pass added with the tick (same name: calls resolve by name).
      if (m.getFunction("log_execution")) m.removeFunction("log_execution");
    }
    m.addFunction(TICK, binaryen.createType([binaryen.i32]), binaryen.none, [], budgetTick(m, lane));
    const out: EntryPoint[] = [];
    for (const name of entries) {
      const fn = internal.get(name);
      if (fn === undefined) continue;
      const batch = BATCH_PREFIX + name;
      addBatchRunner(m, batch, fn, lane);
      m.addFunctionExport(batch, batch);
      out.push({ name, batch });
    }
    binaryen.setOptimizeLevel(3);
    binaryen.setShrinkLevel(0);
    m.runPasses(["inlining-optimizing"]);
    if (!m.validate()) throw new Error("instrumented module does not validate");
    return { wasm: m.emitBinary(), entries: out };
  } finally {
    m.dispose();
  }
}

/**
 * (func $batch (param $ctx i32) (param $n i32) (local $i i32) (local $r i32) (local $slot i32)
 *   loop: if i < n { index = i; budget = min_u(load CB_BUDGET, MAX_BUDGET); r = entry(ctx); ctx.retval = r;
 *                    slot = min_u(r + 1, VERDICT_SLOTS - 1); CB_VERDICTS[slot]++; ctx += CTX_SIZE; i++ })
 */
function addBatchRunner(m: binaryen.Module, name: string, entry: string, lane: number): void {
  const i32 = binaryen.i32;
  const ctx = () => m.local.get(0, i32);
  const n = () => m.local.get(1, i32);
  const i = () => m.local.get(2, i32);
  const r = () => m.local.get(3, i32);
  const slot = () => m.local.get(4, i32);
  const other = VERDICT_SLOTS - 1;
  const body = m.block("done", [
    m.loop(
      "next",
      m.block(null, [
        m.br("done", m.i32.ge_u(i(), n())),
        m.global.set(INDEX_GLOBAL, i()),
        m.global.set(BUDGET_GLOBAL, m.i32.load(0, 4, m.i32.const(lane + CB_BUDGET))),
        m.if(m.i32.gt_u(m.global.get(BUDGET_GLOBAL, i32), m.i32.const(MAX_BUDGET)), m.global.set(BUDGET_GLOBAL, m.i32.const(MAX_BUDGET))),
        m.local.set(3, m.call(entry, [ctx()], i32)),
        m.i32.store(SKB_RETVAL, 4, ctx(), r()),
        m.local.set(4, m.i32.add(r(), m.i32.const(1))), // slot, then its address
        m.local.set(
          4,
          m.i32.add(
            m.i32.const(lane + CB_VERDICTS),
            m.i32.shl(m.select(m.i32.lt_u(slot(), m.i32.const(other)), slot(), m.i32.const(other)), m.i32.const(2)),
          ),
        ),
        m.i32.store(0, 4, slot(), m.i32.add(m.i32.load(0, 4, slot()), m.i32.const(1))),
        m.local.set(0, m.i32.add(ctx(), m.i32.const(CTX_SIZE))),
        m.local.set(2, m.i32.add(i(), m.i32.const(1))),
        m.br("next"),
      ]),
    ),
  ]);
  m.addFunction(name, binaryen.createType([i32, i32]), binaryen.none, [i32, i32, i32], body);
}

/** budget -= 1; below zero: CB_TRAP_REASON = TRAP_BUDGET and trap. */
function budgetTick(m: binaryen.Module, lane: number): binaryen.ExpressionRef {
  return m.block(null, [
    m.global.set(BUDGET_GLOBAL, m.i32.sub(m.global.get(BUDGET_GLOBAL, binaryen.i32), m.i32.const(1))),
    m.if(
      m.i32.lt_s(m.global.get(BUDGET_GLOBAL, binaryen.i32), m.i32.const(0)),
      m.block(null, [m.i32.store(0, 4, m.i32.const(lane + CB_TRAP_REASON), m.i32.const(TRAP_BUDGET)), m.unreachable()]),
    ),
  ]);
}

// binaryen.js's expression and function wrappers (not in its type declarations).
interface Wrappers {
  Loop: { getBody(e: binaryen.ExpressionRef): binaryen.ExpressionRef; setBody(e: binaryen.ExpressionRef, body: binaryen.ExpressionRef): void };
  Function: { getBody(f: binaryen.FunctionRef): binaryen.ExpressionRef; setBody(f: binaryen.FunctionRef, body: binaryen.ExpressionRef): void };
}
const wrappers = binaryen as unknown as Wrappers;

/**
 * Ticks at every loop header and at the entry of every function that makes a call. Returns false (module
 * unchanged) if a function holds an expression the walk does not know: then it cannot be sure it saw every loop.
 */
function addBudgetTicks(m: binaryen.Module): boolean {
  const tick = () => m.call(TICK, [m.i32.const(0)], binaryen.none);
  const loops: binaryen.ExpressionRef[] = [];
  const calling: binaryen.FunctionRef[] = [];
  const n = m.getNumFunctions();
  for (let i = 0; i < n; i++) {
    const f = m.getFunctionByIndex(i);
    const info = binaryen.getFunctionInfo(f);
    if (info.module !== "" || info.body === 0) continue; // an import
    const found = { calls: false };
    if (!walk(info.body, loops, found)) return false;
    if (found.calls) calling.push(f);
  }
  for (const l of loops) wrappers.Loop.setBody(l, m.block(null, [tick(), wrappers.Loop.getBody(l)], binaryen.auto));
  for (const f of calling) wrappers.Function.setBody(f, m.block(null, [tick(), wrappers.Function.getBody(f)], binaryen.auto));
  return true;
}

/** Collect the loops under `e` and note calls; false on an expression kind it does not know. */
function walk(e: binaryen.ExpressionRef, loops: binaryen.ExpressionRef[], found: { calls: boolean }): boolean {
  if (e === 0) return true;
  switch (binaryen.getExpressionId(e)) {
    // Leaves (asked first: getExpressionInfo throws on some, e.g. unreachable).
    case binaryen.LocalGetId:
    case binaryen.GlobalGetId:
    case binaryen.ConstId:
    case binaryen.MemorySizeId:
    case binaryen.NopId:
    case binaryen.UnreachableId:
    case binaryen.AtomicFenceId:
      return true;
  }
  const info = binaryen.getExpressionInfo(e) as binaryen.ExpressionInfo & Record<string, unknown>;
  const kids = (...names: string[]) => names.every((k) => walk((info[k] as number | undefined) ?? 0, loops, found));
  const list = (k: string) => (info[k] as number[]).every((c) => walk(c, loops, found));
  switch (info.id) {
    case binaryen.BlockId:
      return list("children");
    case binaryen.IfId:
      return kids("condition", "ifTrue", "ifFalse");
    case binaryen.LoopId:
      loops.push(e);
      return kids("body");
    case binaryen.BreakId:
    case binaryen.SwitchId:
      return kids("condition", "value");
    case binaryen.CallId:
      found.calls = true;
      return list("operands");
    case binaryen.CallIndirectId:
      found.calls = true;
      return kids("target") && list("operands");
    case binaryen.LocalSetId:
    case binaryen.GlobalSetId:
    case binaryen.UnaryId:
    case binaryen.DropId:
    case binaryen.ReturnId:
      return kids("value");
    case binaryen.LoadId:
      return kids("ptr");
    case binaryen.StoreId:
    case binaryen.AtomicRMWId:
      return kids("ptr", "value");
    case binaryen.AtomicCmpxchgId:
      return kids("ptr", "expected", "replacement");
    case binaryen.BinaryId:
      return kids("left", "right");
    case binaryen.SelectId:
      return kids("ifTrue", "ifFalse", "condition");
    case binaryen.MemoryGrowId:
      return kids("delta");
    case binaryen.MemoryCopyId:
      return kids("dest", "source", "size");
    case binaryen.MemoryFillId:
      return kids("dest", "value", "size");
    default:
      return false;
  }
}
