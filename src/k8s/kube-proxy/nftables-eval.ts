// Packet evaluator for kube-proxy's nftables mode: the `ip kube-proxy` table generateNftables builds (the same
// NftTable nftTransaction feeds to `nft -f`), compiled once into numbers and walked per packet as nf_tables does.
//
// Compile (string work only here): every rule text is parsed into ops (matches, statements, one verdict); named
// sets and verdict maps become open-addressing hash tables on typed arrays keyed by numbers
// (`ip daddr . meta l4proto . th dport` → key (daddr, proto << 16 | dport); `meta l4proto . th dport` → (0, …)),
// `numgen random mod N vmap { … }` an Int32Array of N verdicts. A rule form kube-proxy does not write throws.
//
// Per packet (NftPath.receive / output): the base chains of each hook in priority order (conntrack at -200 first;
// a nat chain only while the connection's manip is not set up, as nf_nat_inet_fn), jump/goto/return with a
// 16-deep stack (NFT_JUMP_STACK_SIZE), DNAT/MASQUERADE handed to the conntrack hook in a PathResult as the
// iptables path does. No allocation, no strings, O(1) per Service (one map lookup, one numgen).
//
// Counters (NftPath.rules, NftPath.lookups): `rules` counts every rule whose evaluation starts (nft_do_chain's
// loop over rules: a rule whose first match fails counts 1, like iptables' rulesEvaluated); `lookups` counts
// set / map lookups (named sets and maps, anonymous sets such as `{ 172.30.0.0/16 }`, numgen's anonymous vmap,
// and the dynamic-set `update`).
import { NetfilterError } from "../../netfilter/errors.js";
import { HookPath, type ConntrackHook, type PathResult, type RouteEnv } from "../../netfilter/hooks.js";
import { NatFlag, NatKind } from "../../netfilter/compiled.js";
import { CtState } from "../../netfilter/ctstate.js";
import type { PacketState } from "../../netfilter/packet-state.js";
import { Hook } from "../../netfilter/tables.js";
import { parseCidr, parseIpv4 } from "../../packet/addr.js";
import type { NftTable } from "./nftables.js";

const PROTO: Record<string, number> = { tcp: 6, udp: 17, sctp: 132 };

/** Open addressing on typed arrays, key (a, b) of two u32, value i32. Grows at 1/2 load (compile time / update). */
export class U32PairHash {
  private ka = new Uint32Array(16);
  private kb = new Uint32Array(16);
  private val = new Float64Array(16);
  private used = new Uint8Array(16);
  size = 0;
  private static hash(a: number, b: number): number {
    let h = Math.imul(a ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(b + 0x27d4eb2f, 0xc2b2ae35);
    h ^= h >>> 15;
    return Math.imul(h, 0x2c1b3c6d) >>> 0;
  }
  /** Slot of (a, b), or -1. */
  find(a: number, b: number): number {
    const m = this.used.length - 1;
    let i = U32PairHash.hash(a, b) & m;
    while (this.used[i] === 1) {
      if (this.ka[i] === a && this.kb[i] === b) return i;
      i = (i + 1) & m;
    }
    return -1;
  }
  /** Value of (a, b), or `missing`. */
  get(a: number, b: number, missing: number): number {
    const i = this.find(a, b);
    return i < 0 ? missing : this.val[i]!;
  }
  set(a: number, b: number, v: number): void {
    if ((this.size + 1) * 2 > this.used.length) this.grow();
    const m = this.used.length - 1;
    let i = U32PairHash.hash(a, b) & m;
    while (this.used[i] === 1) {
      if (this.ka[i] === a && this.kb[i] === b) {
        this.val[i] = v;
        return;
      }
      i = (i + 1) & m;
    }
    this.used[i] = 1;
    this.ka[i] = a >>> 0;
    this.kb[i] = b >>> 0;
    this.val[i] = v;
    this.size++;
  }
  private grow(): void {
    const { ka, kb, val, used } = this;
    const n = used.length * 2;
    this.ka = new Uint32Array(n);
    this.kb = new Uint32Array(n);
    this.val = new Float64Array(n);
    this.used = new Uint8Array(n);
    this.size = 0;
    for (let i = 0; i < used.length; i++) if (used[i] === 1) this.set(ka[i]!, kb[i]!, val[i]!);
  }
  clear(): void {
    this.used.fill(0);
    this.size = 0;
  }
}

// Verdict encoding (rules and vmaps): chain * 8 + kind.
const V_GOTO = 0;
const V_JUMP = 1;
const V_DROP = 2;
const V_ACCEPT = 3;
const V_RETURN = 4;
const V_CONTINUE = 6;
const NO_VERDICT = -1;

// Ops: OP_W words each: code, a, b, c.
const OP_W = 4;
const M_CT_NEW = 1;
const M_SADDR_NET = 2; // a = net, b = mask, c = negate
const M_DADDR_NET = 3;
const M_SADDR_SET = 4; // a = set index, c = negate
const M_DADDR_SET = 5;
const M_SADDR_ANON = 6; // a = anonymous interval list, c = negate
const M_DADDR_ANON = 7;
const M_MARK_AND_EQ = 8; // a = mask, b = value
const M_FIB_SADDR_LOCAL = 9;
const M_L4PROTO = 10; // a = proto
const S_MARK_OR = 11;
const S_MARK_XOR = 12;
const S_MASQ = 13; // a = NatFlag bits
const S_DNAT = 14; // a = ip, b = port
const S_UPDATE_SADDR = 15; // a = set index
const T_VERDICT = 16; // a = encoded verdict
const T_VMAP3 = 17; // a = map index: ip daddr . meta l4proto . th dport
const T_VMAP2 = 18; // a = map index: meta l4proto . th dport
const T_NUMGEN = 19; // a = mod, b = numgen vmap index
const S_REJECT = 20;

/** The environment: routing (isLocal is also `fib saddr type local`), masquerade address, numgen, clock. */
export interface NftEnv extends RouteEnv {
  /** numgen random mod `mod`: 0..mod-1. */
  numgen(mod: number): number;
  /** Seconds, for dynamic-set timeouts. */
  now(): number;
}

export interface CompiledNft {
  chainNames: string[];
  chainStart: Int32Array;
  chainEnd: Int32Array;
  ruleStart: Int32Array;
  ruleEnd: Int32Array;
  ops: Uint32Array;
  /** Named sets (value: expiry second for dynamic sets, else 1) and maps (value: encoded verdict). */
  sets: U32PairHash[];
  setNames: string[];
  setTimeout: Float64Array;
  anon: Uint32Array[];
  numgenMaps: Int32Array[];
  /** Base chains per hook, priority order; 1 where that chain is a nat chain. */
  hookChains: Int32Array[];
  hookNat: Uint8Array[];
  nRules: number;
}

const HOOKS: Record<string, number> = { prerouting: Hook.PREROUTING, input: Hook.INPUT, forward: Hook.FORWARD, output: Hook.OUTPUT, postrouting: Hook.POSTROUTING };

/** Compile the table once (throws a located NetfilterError on a rule form kube-proxy does not write). */
export function compileNft(t: NftTable): CompiledNft {
  const chainIdx = new Map(t.chains.map((c, i) => [c.name, i]));
  const setIdx = new Map(t.sets.map((s, i) => [s.name, i]));
  const sets = t.sets.map(() => new U32PairHash());
  const setTimeout = Float64Array.from(t.sets, (s) => s.timeoutSeconds ?? 0);
  const anon: Uint32Array[] = [];
  const numgenMaps: Int32Array[] = [];
  const ops: number[] = [];
  const ruleStart: number[] = [];
  const ruleEnd: number[] = [];
  const chainStart = new Int32Array(t.chains.length);
  const chainEnd = new Int32Array(t.chains.length);
  let where = "";
  const fail = (msg: string): never => {
    throw new NetfilterError(msg, where);
  };
  const chainOf = (name: string) => chainIdx.get(name) ?? fail(`unknown chain "${name}"`);
  const setOf = (name: string) => setIdx.get(name) ?? fail(`unknown set "${name}"`);
  const verdict = (text: string): number => {
    const w = text.trim().split(/\s+/);
    if (w[0] === "goto" && w.length === 2) return chainOf(w[1]!) * 8 + V_GOTO;
    if (w[0] === "jump" && w.length === 2) return chainOf(w[1]!) * 8 + V_JUMP;
    const k = { drop: V_DROP, accept: V_ACCEPT, return: V_RETURN, continue: V_CONTINUE }[w.join(" ")];
    return k ?? fail(`unsupported verdict "${text}"`);
  };
  const ipKey = (s: string): number => parseIpv4(s);
  const anonList = (body: string): number => {
    const cidrs = body.split(",").map((x) => parseCidr(x.trim()));
    anon.push(Uint32Array.from(cidrs.flatMap((c) => [c.addr, c.mask])));
    return anon.length - 1;
  };
  const op = (code: number, a = 0, b = 0, c = 0) => ops.push(code, a >>> 0, b >>> 0, c);

  // Set and map elements.
  for (const [i, s] of t.sets.entries()) {
    where = `set ${s.name}`;
    const parts = s.type.split(":")[0]!.split(".").map((x) => x.trim());
    for (const e of s.elements) {
      const k = e.key.split(" . ").map((x) => x.trim());
      if (k.length !== parts.length) fail(`element "${e.key}" does not match type ${s.type}`);
      let a = 0;
      let b = 0;
      for (const [j, p] of parts.entries()) {
        const v = k[j]!;
        if (p === "ipv4_addr") a = ipKey(v);
        else if (p === "inet_proto") b |= (PROTO[v] ?? fail(`unknown protocol "${v}"`)) << 16;
        else if (p === "inet_service") b |= Number(v);
        else fail(`unsupported key type ${p}`);
      }
      const val = !s.map ? 1 : e.value !== undefined ? verdict(e.value) : fail(`map element "${e.key}" without a verdict`);
      sets[i]!.set(a, b >>> 0, val);
    }
  }

  for (const [ci, c] of t.chains.entries()) {
    chainStart[ci] = ruleStart.length;
    for (const [ri, r] of c.rules.entries()) {
      where = `chain ${c.name} rule ${ri + 1}`;
      ruleStart.push(ops.length / OP_W);
      compileRule(r.rule);
      ruleEnd.push(ops.length / OP_W);
    }
    chainEnd[ci] = ruleStart.length;
  }

  function compileRule(text: string): void {
    let s = text.trim();
    const take = (re: RegExp): RegExpExecArray | null => {
      const m = re.exec(s);
      if (m) s = s.slice(m[0].length).trim();
      return m;
    };
    let m: RegExpExecArray | null;
    while (s !== "") {
      if (take(/^ct state new\b/)) op(M_CT_NEW);
      else if ((m = take(/^ip (saddr|daddr) (!= )?@(\S+)/))) op(m[1] === "saddr" ? M_SADDR_SET : M_DADDR_SET, setOf(m[3]!), 0, m[2] ? 1 : 0);
      else if ((m = take(/^ip (saddr|daddr) (!= )?\{([^}]*)\}/))) op(m[1] === "saddr" ? M_SADDR_ANON : M_DADDR_ANON, anonList(m[3]!), 0, m[2] ? 1 : 0);
      else if ((m = take(/^ip daddr \. meta l4proto \. th dport vmap @(\S+)/))) op(T_VMAP3, setOf(m[1]!));
      else if ((m = take(/^meta l4proto \. th dport vmap @(\S+)/))) op(T_VMAP2, setOf(m[1]!));
      else if ((m = take(/^ip (saddr|daddr) (!= )?([0-9./]+)(?=\s|$)/))) {
        const c = parseCidr(m[3]!);
        op(m[1] === "saddr" ? M_SADDR_NET : M_DADDR_NET, c.addr, c.mask, m[2] ? 1 : 0);
      } else if ((m = take(/^mark and (0x[0-9a-f]+|\d+) == (0x[0-9a-f]+|\d+)/))) op(M_MARK_AND_EQ, Number(m[1]), Number(m[2]));
      else if ((m = take(/^mark set mark (or|xor) (0x[0-9a-f]+|\d+)/))) op(m[1] === "or" ? S_MARK_OR : S_MARK_XOR, Number(m[2]));
      else if (take(/^fib saddr type local\b/)) op(M_FIB_SADDR_LOCAL);
      else if ((m = take(/^meta l4proto (tcp|udp|sctp)(?=\s|$)/))) op(M_L4PROTO, PROTO[m[1]!]!);
      else if ((m = take(/^masquerade( fully-random)?$/))) op(S_MASQ, m[1] ? NatFlag.RANDOM_FULLY : 0);
      else if ((m = take(/^dnat to ([0-9.]+):(\d+)$/))) op(S_DNAT, parseIpv4(m[1]!), Number(m[2]));
      else if ((m = take(/^update @(\S+) \{ ip saddr \}/))) op(S_UPDATE_SADDR, setOf(m[1]!));
      else if ((m = take(/^numgen random mod (\d+) vmap \{([^}]*)\}$/))) {
        const mod = Number(m[1]);
        const vm = new Int32Array(mod).fill(NO_VERDICT);
        for (const el of m[2]!.split(",")) {
          const [k, v] = el.split(":").map((x) => x.trim());
          const n = Number(k);
          if (!Number.isInteger(n) || n < 0 || n >= mod) fail(`numgen element "${el.trim()}" out of range`);
          vm[n] = verdict(v!);
        }
        numgenMaps.push(vm);
        op(T_NUMGEN, mod, numgenMaps.length - 1);
      } else if (take(/^reject$/)) op(S_REJECT);
      else if ((m = take(/^(goto \S+|jump \S+|drop|accept|return)$/))) op(T_VERDICT, verdict(m[1]!));
      else fail(`unsupported rule text "${s}" in "${text}"`);
    }
  }

  const hookChains: Int32Array[] = [];
  const hookNat: Uint8Array[] = [];
  for (let h = 0; h < 5; h++) {
    const base = t.chains.map((c, i) => ({ c, i })).filter(({ c }) => c.hook && HOOKS[c.hook.hook] === h).sort((x, y) => x.c.hook!.priority - y.c.hook!.priority);
    hookChains.push(Int32Array.from(base, (b) => b.i));
    hookNat.push(Uint8Array.from(base, (b) => (b.c.hook!.type === "nat" ? 1 : 0)));
  }
  return {
    chainNames: t.chains.map((c) => c.name), chainStart, chainEnd, ruleStart: Int32Array.from(ruleStart), ruleEnd: Int32Array.from(ruleEnd),
    ops: Uint32Array.from(ops), sets, setNames: t.sets.map((s) => s.name), setTimeout, anon, numgenMaps, hookChains, hookNat, nRules: ruleStart.length,
  };
}

const STACK = 16;
const NF_DROP = 0;
const NF_ACCEPT = 1;
/** ICMP port unreachable: nft's `reject` default for ip (xt REJECT's --reject-with icmp-port-unreachable). */
const REJECT_PORT_UNREACH = 3;

function inAnon(list: Uint32Array, a: number): boolean {
  for (let i = 0; i < list.length; i += 2) if (((a & list[i + 1]!) >>> 0) === list[i]) return true;
  return false;
}

/** One namespace's `ip kube-proxy` table on the hook path (HookPath gives the kernel's hook order, as NetfilterPath). */
export class NftPath extends HookPath {
  /** Rules whose evaluation started, and set/map lookups, since construction (see the header). */
  rules = 0;
  lookups = 0;
  private readonly stackChain = new Int32Array(STACK);
  private readonly stackRule = new Int32Array(STACK);

  constructor(
    readonly c: CompiledNft,
    readonly env: NftEnv,
    readonly conntrack: ConntrackHook | null = null,
  ) {
    super();
  }

  /** The hook's base chains in priority order (conntrack at -200 first). False when the packet was stopped. */
  hook(hook: number, p: PacketState, out: PathResult): boolean {
    out.hook = hook;
    if ((hook === Hook.PREROUTING || hook === Hook.OUTPUT) && !this.reentry) {
      if (this.conntrack) this.conntrack.in(hook, p);
      else p.setOrigFromPacket();
    }
    const chains = this.c.hookChains[hook]!;
    const nat = this.c.hookNat[hook]!;
    for (let k = 0; k < chains.length; k++) {
      if (nat[k] === 1 && this.natDone(hook, p)) continue;
      const v = this.walk(chains[k]!, hook, p, out);
      if (v !== NF_ACCEPT) {
        out.verdict = NF_DROP;
        return false;
      }
    }
    return true;
  }

  private natDone(hook: number, p: PacketState): boolean {
    if (this.reentry) return true;
    const ct = this.conntrack;
    if (ct?.natDone) return ct.natDone(hook);
    return (p.ctState & CtState.NEW) === 0;
  }

  /** nft_do_chain from a base chain: NF_ACCEPT or NF_DROP (out.rejectWith set for reject). */
  private walk(base: number, hook: number, p: PacketState, out: PathResult): number {
    const c = this.c;
    const ops = c.ops;
    let sp = 0;
    let chain = base;
    let r = c.chainStart[chain]!;
    let end = c.chainEnd[chain]!;
    for (;;) {
      if (r >= end) {
        // End of a chain: return to the caller, or the base chain's policy (accept).
        if (sp === 0) return NF_ACCEPT;
        sp--;
        chain = this.stackChain[sp]!;
        r = this.stackRule[sp]!;
        end = c.chainEnd[chain]!;
        continue;
      }
      this.rules++;
      let v = NO_VERDICT;
      let matched = true;
      const oe = c.ruleEnd[r]! * OP_W;
      for (let o = c.ruleStart[r]! * OP_W; o < oe && matched; o += OP_W) {
        const code = ops[o]!;
        const a = ops[o + 1]!;
        const b = ops[o + 2]!;
        const neg = ops[o + 3] === 1;
        switch (code) {
          case M_CT_NEW:
            matched = (p.ctState & CtState.NEW) !== 0;
            break;
          case M_SADDR_NET:
            matched = (((p.src & b) >>> 0) === a) !== neg;
            break;
          case M_DADDR_NET:
            matched = (((p.dst & b) >>> 0) === a) !== neg;
            break;
          case M_SADDR_SET:
            this.lookups++;
            matched = this.inSet(a, p.src) !== neg;
            break;
          case M_DADDR_SET:
            this.lookups++;
            matched = this.inSet(a, p.dst) !== neg;
            break;
          case M_SADDR_ANON:
            this.lookups++;
            matched = inAnon(c.anon[a]!, p.src) !== neg;
            break;
          case M_DADDR_ANON:
            this.lookups++;
            matched = inAnon(c.anon[a]!, p.dst) !== neg;
            break;
          case M_MARK_AND_EQ:
            matched = ((p.mark & a) >>> 0) === b;
            break;
          case M_FIB_SADDR_LOCAL:
            matched = this.env.isLocal(p.src);
            break;
          case M_L4PROTO:
            matched = p.proto === a;
            break;
          case S_MARK_OR:
            p.mark = (p.mark | a) >>> 0;
            break;
          case S_MARK_XOR:
            p.mark = (p.mark ^ a) >>> 0;
            break;
          case S_MASQ:
            this.masquerade(a, p, out);
            break;
          case S_DNAT:
            this.dnat(a, b, p, out);
            break;
          case S_UPDATE_SADDR:
            this.lookups++;
            c.sets[a]!.set(p.src, 0, this.env.now() + c.setTimeout[a]!);
            break;
          case S_REJECT:
            out.rejectWith = REJECT_PORT_UNREACH;
            return NF_DROP;
          case T_VERDICT:
            v = a;
            break;
          case T_VMAP3:
            this.lookups++;
            v = c.sets[a]!.get(p.dst, ((p.proto << 16) | p.dport) >>> 0, NO_VERDICT);
            matched = v !== NO_VERDICT;
            break;
          case T_VMAP2:
            this.lookups++;
            v = c.sets[a]!.get(0, ((p.proto << 16) | p.dport) >>> 0, NO_VERDICT);
            matched = v !== NO_VERDICT;
            break;
          case T_NUMGEN:
            this.lookups++;
            v = c.numgenMaps[b]![this.env.numgen(a)]!;
            matched = v !== NO_VERDICT;
            break;
        }
      }
      r++;
      if (!matched || v === NO_VERDICT || (v & 7) === V_CONTINUE) continue;
      const kind = v & 7;
      if (kind === V_DROP) return NF_DROP;
      if (kind === V_ACCEPT) return NF_ACCEPT;
      if (kind === V_RETURN) {
        end = r; // the end-of-chain branch pops
        continue;
      }
      if (kind === V_JUMP) {
        if (sp === STACK) throw new NetfilterError("jump stack exhausted", `chain ${c.chainNames[chain]}`);
        this.stackChain[sp] = chain;
        this.stackRule[sp] = r;
        sp++;
      }
      chain = v >>> 3;
      r = c.chainStart[chain]!;
      end = c.chainEnd[chain]!;
    }
  }

  /** Named set membership; a dynamic set's element lives until its expiry. */
  private inSet(set: number, a: number): boolean {
    const v = this.c.sets[set]!.get(a, 0, 0);
    if (v === 0) return false;
    return this.c.setTimeout[set] === 0 || v > this.env.now();
  }

  /** nft_nat DNAT to one address and port (NF_NAT_RANGE_MAP_IPS | PROTO_SPECIFIED), as hooks.ts applyNat. */
  private dnat(ip: number, port: number, p: PacketState, out: PathResult): void {
    p.dst = ip;
    p.dport = port;
    p.ctState |= CtState.DNAT;
    out.dnat = true;
    out.dnatIp = out.dnatMaxIp = ip;
    out.dnatPort = out.dnatMaxPort = port;
    out.dnatFlags = NatFlag.HAS_IP | NatFlag.HAS_PORTS;
  }

  private masquerade(flags: number, p: PacketState, out: PathResult): void {
    const ip = this.env.masqueradeAddr(p.oif, p.dst);
    p.src = ip;
    p.ctState |= CtState.SNAT;
    out.snatKind = NatKind.MASQUERADE;
    out.snatIp = out.snatMaxIp = ip;
    out.snatPort = out.snatMaxPort = p.sport;
    out.snatFlags = flags | NatFlag.HAS_IP;
  }

  /** Forget dynamic-set contents (affinity): a fresh table. */
  resetDynamic(): void {
    for (let i = 0; i < this.c.sets.length; i++) if (this.c.setTimeout[i]! > 0) this.c.sets[i]!.clear();
  }
}
