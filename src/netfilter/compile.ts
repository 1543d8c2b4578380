// Table → CompiledTable: every rule's addresses become value/mask pairs, interfaces pattern ids with a per-ifindex
// answer, matches a small opcode program over an Int32Array, jumps chain indices. Done once per ruleset load.
import { CtState } from "./ctstate.js";
import {
  CT_GUARD_INV, CT_GUARD_ON, CT_GUARD_STATES, type CompiledTable, IP, IP_STRIDE, IpFlag, NAT_STRIDE, NatFlag, NatKind, Op, Quick, R,
  type RecentInfo, RULE_STRIDE, T,
} from "./compiled.js";
import { IfaceRegistry, ifaceMatches } from "./iface.js";
import type { Match } from "./match.js";
import { NetfilterError } from "./errors.js";
import { RecentCmd, RecentTables } from "./recent.js";
import { type IpSet, IpSetRegistry } from "./ipset.js";
import type { Rule, Ruleset, Table } from "./rule.js";
import { HOOK_NAMES } from "./tables.js";
import type { Target } from "./target.js";
import { chainsInSaveOrder } from "./save.js";

export interface CompileEnv {
  ifaces: IfaceRegistry;
  recent: RecentTables;
  /** The namespace's ipsets (`-m set`); a rule naming a missing set is refused, as the kernel does. */
  ipsets: IpSetRegistry;
}

export interface CompiledRuleset {
  tables: CompiledTable[];
  byName: Partial<Record<CompiledTable["name"], CompiledTable>>;
  env: CompileEnv;
}

export function compileRuleset(rs: Ruleset, env: Partial<CompileEnv> = {}): CompiledRuleset {
  const full: CompileEnv = { ifaces: env.ifaces ?? new IfaceRegistry(), recent: env.recent ?? new RecentTables(), ipsets: env.ipsets ?? new IpSetRegistry() };
  const tables = rs.tables.map((t, i) => compileTable(t, i, full));
  const byName: CompiledRuleset["byName"] = {};
  for (const t of tables) byName[t.name] = t;
  return { tables, byName, env: full };
}

/** Growable Int32 buffer for setup code. */
class IntBuf {
  a = new Int32Array(64);
  n = 0;
  push(...v: number[]): number {
    const at = this.n;
    for (const x of v) {
      if (this.n === this.a.length) {
        const b = new Int32Array(this.a.length * 2);
        b.set(this.a);
        this.a = b;
      }
      this.a[this.n++] = x | 0;
    }
    return at;
  }
  done(): Int32Array {
    return this.a.slice(0, this.n);
  }
}

export function compileTable(table: Table, id: number, env: CompileEnv): CompiledTable {
  const chains = chainsInSaveOrder(table);
  const chainIndex = new Map(chains.map((c, i) => [c.name, i]));
  const nRules = chains.reduce((n, c) => n + c.rules.length, 0);
  const ip = new Int32Array(nRules * IP_STRIDE);
  const scan = new Int32Array(nRules * 4);
  const mStart = new Int32Array(nRules);
  const mEnd = new Int32Array(nRules);
  const tKind = new Int32Array(nRules);
  const tArg = new Int32Array(nRules);
  const ruleChain = new Int32Array(nRules);
  const ruleNum = new Int32Array(nRules);
  const ctGuard = new Int32Array(nRules);
  const chainStart = new Int32Array(chains.length);
  const chainEnd = new Int32Array(chains.length);
  const chainPolicy = new Int8Array(chains.length);
  const mOp = new IntBuf();
  const mArg = new IntBuf();
  const data = new IntBuf();
  const nat = new IntBuf();
  const recent: RecentInfo[] = [];
  const sets: IpSet[] = [];
  const ifPatterns: string[] = [];
  const nthInit: number[] = [];
  const ifId = (pattern: string) => {
    let k = ifPatterns.indexOf(pattern);
    if (k < 0) k = ifPatterns.push(pattern) - 1;
    return k;
  };
  let r = 0;
  chains.forEach((c, ci) => {
    chainStart[ci] = r;
    chainPolicy[ci] = c.builtin ? (c.policy === "DROP" ? 0 : 1) : -1;
    c.rules.forEach((rule, k) => {
      ruleChain[r] = ci;
      ruleNum[r] = k + 1;
      compileIp(rule, ip, r * IP_STRIDE, ifId);
      const o = r * IP_STRIDE;
      if ((ip[o + IP.FLAGS]! & (IpFlag.INV_SRC | IpFlag.INV_DST)) === 0) {
        scan.set([ip[o + IP.SRC]!, ip[o + IP.SRC_MASK]!, ip[o + IP.DST]!, ip[o + IP.DST_MASK]!], r * 4);
      }
      mStart[r] = mOp.n;
      // Only matches without side effects may be tested out of order (statistic counts draws and nth packets,
      // recent changes its lists): the ctstate guard is taken from a state match none of those precede.
      let pure = true;
      for (const m of rule.matches) {
        // Each match appends its operands at the end of `data`: its argument is where they start.
        const start = data.n;
        const op = compileMatch(m, data, ifId, env, recent, (init) => nthInit.push(init) - 1, sets);
        if (op < 0) continue;
        if (op === Op.CONNTRACK && pure && ctGuard[r] === 0 && (data.a[start]! & 1) !== 0) {
          ctGuard[r] = ctStateGuard(data.a[start + 1]!, (data.a[start]! & 2) !== 0);
          // A state-only match is decided by the guard alone: no opcode (its operands stay, unused).
          if ((data.a[start]! & ~3) === 0) continue;
        }
        if (op === Op.STAT_NTH || op === Op.STAT_RANDOM || op === Op.RECENT) pure = false;
        mOp.push(op);
        mArg.push(op === Op.RECENT ? recent.length - 1 : start);
      }
      mEnd[r] = mOp.n;
      const [kind, arg] = compileTarget(rule.target, chainIndex, nat, data);
      tKind[r] = kind;
      tArg[r] = arg;
      r++;
    });
    chainEnd[ci] = r;
  });
  const hookChain = new Int32Array(HOOK_NAMES.length).fill(-1);
  HOOK_NAMES.forEach((h, i) => {
    const ci = chainIndex.get(h);
    if (ci !== undefined && chains[ci]!.builtin) hookChain[i] = ci;
  });
  const ifMatch = ifPatterns.map((p) => {
    const arr = new Uint8Array(Math.max(64, env.ifaces.names.length * 2));
    env.ifaces.names.forEach((name, idx) => (arr[idx] = ifaceMatches(p, name) ? 1 : 0));
    return arr;
  });
  const rule = new Int32Array(nRules * RULE_STRIDE);
  for (let k = 0; k < nRules; k++) {
    const o = k * RULE_STRIDE;
    rule.set(ip.subarray(k * IP_STRIDE, (k + 1) * IP_STRIDE), o);
    rule[o + R.GUARD] = ctGuard[k]!;
    rule[o + R.M_START] = mStart[k]!;
    rule[o + R.M_END] = mEnd[k]!;
    rule[o + R.T_KIND] = tKind[k]!;
    rule[o + R.T_ARG] = tArg[k]!;
    rule[o + R.CHAIN] = ruleChain[k]!;
    rule[o + R.NUM] = ruleNum[k]!;
    const f = ip[k * IP_STRIDE + IP.FLAGS]!;
    const slowIp = IpFlag.INV_SRC | IpFlag.INV_DST | IpFlag.HAS_PROTO | IpFlag.HAS_IIF | IpFlag.HAS_OIF | IpFlag.FRAG;
    const matches = mEnd[k]! - mStart[k]!;
    rule[o + R.QUICK] = tKind[k]! | (f & slowIp ? Quick.SLOW_IP : 0) | (matches > 0 ? Quick.MATCHES : 0) |
      (matches === 1 && mOp.a[mStart[k]!] === Op.MARK ? Quick.LONE_MARK : 0) |
      (matches === 1 && mOp.a[mStart[k]!] === Op.SET ? Quick.LONE_SET : 0);
  }
  const compiled: CompiledTable = {
    name: table.name, id, source: table, chainNames: chains.map((c) => c.name), chainStart, chainEnd, chainPolicy,
    hookChain, policyPackets: new Float64Array(chains.length), policyBytes: new Float64Array(chains.length),
    nRules, ip, scan, ctGuard, rule, mStart, mEnd, tKind, tArg, ruleChain, ruleNum,
    packets: new Float64Array(nRules), bytes: new Float64Array(nRules),
    mOp: mOp.done(), mArg: mArg.done(), data: data.done(), nthCount: Int32Array.from(nthInit), nthInit: Int32Array.from(nthInit), recent, sets,
    nat: nat.done(), ifPatterns, ifMatch, stack: new Int32Array(chains.length + 1),
  };
  env.ifaces.onAdd((idx, name) => {
    compiled.ifMatch.forEach((arr, k) => {
      if (idx >= arr.length) {
        const b = new Uint8Array(idx * 2);
        b.set(arr);
        compiled.ifMatch[k] = arr = b;
      }
      arr[idx] = ifaceMatches(compiled.ifPatterns[k]!, name) ? 1 : 0;
    });
  });
  return compiled;
}

/**
 * The per-rule ctstate guard eval.ts tests before the match program: the state bits (CtState) and CT_GUARD_INV for
 * `! --ctstate`. Never 0 (0 means no guard): a state match names at least one state.
 */
function ctStateGuard(states: number, invert: boolean): number {
  return (states & CT_GUARD_STATES) | (invert ? CT_GUARD_INV : 0) | CT_GUARD_ON;
}

function compileIp(rule: Rule, ip: Int32Array, o: number, ifId: (p: string) => number): void {
  const x = rule.ip;
  let f = 0;
  if (x.src) {
    ip[o + IP.SRC] = x.src.addr;
    ip[o + IP.SRC_MASK] = x.src.mask;
    f |= IpFlag.HAS_SRC | (x.src.invert ? IpFlag.INV_SRC : 0);
  }
  if (x.dst) {
    ip[o + IP.DST] = x.dst.addr;
    ip[o + IP.DST_MASK] = x.dst.mask;
    f |= IpFlag.HAS_DST | (x.dst.invert ? IpFlag.INV_DST : 0);
  }
  if (x.iif) {
    ip[o + IP.IIF] = ifId(x.iif.name);
    f |= IpFlag.HAS_IIF | (x.iif.invert ? IpFlag.INV_IIF : 0);
  }
  if (x.oif) {
    ip[o + IP.OIF] = ifId(x.oif.name);
    f |= IpFlag.HAS_OIF | (x.oif.invert ? IpFlag.INV_OIF : 0);
  }
  if (x.proto) {
    ip[o + IP.PROTO] = x.proto.num;
    f |= IpFlag.HAS_PROTO | (x.proto.invert ? IpFlag.INV_PROTO : 0);
  }
  if (x.frag) f |= IpFlag.FRAG | (x.frag.invert ? IpFlag.INV_FRAG : 0);
  ip[o + IP.FLAGS] = f;
}

/** IpSet type → the number eval.ts switches on. */
const SET_KIND = { "hash:ip": 0, "bitmap:port": 1, "hash:ip,port": 2, "hash:ip,port,ip": 3, "hash:ip,port,net": 3 } as const;

/** Appends the match's operands to `data` and returns its opcode, or -1 for matches that need no test. */
function compileMatch(m: Match, data: IntBuf, ifId: (p: string) => number, env: CompileEnv, recent: RecentInfo[], nextNth: (init: number) => number, sets: IpSet[]): number {
  switch (m.kind) {
    case "tcp":
    case "udp":
    case "sctp": {
      const inv = (m.sportInvert ? 1 : 0) | (m.dportInvert ? 2 : 0) | (m.flagsInvert ? 4 : 0);
      data.push(m.sport[0], m.sport[1], m.dport[0], m.dport[1], inv, m.flagsMask, m.flagsComp);
      return Op.PORTS;
    }
    case "icmp":
      data.push(m.type, m.codeMin, m.codeMax, m.invert ? 1 : 0);
      return Op.ICMP;
    case "multiport":
      data.push(m.dir === "sports" ? 0 : m.dir === "dports" ? 1 : 2, m.invert ? 1 : 0, m.ports.length, ...m.ports.flat());
      return Op.MULTIPORT;
    case "mark":
      data.push(m.value, m.mask, m.invert ? 1 : 0);
      return Op.MARK;
    case "conntrack":
    case "state": {
      const f =
        (m.hasState ? 1 : 0) | (m.stateInvert ? 2 : 0) | (m.origSrc ? 4 : 0) | (m.origSrc?.invert ? 8 : 0) |
        (m.origDst ? 16 : 0) | (m.origDst?.invert ? 32 : 0) | (m.origSrcPort ? 64 : 0) | (m.origSrcPort?.invert ? 128 : 0) |
        (m.origDstPort ? 256 : 0) | (m.origDstPort?.invert ? 512 : 0);
      data.push(f, m.state, (m.origSrc?.addr ?? 0) & (m.origSrc?.mask ?? 0), m.origSrc?.mask ?? 0, (m.origDst?.addr ?? 0) & (m.origDst?.mask ?? 0), m.origDst?.mask ?? 0, m.origSrcPort?.port ?? 0, m.origDstPort?.port ?? 0);
      return Op.CONNTRACK;
    }
    case "addrtype":
      data.push(m.srcType, m.srcInvert ? 1 : 0, m.dstType, m.dstInvert ? 1 : 0, m.limitIfaceIn ? 1 : m.limitIfaceOut ? 2 : 0);
      return Op.ADDRTYPE;
    case "statistic":
      if (m.mode === "random") {
        data.push(m.probability, m.invert ? 1 : 0);
        return Op.STAT_RANDOM;
      }
      // The kernel stores every-1 and counts 0..every-1, starting so that the first packet counts 0.
      data.push(m.every - 1, m.packet, nextNth(m.every - 1), m.invert ? 1 : 0);
      return Op.STAT_NTH;
    case "recent": {
      const cmd = { set: RecentCmd.SET, rcheck: RecentCmd.RCHECK, update: RecentCmd.UPDATE, remove: RecentCmd.REMOVE }[m.command];
      recent.push({ list: env.recent.table(m.name), cmd, seconds: m.seconds, hitcount: m.hitcount, reap: m.reap, invert: m.invert, mask: m.mask, source: m.source });
      return Op.RECENT;
    }
    case "physdev": {
      const f =
        (m.physIn ? 1 : 0) | (m.physIn?.invert ? 2 : 0) | (m.physOut ? 4 : 0) | (m.physOut?.invert ? 8 : 0) |
        (m.isIn ? 16 : 0) | (m.isIn?.invert ? 32 : 0) | (m.isOut ? 64 : 0) | (m.isOut?.invert ? 128 : 0) |
        (m.isBridged ? 256 : 0) | (m.isBridged?.invert ? 512 : 0);
      data.push(f, m.physIn ? ifId(m.physIn.name) : 0, m.physOut ? ifId(m.physOut.name) : 0);
      return Op.PHYSDEV;
    }
    case "comment":
      return -1;
    case "nfacct":
      // Counts only: the rule's own counters are what nfacct would add; it always matches.
      return -1;
    case "set": {
      const set = env.ipsets.get(m.name);
      if (!set) throw new NetfilterError(`Set ${m.name} doesn't exist.`);
      let k = sets.indexOf(set);
      if (k < 0) k = sets.push(set) - 1;
      const kind = SET_KIND[set.type];
      const src = (i: number) => (m.dirs[i] === "src" ? 1 : 0);
      // bitmap:port's only dimension is a port; the others start with an address.
      const portDir = kind === 1 ? src(0) : src(1);
      // ip_set_test: fewer flags than the set has dimensions never match (kernel: opt->dim < type->dimension).
      const enough = m.dirs.length >= set.dimension ? 1 : 0;
      // One word of flags (eval.ts setMatch reads two words per test): kind (bits 0-1), source address, source port,
      // source third dimension, enough flags, inverted.
      data.push(k, kind | (src(0) << 2) | (portDir << 3) | (src(2) << 4) | (enough << 5) | ((m.invert ? 1 : 0) << 6));
      return Op.SET;
    }
  }
}

function compileTarget(t: Target | null, chainIndex: Map<string, number>, nat: IntBuf, data: IntBuf): [number, number] {
  if (!t) return [T.NONE, 0];
  switch (t.kind) {
    case "ACCEPT":
      return [T.ACCEPT, 0];
    case "DROP":
      return [T.DROP, 0];
    case "RETURN":
      return [T.RETURN, 0];
    case "jump":
      return [t.goto ? T.GOTO : T.JUMP, chainIndex.get(t.chain)!];
    case "REJECT":
      return [T.REJECT, REJECT_CODES.indexOf(t.with)];
    case "DNAT":
    case "SNAT":
    case "MASQUERADE":
    case "REDIRECT": {
      const kind = NatKind[t.kind];
      const flags =
        (t.random ? NatFlag.RANDOM : 0) | (t.randomFully ? NatFlag.RANDOM_FULLY : 0) | (t.persistent ? NatFlag.PERSISTENT : 0) |
        (t.hasIp ? NatFlag.HAS_IP : 0) | (t.hasPorts ? NatFlag.HAS_PORTS : 0);
      const at = nat.push(kind, t.minIp, t.maxIp, t.minPort, t.maxPort, flags);
      return [T.NAT, at / NAT_STRIDE];
    }
    case "MARK":
      return [T.MARK, data.push(t.value, t.mask)];
    case "CONNMARK":
      return [T.CONNMARK, data.push(t.mode === "set" ? 0 : t.mode === "save" ? 1 : 2, t.value, t.mask, t.nfmask, t.ctmask)];
    case "LOG":
      return [T.LOG, 0];
    case "TRACE":
      return [T.TRACE, 0];
    case "NOTRACK":
      return [T.NOTRACK, 0];
    case "CT":
      return [T.NOTRACK, 0];
  }
}

/** REJECT --reject-with codes by index (EvalResult.rejectWith). */
export const REJECT_CODES = [
  "icmp-net-unreachable", "icmp-host-unreachable", "icmp-proto-unreachable", "icmp-port-unreachable",
  "icmp-net-prohibited", "icmp-host-prohibited", "tcp-reset", "icmp-admin-prohibited",
];

export { CtState };
