// One table's traversal for one packet, as ipt_do_table does it: rules in order, a rule matches when its ip
// header fields and every match agree, its counters count, then its target decides. A jump pushes a return point,
// a goto does not; RETURN (or falling off a user chain) pops; falling off or RETURN in a built-in chain applies
// its policy. Terminal targets end the table. Allocation-free: the packet state and result are reused structs.
import { CtState } from "./ctstate.js";
import { CT_GUARD_INV, type CompiledTable, IP, IpFlag, NAT_STRIDE, NatKind, Op, Quick, R, T } from "./compiled.js";
import type { PacketState } from "./packet-state.js";
import type { RecentTables } from "./recent.js";

export const NF_DROP = 0;
export const NF_ACCEPT = 1;
/** Dropped with an ICMP error or TCP RST sent back (REJECT); rejectWith says which. */
export const NF_REJECT = 2;

/** What the caller provides: randomness, time, address types, recent lists. */
export interface EvalEnv {
  /** statistic --mode random: does this draw fall under `stored` (= round(p·2³¹))? Kernel: (get_random_u32() & 0x7fffffff) < stored. */
  randomMatch(stored: number): boolean;
  /** RTN_* type of `addr` as a bit (AddrType.*); `ifindex` limits the lookup (addrtype --limit-iface-*), 0 for any. */
  addrType(addr: number, ifindex: number): number;
  /** Seconds, for recent. */
  now(): number;
  recent: RecentTables;
}

export const TraceKind = { RULE: 0, RETURN: 1, POLICY: 2 } as const;

/** Records rules hit (the TRACE target's view): table id, chain index, rule number, kind. Fixed capacity, reused. */
export class TraceRecorder {
  table: Int32Array;
  chain: Int32Array;
  rule: Int32Array;
  kind: Int32Array;
  n = 0;
  constructor(readonly capacity = 4096) {
    this.table = new Int32Array(capacity);
    this.chain = new Int32Array(capacity);
    this.rule = new Int32Array(capacity);
    this.kind = new Int32Array(capacity);
  }
  record(table: number, chain: number, rule: number, kind: number): void {
    if (this.n >= this.capacity) return;
    const i = this.n++;
    this.table[i] = table;
    this.chain[i] = chain;
    this.rule[i] = rule;
    this.kind[i] = kind;
  }
  clear(): void {
    this.n = 0;
  }
}

export class EvalResult {
  verdict = NF_ACCEPT;
  rejectWith = -1;
  /** NAT request from a DNAT/SNAT/MASQUERADE/REDIRECT target (NatKind), with its range. */
  natKind: number = NatKind.NONE;
  natMinIp = 0;
  natMaxIp = 0;
  natMinPort = 0;
  natMaxPort = 0;
  natFlags = 0;
  /** Rules whose matches were evaluated, across calls until reset. */
  rulesEvaluated = 0;
  trace: TraceRecorder | null = null;
  resetVerdict(): void {
    this.verdict = NF_ACCEPT;
    this.rejectWith = -1;
    this.natKind = 0; // NatKind.NONE
  }
}

// The walk below writes verdicts, record offsets (IP, R), flags (IpFlag, Quick), target kinds (T) and match opcodes
// (Op) as number literals with their names in comments: V8 reads a property of a module-level object on every use
// (measured: the FORWARD walk of an established packet 85 -> 77 ns), a literal costs nothing and lets a switch become
// a jump table. Checked once at load against compiled.ts, so the two cannot drift apart.
function sameValues(o: Record<string, number>, v: number[]): boolean {
  return Object.values(o).length === v.length && Object.values(o).every((x, k) => x === v[k]);
}
if (!sameValues(T, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]) || !sameValues(Op, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]) ||
    !sameValues(R, [8, 9, 10, 11, 12, 13, 14, 15]) || !sameValues(Quick, [15, 16, 32, 64, 128]) || !sameValues(IP, [0, 1, 2, 3, 4, 5, 6, 7]) ||
    !sameValues(IpFlag, [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048]) || CT_GUARD_INV !== 0x40000000 || NatKind.NONE !== 0 ||
    NF_DROP !== 0 || NF_ACCEPT !== 1 || NF_REJECT !== 2) {
  throw new Error("netfilter/eval.ts: the walk's literal offsets, flags and opcodes are out of step with compiled.ts");
}


/**
 * Walk `t` from built-in chain `chain` for packet `p`. Sets r.verdict (and r.nat* for NAT targets); returns it.
 * Non-terminal targets (MARK, CONNMARK, LOG, TRACE, NOTRACK) change `p` and continue.
 */
export function evalChain(t: CompiledTable, chain: number, p: PacketState, env: EvalEnv, r: EvalResult): number {
  const ip = t.rule;
  let sp = 0;
  let cur = chain;
  let i = t.chainStart[chain]!;
  let end = t.chainEnd[chain]!;
  const trace = r.trace;
  // Addresses do not change during one table's walk (NAT targets are terminal), so read them once.
  const ps = p.src | 0;
  const pd = p.dst | 0;
  // Nor do the length and, but for NOTRACK (below), the ctstate.
  const len = p.len;
  let cs = p.ctState;
  let n = 0;
  const scan = t.scan;
  const STACK = t.stack;
  for (;;) {
    // Tight scan: skip rules whose addresses cannot match (most rules, for most packets), and candidates whose ctstate
    // test fails (pure, so its place among the rule's tests does not matter: for established packets most of
    // kube-proxy's rules end here, `--ctstate NEW`, without leaving the scan). Each skipped rule still counts as
    // evaluated, as the kernel reads it.
    const i0 = i;
    while (i < end) {
      const a = i << 2;
      if ((((ps & scan[a + 1]!) ^ scan[a]!) | ((pd & scan[a + 3]!) ^ scan[a + 2]!)) === 0) {
        const g = ip[(i << 4) + 8 /* R.GUARD */]!;
        if (g === 0 || ((cs & g) !== 0) !== ((g & 0x40000000 /* CT_GUARD_INV */) !== 0)) break;
      }
      i++;
    }
    n += i - i0;
    if (i >= end) {
      // Fell off the chain: a user chain returns (with nothing pushed, e.g. after a goto from the built-in chain,
      // to the hook's underflow), a built-in applies its policy.
      if (cur !== chain && trace) trace.record(t.id, cur, end - t.chainStart[cur]! + 1, TraceKind.RETURN);
      if (sp === 0) {
        r.rulesEvaluated += n;
        return policy(t, chain, p, r);
      }
      i = STACK[--sp]!;
      cur = ip[((i - 1) << 4) + 13 /* R.CHAIN */]!;
      end = t.chainEnd[cur]!;
      continue;
    }
    n++;
    const o = i << 4; // RULE_STRIDE
    // What else the rule tests, and its target, in one word (R.QUICK): most candidates test nothing more.
    const q = ip[o + 15 /* R.QUICK */]!;
    if ((q & 16 /* Quick.SLOW_IP */) !== 0) {
      const f = ip[o + 5 /* IP.FLAGS */]!;
      // Without inversions the scan above tested the rule's addresses already (its scan record equals them). With
      // one, the scan record is zero and the test is here. Absent -s/-d compile to mask 0 / address 0, which always
      // compare equal: no branch on presence.
      if ((f & 3 /* INV_SRC | INV_DST */) !== 0) {
        const sMiss = (ps & ip[o + 1]!) ^ ip[o]!;
        const dMiss = (pd & ip[o + 3]!) ^ ip[o + 2]!;
        if ((sMiss === 0) === ((f & 1 /* INV_SRC */) !== 0) || (dMiss === 0) === ((f & 2 /* INV_DST */) !== 0)) {
          i++;
          continue;
        }
      }
      if (f & 32 /* HAS_PROTO */ && ((p.proto === ip[o + 4 /* IP.PROTO */]!) === ((f & 16 /* INV_PROTO */) !== 0))) { i++; continue; }
      if (f & 256 /* HAS_IIF */ && ((t.ifMatch[ip[o + 6 /* IP.IIF */]!]![p.iif] === 1) === ((f & 4 /* INV_IIF */) !== 0))) { i++; continue; }
      if (f & 512 /* HAS_OIF */ && ((t.ifMatch[ip[o + 7 /* IP.OIF */]!]![p.oif] === 1) === ((f & 8 /* INV_OIF */) !== 0))) { i++; continue; }
      if (f & 64 /* FRAG */ && ((p.frag === 1) === ((f & 128 /* INV_FRAG */) !== 0))) { i++; continue; }
    }
    if ((q & 32 /* Quick.MATCHES */) !== 0) {
      const ms = ip[o + 9 /* R.M_START */]!;
      // A lone mark match (kube-proxy's KUBE-FORWARD and KUBE-POSTROUTING rules) or set match (its IPVS-mode rules)
      // is tested here; the rest in matchAll.
      if ((q & 64 /* Quick.LONE_MARK */) !== 0) {
        const d = t.data;
        const a = t.mArg[ms]!;
        if (((p.mark & d[a + 1]!) === d[a]!) === (d[a + 2] === 1)) { i++; continue; }
      } else if ((q & 128 /* Quick.LONE_SET */) !== 0) {
        const d = t.data;
        const a = t.mArg[ms]!;
        if (setMatch(t, d, a, p) === ((d[a + 1]! & 64 /* inverted */) !== 0)) { i++; continue; }
      } else if (!matchAll(t, ms, ip[o + 10 /* R.M_END */]!, p, env)) { i++; continue; }
    }
    t.packets[i]!++;
    t.bytes[i]! += len;
    if (trace !== null) trace.record(t.id, cur, ip[o + 14 /* R.NUM */]!, TraceKind.RULE);
    switch (q & 15 /* Quick.KIND_MASK: R.T_KIND */) {
      case 0 /* T.NONE */:
      case 10 /* T.LOG */:
      case 11 /* T.TRACE */:
        i++;
        continue;
      case 1 /* T.ACCEPT */:
        r.rulesEvaluated += n;
        return (r.verdict = 1 /* NF_ACCEPT */);
      case 2 /* T.DROP */:
        r.rulesEvaluated += n;
        return (r.verdict = 0 /* NF_DROP */);
      case 6 /* T.REJECT */:
        r.rulesEvaluated += n;
        r.rejectWith = ip[o + 12 /* R.T_ARG */]!;
        return (r.verdict = 2 /* NF_REJECT */);
      case 3 /* T.RETURN */:
        if (sp === 0) {
          r.rulesEvaluated += n;
          return policy(t, chain, p, r);
        }
        i = STACK[--sp]!;
        cur = ip[((i - 1) << 4) + 13 /* R.CHAIN */]!;
        end = t.chainEnd[cur]!;
        continue;
      case 4 /* T.JUMP */:
        STACK[sp++] = i + 1;
        cur = ip[o + 12 /* R.T_ARG */]!;
        i = t.chainStart[cur]!;
        end = t.chainEnd[cur]!;
        continue;
      case 5 /* T.GOTO */:
        cur = ip[o + 12 /* R.T_ARG */]!;
        i = t.chainStart[cur]!;
        end = t.chainEnd[cur]!;
        continue;
      case 7 /* T.NAT */: {
        const q = ip[o + 12 /* R.T_ARG */]! * NAT_STRIDE;
        const nat = t.nat;
        r.natKind = nat[q]!;
        r.natMinIp = nat[q + 1]! >>> 0;
        r.natMaxIp = nat[q + 2]! >>> 0;
        r.natMinPort = nat[q + 3]!;
        r.natMaxPort = nat[q + 4]!;
        r.natFlags = nat[q + 5]!;
        r.rulesEvaluated += n;
        return (r.verdict = 1 /* NF_ACCEPT */);
      }
      case 8 /* T.MARK */: {
        const d = ip[o + 12 /* R.T_ARG */]!;
        p.mark = ((p.mark & ~t.data[d + 1]!) ^ t.data[d]!) >>> 0;
        i++;
        continue;
      }
      case 9 /* T.CONNMARK */:
        connmark(t.data, ip[o + 12 /* R.T_ARG */]!, p);
        i++;
        continue;
      case 12 /* T.NOTRACK */:
        cs = p.ctState = CtState.UNTRACKED;
        i++;
        continue;
    }
    i++;
  }
}

/** The hook's built-in chain `chain` ended in its policy (the kernel's underflow rule, counted like a rule). */
function policy(t: CompiledTable, chain: number, p: PacketState, r: EvalResult): number {
  t.policyPackets[chain]!++;
  t.policyBytes[chain]! += p.len;
  if (r.trace !== null) r.trace.record(t.id, chain, t.chainEnd[chain]! - t.chainStart[chain]! + 1, TraceKind.POLICY);
  return (r.verdict = t.chainPolicy[chain] === 0 ? 0 /* NF_DROP */ : 1 /* NF_ACCEPT */);
}

function connmark(d: Int32Array, at: number, p: PacketState): void {
  const mode = d[at]!;
  if (mode === 0) p.ctMark = ((p.ctMark & ~d[at + 2]!) ^ d[at + 1]!) >>> 0;
  else if (mode === 1) p.ctMark = ((p.ctMark & ~d[at + 4]!) ^ (p.mark & d[at + 3]!)) >>> 0;
  else p.mark = ((p.mark & ~d[at + 3]!) ^ (p.ctMark & d[at + 4]!)) >>> 0;
}

function inRange(v: number, lo: number, hi: number): boolean {
  return v >= lo && v <= hi;
}

function matchAll(t: CompiledTable, ms: number, me: number, p: PacketState, env: EvalEnv): boolean {
  const d = t.data;
  for (let k = ms; k < me; k++) {
    const a = t.mArg[k]!;
    switch (t.mOp[k]) {
      case 1 /* Op.PORTS */: {
        // tcp_mt/udp_mt: never a non-first fragment.
        if (p.frag) return false;
        const inv = d[a + 4]!;
        if (inRange(p.sport, d[a]!, d[a + 1]!) === ((inv & 1) !== 0)) return false;
        if (inRange(p.dport, d[a + 2]!, d[a + 3]!) === ((inv & 2) !== 0)) return false;
        if ((d[a + 5]! !== 0 || inv & 4) && ((p.tcpFlags & d[a + 5]!) === d[a + 6]!) === ((inv & 4) !== 0)) return false;
        break;
      }
      case 2 /* Op.ICMP */: {
        if (p.frag) return false;
        const type = d[a]!;
        const hit = type === 0xff || (p.icmpType === type && inRange(p.icmpCode, d[a + 1]!, d[a + 2]!));
        if (hit === (d[a + 3] === 1)) return false;
        break;
      }
      case 3 /* Op.MULTIPORT */: {
        if (p.frag) return false;
        const dir = d[a]!;
        const n = d[a + 2]!;
        let hit = false;
        for (let j = 0; j < n && !hit; j++) {
          const lo = d[a + 3 + 2 * j]!;
          const hi = d[a + 4 + 2 * j]!;
          hit = (dir !== 1 && inRange(p.sport, lo, hi)) || (dir !== 0 && inRange(p.dport, lo, hi));
        }
        if (hit === (d[a + 1] === 1)) return false;
        break;
      }
      case 4 /* Op.MARK */:
        if (((p.mark & d[a + 1]!) === d[a]!) === (d[a + 2] === 1)) return false;
        break;
      case 5 /* Op.CONNTRACK */:
        if (!conntrackMatch(d, a, p)) return false;
        break;
      case 12 /* Op.SET */:
        if (setMatch(t, d, a, p) === ((d[a + 1]! & 64 /* inverted */) !== 0)) return false;
        break;
      case 6 /* Op.ADDRTYPE */: {
        const lim = d[a + 4]!;
        const ifx = lim === 1 ? p.iif : lim === 2 ? p.oif : 0;
        if (d[a]! && ((env.addrType(p.src, ifx) & d[a]!) !== 0) === (d[a + 1] === 1)) return false;
        if (d[a + 2]! && ((env.addrType(p.dst, ifx) & d[a + 2]!) !== 0) === (d[a + 3] === 1)) return false;
        break;
      }
      case 7 /* Op.STAT_RANDOM */:
        if (env.randomMatch(d[a]! >>> 0) === (d[a + 1] === 1)) return false;
        break;
      case 8 /* Op.STAT_NTH */: {
        // xt_statistic: count cycles 0..every-1 (stored every-1); the packet whose new count equals --packet matches.
        const slot = d[a + 2]!;
        const oval = t.nthCount[slot]!;
        const nval = oval === d[a]! ? 0 : oval + 1;
        t.nthCount[slot] = nval;
        if ((nval === d[a + 1]!) === (d[a + 3] === 1)) return false;
        break;
      }
      case 9 /* Op.RECENT */: {
        const ri = t.recent[a]!;
        const addr = ((ri.source ? p.src : p.dst) & ri.mask) >>> 0;
        const list = ri.list as Parameters<RecentTables["check"]>[0];
        if (!env.recent.check(list, ri.cmd, addr, env.now(), ri.seconds, ri.hitcount, ri.reap, ri.invert)) return false;
        break;
      }
      case 10 /* Op.PHYSDEV */:
        if (!physdevMatch(t, d, a, p)) return false;
        break;
    }
  }
  return true;
}

function conntrackMatch(d: Int32Array, a: number, p: PacketState): boolean {
  const f = d[a]!;
  if (f & 1 && ((p.ctState & d[a + 1]!) !== 0) === ((f & 2) !== 0)) return false;
  // xt_conntrack: without a conntrack entry only the state part can match.
  const noCt = (p.ctState & (CtState.INVALID | CtState.UNTRACKED)) !== 0;
  if (noCt) return (f & 1) !== 0;
  if (f & 4 && ((p.ctOrigSrc & d[a + 3]!) === d[a + 2]!) === ((f & 8) !== 0)) return false;
  if (f & 16 && ((p.ctOrigDst & d[a + 5]!) === d[a + 4]!) === ((f & 32) !== 0)) return false;
  if (f & 64 && (p.ctOrigSport === d[a + 6]!) === ((f & 128) !== 0)) return false;
  if (f & 256 && (p.ctOrigDport === d[a + 7]!) === ((f & 512) !== 0)) return false;
  return true;
}

/** xt_physdev physdev_mt: a packet that did not cross a bridge only matches inverted or absent conditions. */
function physdevMatch(t: CompiledTable, d: Int32Array, a: number, p: PacketState): boolean {
  const f = d[a]!;
  if (p.physIn === 0 && p.physOut === 0) {
    if (f & 256 && !(f & 512)) return false;
    if (f & 16 && !(f & 32)) return false;
    if (f & 64 && !(f & 128)) return false;
    if (f & 1 && !(f & 2)) return false;
    if (f & 4 && !(f & 8)) return false;
    return true;
  }
  if (f & 256 && (p.physOut !== 0) === ((f & 512) !== 0)) return false;
  if (f & 16 && (p.physIn !== 0) === ((f & 32) !== 0)) return false;
  if (f & 64 && (p.physOut !== 0) === ((f & 128) !== 0)) return false;
  if (f & 1 && (p.physIn !== 0 && t.ifMatch[d[a + 1]!]![p.physIn] === 1) === ((f & 2) !== 0)) return false;
  if (f & 4 && (p.physOut !== 0 && t.ifMatch[d[a + 2]!]![p.physOut] === 1) === ((f & 8) !== 0)) return false;
  return true;
}

/**
 * xt_set set_match_v4 → ip_set_test with the rule's direction flags (operands from compile.ts: the set's index, then
 * one word: kind in bits 0-1, source address 4, source port 8, source third dimension 16, enough flags 32).
 */
function setMatch(t: CompiledTable, d: Int32Array, a: number, p: PacketState): boolean {
  const f = d[a + 1]!;
  if ((f & 32) === 0) return false;
  const set = t.sets[d[a]!]!;
  const addr = (f & 4) !== 0 ? p.src : p.dst;
  if ((f & 3) === 0) return set.test(addr, p.proto, 0, 0);
  // A port dimension needs the L4 header: a non-first fragment has none (ip_set_get_ip4_port fails).
  if (p.frag) return false;
  return set.test(addr, p.proto, (f & 8) !== 0 ? p.sport : p.dport, (f & 16) !== 0 ? p.src : p.dst);
}
