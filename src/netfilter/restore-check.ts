// What the kernel checks when a table is committed (translate_table / xt_check_target / mark_source_chains):
// no loops among user chains, targets only in their table, only reachable from their hooks.
import type { ArgCursor } from "./tokens.js";
import type { Match } from "./match.js";
import type { Table } from "./rule.js";
import { TARGET_MODULES } from "./target-misc.js";
import type { HookName } from "./tables.js";

export function checkTable(table: Table, cur: ArgCursor): void {
  // The nat table only holds NAT decisions: the kernel refuses DROP and REJECT there (tested with iptables-legacy).
  for (const c of table.chains.values()) {
    for (const r of c.rules) {
      const k = r.target?.kind;
      if (table.name === "nat" && (k === "DROP" || k === "REJECT")) cur.fail(`${k} target not allowed in the nat table`);
      if (k && k !== "jump") {
        const mod = TARGET_MODULES[k];
        if (mod?.table && mod.table !== table.name) cur.fail(`${k} target: only valid in ${mod.table} table, not ${table.name}`);
      }
    }
  }
  const hooks = reachability(table, cur);
  for (const c of table.chains.values()) {
    const from = hooks.get(c.name);
    if (!from || from.size === 0) continue;
    for (const r of c.rules) {
      for (const m of r.matches) {
        const allowed = matchHooks(m);
        const bad = allowed ? [...from].filter((h) => !allowed.includes(h)) : [];
        if (bad.length) cur.fail(`${m.kind} match: used from hooks ${bad.join("/")}, but only valid in ${allowed!.join("/")}`);
      }
      const k = r.target?.kind;
      if (!k || k === "jump") continue;
      const allowed = TARGET_MODULES[k]?.hooks;
      if (!allowed) continue;
      const bad = [...from].filter((h) => !allowed.includes(h));
      if (bad.length) cur.fail(`${k} target: used from hooks ${bad.join("/")}, but only usable from ${allowed.join("/")}`);
    }
  }
}

/** Hooks a match's checkentry accepts (xt_addrtype --limit-iface-*, xt_physdev's output side), null for any. */
function matchHooks(m: Match): HookName[] | null {
  if (m.kind === "addrtype") {
    if (m.limitIfaceIn) return ["PREROUTING", "INPUT", "FORWARD"];
    if (m.limitIfaceOut) return ["OUTPUT", "FORWARD", "POSTROUTING"];
  }
  // physdev --physdev-out without --physdev-is-bridged only warns on this kernel (tested): no restriction.
  return null;
}

/** Hooks each chain is reachable from; throws on a loop reachable from a hook (the kernel's ELOOP from
 * mark_source_chains). Loops among unreachable user chains are accepted, as the kernel does (tested). */
function reachability(table: Table, cur: ArgCursor): Map<string, Set<HookName>> {
  const out = new Map<string, Set<HookName>>();
  for (const c of table.chains.values()) out.set(c.name, new Set());
  const state = new Map<string, number>(); // 1 visiting, 2 done
  const visit = (name: string, hook: HookName, stack: Set<string>): void => {
    if (stack.has(name)) cur.fail(`loop detected through chain \`${name}' (Too many levels of symbolic links)`);
    const set = out.get(name)!;
    if (set.has(hook) && state.get(name) === 2) return;
    set.add(hook);
    stack.add(name);
    for (const r of table.chains.get(name)!.rules) if (r.target?.kind === "jump") visit(r.target.chain, hook, stack);
    stack.delete(name);
    state.set(name, 2);
  };
  for (const c of table.chains.values()) if (c.builtin) visit(c.name, c.name as HookName, new Set());
  return out;
}
