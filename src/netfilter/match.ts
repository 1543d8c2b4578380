// Match extensions (`-m NAME`): the parsed form of each, and the registry the restore parser loads from.
// Each module parses its options like its libxt_*.c does and prints them like its `save` callback.
import type { ArgCursor } from "./tokens.js";

export interface PortsMatch {
  kind: "tcp" | "udp" | "sctp";
  sport: [number, number];
  sportInvert: boolean;
  dport: [number, number];
  dportInvert: boolean;
  /** tcp only: --tcp-flags MASK COMP (and --syn = FIN,SYN,RST,ACK SYN). */
  flagsMask: number;
  flagsComp: number;
  flagsInvert: boolean;
}
export interface IcmpMatch {
  kind: "icmp";
  type: number;
  codeMin: number;
  codeMax: number;
  invert: boolean;
}
export interface MultiportMatch {
  kind: "multiport";
  /** XT_MULTIPORT_SOURCE / DESTINATION / EITHER. */
  dir: "sports" | "dports" | "ports";
  /** Ranges; a single port is [p, p]. */
  ports: Array<[number, number]>;
  invert: boolean;
}
export interface CommentMatch {
  kind: "comment";
  comment: string;
}
export interface MarkMatch {
  kind: "mark";
  value: number;
  mask: number;
  invert: boolean;
}
export interface ConntrackMatch {
  kind: "conntrack" | "state";
  /** XT_CONNTRACK_STATE bits (see ctstate.ts), 0 when absent. */
  state: number;
  hasState: boolean;
  stateInvert: boolean;
  origSrc?: { addr: number; len: number; mask: number; invert: boolean };
  origDst?: { addr: number; len: number; mask: number; invert: boolean };
  origSrcPort?: { port: number; invert: boolean };
  origDstPort?: { port: number; invert: boolean };
}
export interface AddrtypeMatch {
  kind: "addrtype";
  srcType: number;
  srcInvert: boolean;
  dstType: number;
  dstInvert: boolean;
  limitIfaceIn: boolean;
  limitIfaceOut: boolean;
}
export interface StatisticMatch {
  kind: "statistic";
  mode: "random" | "nth";
  /** random: round(p·2³¹) as libxt_statistic stores it; the kernel compares (random & 0x7fffffff) < this. */
  probability: number;
  /** nth: every as the user wrote it (the kernel stores every-1). */
  every: number;
  packet: number;
  invert: boolean;
}
export type RecentCommand = "set" | "rcheck" | "update" | "remove";
export interface RecentMatch {
  kind: "recent";
  command: RecentCommand;
  invert: boolean;
  seconds: number;
  reap: boolean;
  hitcount: number;
  name: string;
  mask: number;
  /** --rsource (true, the default) or --rdest. */
  source: boolean;
}
export interface PhysdevMatch {
  kind: "physdev";
  physIn?: { name: string; invert: boolean };
  physOut?: { name: string; invert: boolean };
  isIn?: { invert: boolean };
  isOut?: { invert: boolean };
  isBridged?: { invert: boolean };
}
export interface NfacctMatch {
  kind: "nfacct";
  name: string;
}

export interface SetMatch {
  kind: "set";
  /** The ipset's name. */
  name: string;
  /** One direction per set dimension (`dst,dst`). */
  dirs: ("src" | "dst")[];
  invert: boolean;
}

export type Match =
  | PortsMatch
  | IcmpMatch
  | MultiportMatch
  | CommentMatch
  | MarkMatch
  | ConntrackMatch
  | AddrtypeMatch
  | StatisticMatch
  | RecentMatch
  | PhysdevMatch
  | NfacctMatch
  | SetMatch;

export interface ParseCtx {
  /** Protocol from -p (0 when absent or all). */
  proto: number;
  protoInvert: boolean;
}

export interface MatchModule<M extends Match = Match> {
  name: string;
  create(): M;
  /** Consume option `opt` (already read; `invert` when `!` preceded it). False: not this module's option. */
  parse(m: M, opt: string, invert: boolean, cur: ArgCursor, ctx: ParseCtx): boolean;
  /** Checks after the whole rule is read (libxt final_check and the kernel's checkentry). */
  final(m: M, cur: ArgCursor, ctx: ParseCtx): void;
  /** Options as iptables-save prints them after ` -m NAME`, each with a leading space. */
  print(m: M): string;
}
