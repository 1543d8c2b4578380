// The compiled form of one table: rules as parallel typed arrays (ip header fields, a match program, a target),
// chains as index ranges, jumps as chain indices. Built once by compile.ts; read per packet by eval.ts.
import type { IpSet } from "./ipset.js";
import type { Table } from "./rule.js";
import type { TableName } from "./tables.js";

export type { TableName };

/** ip header fields per rule, stride IP_STRIDE in `ip`. */
export const IP_STRIDE = 8;
export const IP = { SRC: 0, SRC_MASK: 1, DST: 2, DST_MASK: 3, PROTO: 4, FLAGS: 5, IIF: 6, OIF: 7 } as const;
export const IpFlag = {
  INV_SRC: 1, INV_DST: 2, INV_IIF: 4, INV_OIF: 8, INV_PROTO: 16, HAS_PROTO: 32, FRAG: 64, INV_FRAG: 128,
  HAS_IIF: 256, HAS_OIF: 512, HAS_SRC: 1024, HAS_DST: 2048,
} as const;

export const Op = {
  PORTS: 1, ICMP: 2, MULTIPORT: 3, MARK: 4, CONNTRACK: 5, ADDRTYPE: 6, STAT_RANDOM: 7, STAT_NTH: 8, RECENT: 9,
  PHYSDEV: 10, TRUE: 11, SET: 12,
} as const;

export const T = {
  NONE: 0, ACCEPT: 1, DROP: 2, RETURN: 3, JUMP: 4, GOTO: 5, REJECT: 6, NAT: 7, MARK: 8, CONNMARK: 9, LOG: 10,
  TRACE: 11, NOTRACK: 12,
} as const;

/**
 * Everything eval.ts reads of one rule, in one record (stride RULE_STRIDE in `rule`): the IP_STRIDE ip header
 * fields first (same offsets as IP), then its ctstate guard, match program range, target, chain and number. One
 * array and one cache line per rule instead of one per field.
 */
export const RULE_STRIDE = 16;
export const R = { GUARD: 8, M_START: 9, M_END: 10, T_KIND: 11, T_ARG: 12, CHAIN: 13, NUM: 14, QUICK: 15 } as const;
/**
 * The record's QUICK word: what a candidate rule needs beyond its scan test, in one load. The target kind (T) in
 * the low bits, then: SLOW_IP (ip header tests or an inverted address: IP.FLAGS & (INV_SRC | INV_DST | SLOW_IP)),
 * MATCHES (a match program), LONE_MARK (that program is one mark match), LONE_SET (one set match: kube-proxy's
 * IPVS-mode rules).
 */
export const Quick = { KIND_MASK: 15, SLOW_IP: 16, MATCHES: 32, LONE_MARK: 64, LONE_SET: 128 } as const;

/**
 * ctGuard per rule: 0 for none, else CT_GUARD_ON | state bits (CtState) | CT_GUARD_INV when inverted. The rule can
 * only match when ((p.ctState & bits) !== 0) !== inverted; xt_conntrack's state test, done before the match program.
 */
export const CT_GUARD_ON = 1 << 29;
export const CT_GUARD_INV = 1 << 30;
export const CT_GUARD_STATES = 0x1ff;

/** NAT request kinds (EvalResult.natKind). */
export const NatKind = { NONE: 0, DNAT: 1, SNAT: 2, MASQUERADE: 3, REDIRECT: 4 } as const;
export const NatFlag = { RANDOM: 1, RANDOM_FULLY: 2, PERSISTENT: 4, HAS_IP: 8, HAS_PORTS: 16 } as const;
/** nat range per NAT target, stride NAT_STRIDE: kind, minIp, maxIp, minPort, maxPort, flags. */
export const NAT_STRIDE = 6;

export interface RecentInfo {
  list: Map<number, unknown>;
  cmd: number;
  seconds: number;
  hitcount: number;
  reap: boolean;
  invert: boolean;
  mask: number;
  source: boolean;
}

export interface CompiledTable {
  name: TableName;
  /** Index of this table in the compiled ruleset (trace records use it). */
  id: number;
  source: Table;
  chainNames: string[];
  chainStart: Int32Array;
  chainEnd: Int32Array;
  /** 1 ACCEPT, 0 DROP for built-ins; -1 for user chains. */
  chainPolicy: Int8Array;
  /** Built-in chain index per hook number (Hook.*), -1 when the table is not on that hook. */
  hookChain: Int32Array;
  policyPackets: Float64Array;
  policyBytes: Float64Array;
  nRules: number;
  ip: Int32Array;
  /**
   * Scan array, stride 4 (src, srcMask, dst, dstMask): the address test alone, for the tight loop that skips rules
   * which cannot match. Rules with an inverted address hold zeros here (always a candidate; `ip` decides).
   */
  scan: Int32Array;
  /** The rule's ctstate test (see CT_GUARD_ON), taken out of its match program when that was all the match did. */
  ctGuard: Int32Array;
  /** Per-rule records (RULE_STRIDE, offsets IP and R): what the walk reads, packed. */
  rule: Int32Array;
  mStart: Int32Array;
  mEnd: Int32Array;
  tKind: Int32Array;
  tArg: Int32Array;
  ruleChain: Int32Array;
  /** 1-based rule number within its chain. */
  ruleNum: Int32Array;
  packets: Float64Array;
  bytes: Float64Array;
  /** Match program: opcode and offset into `data` per match. */
  mOp: Int32Array;
  mArg: Int32Array;
  data: Int32Array;
  /** statistic nth counters (kernel: info->master->count), one per nth match. */
  nthCount: Int32Array;
  /** Their starting values: every-1, so the first packet counts 0 and `--packet 0` matches it (tested). */
  nthInit: Int32Array;
  recent: RecentInfo[];
  /** ipsets the table's set matches test (Op.SET operands index this). */
  sets: IpSet[];
  nat: Int32Array;
  /** MARK/CONNMARK operands at tArg: value, mask (CONNMARK: mode, value, mask, nfmask, ctmask). */
  /** ifMatch[id][ifindex] = 1 when pattern id matches that interface. */
  ifPatterns: string[];
  ifMatch: Uint8Array[];
  /** Return points of the jump stack: jumps cannot loop, so a chain appears at most once on it (kernel: stacksize). */
  stack: Int32Array;
}
