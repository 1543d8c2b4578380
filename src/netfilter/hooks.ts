// The path of a packet through one network namespace's netfilter hooks, in the kernel's order:
//   received:  PREROUTING (raw -300, conntrack -200, mangle -150, nat DNAT -100) → routing decision →
//              INPUT (mangle, filter, security, nat SNAT +100)  or  FORWARD (mangle, filter, security) →
//              POSTROUTING (mangle, nat SNAT +100) for forwarded packets
//   local out: OUTPUT (raw, conntrack, mangle, nat DNAT, filter, security) → POSTROUTING (mangle, nat SNAT),
//              and for a local destination back in through lo: PREROUTING → INPUT (no conntrack, no nat again)
// Only the first packet of a connection (ct state NEW) walks the nat table; later packets get the binding from
// conntrack, which plugs in through the Conntrack interface (helper: src/netfilter/conntrack.ts).
import { CtState } from "./ctstate.js";
import type { CompiledRuleset } from "./compile.js";
import type { CompiledTable } from "./compiled.js";
import { NatFlag, NatKind } from "./compiled.js";
import { type EvalEnv, EvalResult, NF_ACCEPT, NF_DROP, evalChain } from "./eval.js";
import type { PacketState } from "./packet-state.js";
import { Hook, type HookName, tablesOnHook } from "./tables.js";

/** Conntrack at priority -200 (PREROUTING, OUTPUT) and confirm at the end of the path. */
export interface ConntrackHook {
  /** Look the packet up (or create a NEW entry); set p.ctState / ctOrig*; for an existing connection apply its NAT binding to `p`. */
  in(hook: number, p: PacketState): void;
  /** The packet left the last hook accepted: confirm the entry and store the NAT binding the path decided. */
  confirm(p: PacketState, path: PathResult): void;
  /**
   * Is this hook's NAT manip already set up for the packet's connection (or is there no connection)? The kernel
   * walks the nat table only when it is not (nf_nat_inet_fn: !nf_nat_initialized(ct, manip)). Without this method
   * the path walks nat for packets whose ct state is NEW.
   */
  natDone?(hook: number): boolean;
}

/** The routing decision and the addresses the path needs; injected by the caller (the kernel model or the CLI). */
export interface RouteEnv {
  /** Is `addr` one of this namespace's addresses (the local route table)? */
  isLocal(addr: number): boolean;
  /** The source address MASQUERADE picks for output device `oif` (inet_select_addr). */
  masqueradeAddr(oif: number, dst: number): number;
}

/** What the path decided: verdict, where it stopped, the NAT it asked for (applied to the packet state too). */
export class PathResult {
  verdict = NF_ACCEPT;
  rejectWith = -1;
  /** Hook number the verdict came from (the hook that dropped, or POSTROUTING/INPUT when accepted). */
  hook = 0;
  local = false;
  dnat = false;
  /** First address and port of the DNAT range (what the packet state got; the packet's own when not named). */
  dnatIp = 0;
  dnatPort = 0;
  /**
   * The rule's full destination range for conntrack's nf_nat_setup_info: last address and port, and NatFlag bits
   * (HAS_IP: an address range was given (REDIRECT: the chosen address); HAS_PORTS: a port range was given, even one
   * equal to the packet's port; RANDOM, RANDOM_FULLY, PERSISTENT).
   */
  dnatMaxIp = 0;
  dnatMaxPort = 0;
  dnatFlags = 0;
  /** NatKind.SNAT or MASQUERADE when source NAT was requested, else NONE. */
  snatKind: number = NatKind.NONE;
  snatIp = 0;
  snatPort = 0;
  /** The source range, as for DNAT (MASQUERADE: HAS_IP with the chosen address as min and max). */
  snatMaxIp = 0;
  snatMaxPort = 0;
  snatFlags = 0;
  reset(): void {
    this.verdict = NF_ACCEPT;
    this.rejectWith = -1;
    this.hook = 0;
    this.local = false;
    // The dnat* and snat* fields are written together with `dnat` / `snatKind` (per packet, most leave all of them
    // zero): cleared only after a packet that set them.
    if (this.dnat === true) {
      this.dnat = false;
      this.dnatIp = this.dnatPort = this.dnatMaxIp = this.dnatMaxPort = this.dnatFlags = 0;
    }
    if (this.snatKind !== 0 /* NatKind.NONE */) {
      this.snatKind = 0;
      this.snatIp = this.snatPort = this.snatMaxIp = this.snatMaxPort = this.snatFlags = 0;
    }
  }
}

/** Table slots per hook in NetfilterPath's flat per-hook arrays (at most raw, mangle, nat, filter, security). */
const SLOTS = 8;
/** NetfilterPath slot kinds (bits): the nat table (walked only while its manip is not set up), an empty built-in chain. */
const SLOT_NAT = 1;
const SLOT_EMPTY = 2;

// The per-packet code below writes Hook numbers, verdicts, NatKind.NONE, CtState.UNTRACKED and the slot layout as
// literals (V8 loads a module-level object's property on every use); checked once here against their definitions.
if (Hook.PREROUTING !== 0 || Hook.INPUT !== 1 || Hook.FORWARD !== 2 || Hook.OUTPUT !== 3 || Hook.POSTROUTING !== 4 ||
    NatKind.NONE !== 0 || CtState.UNTRACKED !== 256 || NF_ACCEPT !== 1 || NF_DROP !== 0 || SLOTS !== 8 || SLOT_NAT !== 1 ||
    SLOT_EMPTY !== 2) {
  throw new Error("netfilter/hooks.ts: literal hook numbers or states out of step with tables.ts / compiled.ts / ctstate.ts");
}

/**
 * The kernel's order of hooks around one namespace's routing decision, over any per-hook evaluator (iptables
 * tables here, kube-proxy's nftables table in k8s/kube-proxy/nftables-eval.ts): PREROUTING, then INPUT for a
 * local destination or FORWARD + POSTROUTING; OUTPUT + POSTROUTING for a local packet, looped back through lo
 * when its destination is local; conntrack confirms an accepted packet.
 */
export abstract class HookPath {
  /** Walking PREROUTING/INPUT again for a looped-back local packet (see loopback()). */
  protected reentry = false;
  abstract readonly env: RouteEnv;
  abstract readonly conntrack: ConntrackHook | null;
  /** Run every chain of `hook`; false when the packet was stopped (verdict in `out`). */
  abstract hook(hook: number, p: PacketState, out: PathResult): boolean;

  /** A packet received on p.iif. Fills `out`; returns the verdict. */
  receive(p: PacketState, out: PathResult): number {
    out.reset();
    if (!this.hook(0 /* PREROUTING */, p, out)) return out.verdict;
    out.local = this.env.isLocal(p.dst);
    if (out.local) {
      p.oif = 0;
      this.hook(1 /* INPUT */, p, out);
    } else if (this.hook(2 /* FORWARD */, p, out)) {
      this.hook(4 /* POSTROUTING */, p, out);
    }
    if (out.verdict === 1 /* NF_ACCEPT */ && this.conntrack !== null) this.conntrack.confirm(p, out);
    return out.verdict;
  }

  /** A locally generated packet leaving through p.oif. */
  output(p: PacketState, out: PathResult): number {
    out.reset();
    p.iif = 0;
    if (this.hook(Hook.OUTPUT, p, out)) {
      out.local = this.env.isLocal(p.dst);
      this.hook(Hook.POSTROUTING, p, out);
    }
    if (out.verdict === 1 /* NF_ACCEPT */ && this.conntrack !== null) this.conntrack.confirm(p, out);
    if (out.verdict === NF_ACCEPT && out.local) this.loopback(p, out);
    return out.verdict;
  }

  /**
   * A locally generated packet for a local address leaves through lo and comes back in: PREROUTING and INPUT run
   * again, but the skb keeps its conntrack entry (nf_conntrack_in returns early) and both NAT manips are set up, so
   * neither conntrack nor the nat table acts a second time.
   */
  private loopback(p: PacketState, out: PathResult): void {
    p.iif = p.oif;
    p.oif = 0;
    this.reentry = true;
    try {
      if (this.hook(Hook.PREROUTING, p, out)) this.hook(Hook.INPUT, p, out);
    } finally {
      this.reentry = false;
    }
  }
}

export class NetfilterPath extends HookPath {
  /**
   * Per hook (at hook * SLOTS + k, k in priority order): the table, its built-in chain for the hook, and SLOT_NAT /
   * SLOT_EMPTY bits (an empty chain only counts its policy). Flat arrays resolved once: per packet and hook one
   * load each instead of an array per hook. Plain arrays of small integers, not typed arrays: once any ArrayBuffer
   * in the process has been detached (a WebAssembly memory growing does it), V8 checks the buffer on every typed
   * array access; these small tables are read several times per packet and hooks.
   */
  private readonly slotTable: CompiledTable[];
  private readonly slotChain: number[];
  private readonly slotKind: number[];
  /** Tables per hook. */
  private readonly slotCount: number[];
  /** Per hook: how many tables run before conntrack (raw at -300 does; the rest come after -200). */
  private readonly ctAfter: number[];
  /**
   * Is connection tracking active in this namespace? The kernel registers conntrack's hooks per namespace only when
   * something needs it (nf_ct_netns_get: NAT targets, conntrack/state matches, CONNMARK, CT); without it packets
   * have no conntrack entry and the nat table is never walked (tested: an empty nat table counts nothing).
   */
  readonly tracking: boolean;
  /** The packet's ctstate as the caller set it, kept while raw sees INVALID (-1: none kept). */
  private callerCtState = -1;
  readonly result = new EvalResult();
  /** Does the conntrack hook say when a NAT manip is set up (ConntrackHook.natDone)? Resolved once. */
  private readonly ctNatDone: boolean;

  constructor(
    readonly rules: CompiledRuleset,
    readonly env: EvalEnv & RouteEnv,
    readonly conntrack: ConntrackHook | null = null,
  ) {
    super();
    this.tracking = conntrack !== null || usesConntrack(rules);
    this.ctNatDone = typeof conntrack?.natDone === "function";
    const onHook = (["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"] as HookName[]).map((h) =>
      tablesOnHook(h).map((n) => rules.byName[n]).filter((t): t is CompiledTable => t !== undefined),
    );
    this.slotTable = [];
    this.slotChain = new Array<number>(onHook.length * SLOTS).fill(0);
    this.slotKind = new Array<number>(onHook.length * SLOTS).fill(0);
    this.slotCount = onHook.map((ts) => ts.length);
    onHook.forEach((ts, h) => {
      if (ts.length > SLOTS) throw new Error(`netfilter: ${ts.length} tables on one hook`);
      for (let k = 0; k < SLOTS; k++) {
        const t = ts[k] ?? ts[0]!;
        const s = h * SLOTS + k;
        this.slotTable[s] = t;
        if (k >= ts.length) continue;
        const chain = t.hookChain[h]!;
        this.slotChain[s] = chain;
        this.slotKind[s] = (t.name === "nat" ? SLOT_NAT : 0) | (t.chainStart[chain] === t.chainEnd[chain] ? SLOT_EMPTY : 0);
      }
    });
    this.ctAfter = onHook.map((ts) => ts.filter((t) => t.name === "raw").length);
  }

  /**
   * Every table on `hook` in priority order; conntrack runs at -200 (after raw). False when the packet was stopped.
   * Per-hook lists, nat positions and empty chains are resolved in the constructor. A built-in chain with no rules
   * only counts its policy (the kernel still runs it: the underflow rule's counters move), done here inline.
   */
  hook(hook: number, p: PacketState, out: PathResult): boolean {
    const r = this.result;
    out.hook = hook;
    const ctAt = hook === 0 /* PREROUTING */ || hook === 3 /* OUTPUT */ ? this.ctAfter[hook]! : -1;
    if (ctAt > 0 && this.reentry !== true && this.tracking === true) {
      // raw runs before conntrack has looked the packet up: the skb has no ct yet, so xt_conntrack sees INVALID
      // (checked against the kernel: `-t raw -A OUTPUT -m conntrack --ctstate INVALID` counts every packet sent).
      this.callerCtState = p.ctState;
      p.ctState = CtState.INVALID;
    }
    const n = this.slotCount[hook]!;
    const base = hook * 8; // SLOTS
    for (let k = 0; k < n; k++) {
      if (k === ctAt) this.conntrackIn(hook, p);
      const kind = this.slotKind[base + k]!;
      // nat: only a connection's first packet is NATed by rules; later ones use the binding (applied by conntrack).
      if ((kind & 1 /* SLOT_NAT */) !== 0 && this.natDone(hook, p)) continue;
      const t = this.slotTable[base + k]!;
      const chain = this.slotChain[base + k]!;
      if ((kind & 2 /* SLOT_EMPTY */) !== 0 && r.trace === null) {
        t.policyPackets[chain]!++;
        t.policyBytes[chain]! += p.len;
        if (t.chainPolicy[chain] === 0) {
          out.verdict = r.verdict = 0 /* NF_DROP */;
          out.rejectWith = r.rejectWith = -1;
          return false;
        }
        continue;
      }
      r.resetVerdict();
      evalChain(t, chain, p, this.env, r);
      if (r.verdict !== 1 /* NF_ACCEPT */) {
        out.verdict = r.verdict;
        out.rejectWith = r.rejectWith;
        return false;
      }
      if (r.natKind !== 0 /* NatKind.NONE */) this.applyNat(hook, p, out);
    }
    if (ctAt === n) this.conntrackIn(hook, p);
    return true;
  }

  private natDone(hook: number, p: PacketState): boolean {
    if (this.reentry === true) return true;
    if (this.ctNatDone === true) return this.conntrack!.natDone!(hook);
    return (p.ctState & CtState.NEW) === 0;
  }

  private conntrackIn(hook: number, p: PacketState): void {
    const caller = this.callerCtState;
    this.callerCtState = -1;
    if (p.ctState === 256 /* CtState.UNTRACKED */ || this.reentry === true) return;
    if (this.tracking === false) {
      p.ctState = CtState.INVALID;
      return;
    }
    if (this.conntrack !== null) this.conntrack.in(hook, p);
    else {
      // No conntrack model (tcbox trace): the packet is what the caller says, a new connection's first packet by default.
      if (caller !== -1) p.ctState = caller;
      p.setOrigFromPacket();
    }
  }

  /**
   * Rewrite the packet state as the NAT target asks (first address/port of the range; conntrack's nf_nat_setup_info
   * picks within the full range, which `out` carries). MASQUERADE and REDIRECT turn into a one-address range with
   * the rule's ports and flags (nf_nat_masquerade_ipv4, nf_nat_redirect_ipv4: flags | NF_NAT_RANGE_MAP_IPS).
   */
  private applyNat(hook: number, p: PacketState, out: PathResult): void {
    const r = this.result;
    const hasPorts = (r.natFlags & NatFlag.HAS_PORTS) !== 0;
    const hasIp = (r.natFlags & NatFlag.HAS_IP) !== 0;
    if (r.natKind === NatKind.DNAT || r.natKind === NatKind.REDIRECT) {
      // REDIRECT: DNAT to the primary address of the incoming device (127.0.0.1 for locally generated).
      const redirect = r.natKind === NatKind.REDIRECT;
      const ip = redirect ? (hook === Hook.OUTPUT ? 0x7f000001 : this.env.masqueradeAddr(p.iif, p.src)) : hasIp ? r.natMinIp : p.dst;
      p.dst = ip;
      if (hasPorts) p.dport = r.natMinPort;
      p.ctState |= CtState.DNAT;
      out.dnat = true;
      out.dnatIp = p.dst;
      out.dnatPort = p.dport;
      out.dnatMaxIp = redirect || !hasIp ? ip : r.natMaxIp;
      out.dnatMaxPort = hasPorts ? r.natMaxPort : p.dport;
      out.dnatFlags = redirect ? r.natFlags | NatFlag.HAS_IP : r.natFlags;
    } else {
      const masq = r.natKind === NatKind.MASQUERADE;
      const ip = masq ? this.env.masqueradeAddr(p.oif, p.dst) : hasIp ? r.natMinIp : p.src;
      p.src = ip;
      if (hasPorts) p.sport = r.natMinPort;
      p.ctState |= CtState.SNAT;
      out.snatKind = r.natKind;
      out.snatIp = p.src;
      out.snatPort = p.sport;
      out.snatMaxIp = masq || !hasIp ? ip : r.natMaxIp;
      out.snatMaxPort = hasPorts ? r.natMaxPort : p.sport;
      out.snatFlags = masq ? r.natFlags | NatFlag.HAS_IP : r.natFlags;
    }
  }
}

const CT_TARGETS = new Set(["DNAT", "SNAT", "MASQUERADE", "REDIRECT", "CONNMARK", "CT", "NOTRACK"]);

/** Does any rule make the kernel enable conntrack in the namespace (nf_ct_netns_get from its checkentry)? */
export function usesConntrack(rules: CompiledRuleset): boolean {
  for (const t of rules.tables) {
    for (const c of t.source.chains.values()) {
      for (const r of c.rules) {
        if (r.target && CT_TARGETS.has(r.target.kind)) return true;
        if (r.matches.some((m) => m.kind === "conntrack" || m.kind === "state")) return true;
      }
    }
  }
  return false;
}
