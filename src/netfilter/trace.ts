// `tcbox trace`: follow the first packet of a new connection through an iptables ruleset, exploring every
// `statistic --mode random` branch (both outcomes, weighted by the kernel's stored probability stored/2³¹),
// and report each distinct outcome with its probability, verdict, NAT and the rules it hit.
import { formatIpv4, parseIpv4 } from "../packet/addr.js";
import { type CompiledRuleset, compileRuleset } from "./compile.js";
import { NatKind, T } from "./compiled.js";
import { AddrType } from "./ctstate.js";
import { NetfilterError } from "./errors.js";
import { type EvalEnv, NF_ACCEPT, NF_DROP, TraceKind, TraceRecorder } from "./eval.js";
import { NetfilterPath, PathResult, type RouteEnv } from "./hooks.js";
import { IfaceRegistry } from "./iface.js";
import { IPPROTO_ICMP, IPPROTO_TCP, parseProto } from "./names.js";
import { PacketState } from "./packet-state.js";
import { RecentTables } from "./recent.js";
import type { Ruleset } from "./rule.js";
import { formatRule } from "./save.js";
import { ArgCursor } from "./tokens.js";

export interface TraceSpec {
  proto: number;
  src: number;
  sport: number;
  dst: number;
  dport: number;
  /** Local addresses besides 127.0.0.0/8. */
  localIps: number[];
  iif?: string;
  oif?: string;
}

export interface TraceOutcome {
  probability: number;
  verdict: "ACCEPT" | "DROP" | "REJECT";
  dnat: string | null;
  snat: string | null;
  masquerade: boolean;
  mark: string;
  /** "TABLE CHAIN N" per rule hit (1-based), "TABLE CHAIN policy" when a built-in's policy decided. */
  rules: string[];
  /** xtables-monitor --trace style lines. */
  trace: string[];
}

/** `PROTO SRC[:SPORT] -> DST[:DPORT]`, e.g. `tcp 10.0.0.2:40000 -> 172.30.0.41:80`. */
export function parsePacketSpec(text: string, where = "--packet"): Omit<TraceSpec, "localIps"> {
  const m = /^\s*(\S+)\s+([0-9.]+)(?::([0-9]+))?\s*->\s*([0-9.]+)(?::([0-9]+))?\s*$/.exec(text);
  if (!m) throw new NetfilterError(`expected "PROTO SRC:SPORT -> DST:DPORT", got "${text}"`, where);
  const cur = new ArgCursor([], where);
  const proto = parseProto(m[1]!, cur);
  const port = (s: string | undefined) => {
    const v = s === undefined ? 0 : Number(s);
    if (v > 65535) throw new NetfilterError(`port ${s} out of range`, where);
    return v;
  };
  try {
    return { proto, src: parseIpv4(m[2]!), sport: port(m[3]), dst: parseIpv4(m[4]!), dport: port(m[5]) };
  } catch (e) {
    throw new NetfilterError((e as Error).message, where);
  }
}

/** Decides each statistic-random draw along one path of the branch tree (depth-first, "match" first). */
class BranchExplorer {
  path: boolean[] = [];
  probs: number[] = [];
  pos = 0;
  randomMatch(stored: number): boolean {
    const p = Math.min(stored / 0x80000000, 1);
    if (p <= 0) return false;
    if (p >= 1) return true;
    if (this.pos < this.path.length) {
      const d = this.path[this.pos]!;
      this.probs[this.pos++] = d ? p : 1 - p;
      return d;
    }
    this.path.push(true);
    this.probs.push(p);
    this.pos++;
    return true;
  }
  probability(): number {
    let q = 1;
    for (let i = 0; i < this.pos; i++) q *= this.probs[i]!;
    return q;
  }
  /** Move to the next unexplored path; false when all are done. */
  advance(): boolean {
    this.path.length = this.pos;
    this.probs.length = this.pos;
    while (this.path.length && this.path[this.path.length - 1] === false) {
      this.path.pop();
      this.probs.pop();
    }
    this.pos = 0;
    if (!this.path.length) return false;
    this.path[this.path.length - 1] = false;
    return true;
  }
}

function isLocalAddr(addr: number, locals: Set<number>): boolean {
  return addr >>> 24 === 127 || locals.has(addr);
}

const MAX_PATHS = 1 << 16;

export function traceRuleset(rs: Ruleset, spec: TraceSpec): TraceOutcome[] {
  const locals = new Set(spec.localIps);
  const ifaces = new IfaceRegistry();
  const recent = new RecentTables();
  const compiled = compileRuleset(rs, { ifaces, recent });
  const explorer = new BranchExplorer();
  const masqAddr = spec.localIps.find((a) => a >>> 24 !== 127) ?? 0x7f000001;
  const env: EvalEnv & RouteEnv = {
    randomMatch: (s) => explorer.randomMatch(s),
    addrType: (addr) =>
      isLocalAddr(addr, locals) ? AddrType.LOCAL : addr === 0xffffffff ? AddrType.BROADCAST : addr >>> 28 === 14 ? AddrType.MULTICAST : AddrType.UNICAST,
    now: () => 0,
    recent,
    isLocal: (a) => isLocalAddr(a, locals),
    masqueradeAddr: () => masqAddr,
  };
  const path = new NetfilterPath(compiled, env);
  const rec = new TraceRecorder(1 << 16);
  path.result.trace = rec;
  const p = new PacketState();
  const out = new PathResult();
  const fromLocal = isLocalAddr(spec.src, locals);
  const iif = fromLocal ? 0 : ifaces.index(spec.iif ?? "eth0");
  const oif = ifaces.index(spec.oif ?? (isLocalAddr(spec.dst, locals) ? "lo" : "eth0"));
  const merged = new Map<string, TraceOutcome>();
  let runs = 0;
  do {
    if (++runs > MAX_PATHS) throw new NetfilterError(`more than ${MAX_PATHS} probabilistic paths`, "trace");
    resetState(compiled);
    rec.clear();
    p.reset();
    p.proto = spec.proto;
    p.src = spec.src;
    p.dst = spec.dst;
    p.sport = spec.sport;
    p.dport = spec.dport;
    p.tcpFlags = spec.proto === IPPROTO_TCP ? 0x02 : 0;
    p.icmpType = spec.proto === IPPROTO_ICMP ? 8 : 0;
    p.len = spec.proto === IPPROTO_TCP ? 60 : 28;
    p.iif = iif;
    p.oif = oif;
    if (fromLocal) path.output(p, out);
    else path.receive(p, out);
    const o = describe(compiled, rec, p, out, explorer.probability());
    const key = JSON.stringify([o.verdict, o.dnat, o.snat, o.masquerade, o.mark, o.rules]);
    const prev = merged.get(key);
    if (prev) prev.probability += o.probability;
    else merged.set(key, o);
  } while (explorer.advance());
  return [...merged.values()];
}

function resetState(c: CompiledRuleset): void {
  for (const t of c.tables) {
    t.nthCount.set(t.nthInit);
    for (const r of t.recent) r.list.clear();
  }
}

function describe(c: CompiledRuleset, rec: TraceRecorder, p: PacketState, out: PathResult, probability: number): TraceOutcome {
  const rules: string[] = [];
  const trace: string[] = [];
  for (let i = 0; i < rec.n; i++) {
    const t = c.tables[rec.table[i]!]!;
    const chain = t.chainNames[rec.chain[i]!]!;
    const num = rec.rule[i]!;
    const kind = rec.kind[i]!;
    if (kind === TraceKind.RULE) {
      rules.push(`${t.name} ${chain} ${num}`);
      const rule = t.source.chains.get(chain)!.rules[num - 1]!;
      const idx = t.chainStart[rec.chain[i]!]! + num - 1;
      trace.push(`TRACE: ${t.name}:${chain}:rule:0x${num.toString(16)}:${verdictWord(t.tKind[idx]!, rule)}  -4 -t ${t.name} ${formatRule(chain, rule)}`);
    } else if (kind === TraceKind.POLICY) {
      rules.push(`${t.name} ${chain} policy`);
      trace.push(`TRACE: ${t.name}:${chain}:policy:${t.chainPolicy[rec.chain[i]!] === 0 ? "DROP" : "ACCEPT"}`);
    } else {
      trace.push(`TRACE: ${t.name}:${chain}:return:`);
    }
  }
  const port = (ip: number, port: number) => formatIpv4(ip) + (port ? `:${port}` : "");
  return {
    probability,
    verdict: out.verdict === NF_ACCEPT ? "ACCEPT" : out.verdict === NF_DROP ? "DROP" : "REJECT",
    dnat: out.dnat ? port(out.dnatIp, out.dnatPort) : null,
    snat: out.snatKind === NatKind.SNAT ? port(out.snatIp, out.snatPort) : null,
    masquerade: out.snatKind === NatKind.MASQUERADE,
    mark: "0x" + p.mark.toString(16),
    rules,
    trace,
  };
}

function verdictWord(kind: number, rule: { target: { kind: string; chain?: string } | null }): string {
  const t = rule.target;
  switch (kind) {
    case T.JUMP:
      return `JUMP:${t!.chain}`;
    case T.GOTO:
      return `GOTO:${t!.chain}`;
    case T.ACCEPT:
    case T.DROP:
    case T.RETURN:
    case T.REJECT:
    case T.NAT:
      return t!.kind;
    default:
      return "CONTINUE";
  }
}
