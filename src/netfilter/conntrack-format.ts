// Printing a conntrack table as conntrack-tools 1.4.7 does (`conntrack -L`, `-L -o extended`, `-S`, `-C`),
// and as JSON. Golden format, checked against the real tool on Linux 6.18:
//   tcp      6 119 TIME_WAIT src=127.0.0.1 dst=127.0.0.1 sport=54638 dport=8080 src=127.0.0.1 dst=127.0.0.1 sport=8080 dport=54638 [ASSURED] mark=0 use=1
//   udp      17 29 src=... dst=... sport=... dport=... [UNREPLIED] src=... dst=... sport=... dport=... mark=0 use=1
// Protocol name padded to 8, its number, the remaining timeout in seconds, the TCP state, the original tuple,
// [UNREPLIED] when no reply was seen, the reply tuple, [ASSURED], mark, use. Zone and secctx appear only when set
// (never here). Printing is for humans: it allocates freely.
import { formatIpv4 } from "../packet/addr.js";
import type { Conntrack } from "./conntrack.js";
import { type ConntrackStats, IPS_ASSURED, IPS_NAT_CLASH, IPS_SEEN_REPLY, IPS_SRC_NAT, IPS_DST_NAT } from "./conntrack-table.js";
import { TCP_STATE_NAMES } from "./conntrack-tcp.js";
import { IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, protoName } from "./tuple.js";

export interface ListOptions {
  /** `-o extended`: prefix each line with the layer 3 protocol (`ipv4     2 `). */
  extended?: boolean;
  /** nf_conntrack_acct=1: print packets= and bytes= after each tuple. */
  acct?: boolean;
}

function tupleText(ct: Conntrack, node: number, acct: boolean): string {
  const proto = ct.tProto[node]!;
  const p = ct.tPorts[node]!;
  let s = `src=${formatIpv4(ct.tSrc[node]!)} dst=${formatIpv4(ct.tDst[node]!)} `;
  if (proto === IPPROTO_TCP || proto === IPPROTO_UDP) s += `sport=${p >>> 16} dport=${p & 0xffff} `;
  else if (proto === IPPROTO_ICMP) s += `type=${(p >>> 8) & 0xff} code=${p & 0xff} id=${p >>> 16} `;
  if (acct) s += `packets=${ct.packets[node]} bytes=${ct.bytes[node]} `;
  return s;
}

/** One entry as a `conntrack -L` line. */
export function formatEntry(ct: Conntrack, i: number, opts: ListOptions = {}): string {
  const proto = ct.tProto[i * 2]!;
  const st = ct.status[i]!;
  let s = opts.extended ? "ipv4     2 " : "";
  s += `${protoName(proto).padEnd(8)} ${proto} ${ct.remaining(i)} `;
  if (proto === IPPROTO_TCP) s += `${TCP_STATE_NAMES[ct.l4state[i]!]} `;
  s += tupleText(ct, i * 2, !!opts.acct);
  if (!(st & IPS_SEEN_REPLY)) s += "[UNREPLIED] ";
  s += tupleText(ct, i * 2 + 1, !!opts.acct);
  if (st & IPS_ASSURED) s += "[ASSURED] ";
  s += `mark=${ct.mark[i]} use=1`;
  return s;
}

/** Entries `conntrack -L` would show: confirmed, alive; NAT clash entries are hidden from ctnetlink dumps. */
export function listedEntries(ct: Conntrack): number[] {
  return ct.entries().filter((i) => (ct.status[i]! & 8) !== 0 && !(ct.status[i]! & IPS_NAT_CLASH) && ct.expires[i]! > ct.now);
}

/** The table as `conntrack -L` prints it on stdout (the "N flow entries" summary goes to stderr there). */
export function formatList(ct: Conntrack, opts: ListOptions = {}): string {
  return listedEntries(ct).map((i) => formatEntry(ct, i, opts) + "\n").join("");
}

export function formatSummary(ct: Conntrack): string {
  return `conntrack v1.4.7 (conntrack-tools): ${listedEntries(ct).length} flow entries have been shown.`;
}

const STAT_ORDER: (keyof ConntrackStats)[] = [
  "found", "invalid", "insert", "insert_failed", "drop", "early_drop", "error", "search_restart", "clash_resolve", "chaintoolong",
];

/** `conntrack -S`: one line per CPU there; the model is one CPU. */
export function formatStats(ct: Conntrack): string {
  return `cpu=${"0".padEnd(4)}\t` + STAT_ORDER.map((k) => `${k}=${ct.stats[k]} `).join("") + "\n";
}

export interface TupleJson {
  src: string;
  dst: string;
  sport?: number;
  dport?: number;
  type?: number;
  code?: number;
  id?: number;
  packets: number;
  bytes: number;
}

export interface EntryJson {
  proto: string;
  protonum: number;
  timeout: number;
  state: string | null;
  original: TupleJson;
  reply: TupleJson;
  status: string[];
  mark: number;
  use: number;
}

function tupleJson(ct: Conntrack, node: number): TupleJson {
  const proto = ct.tProto[node]!;
  const p = ct.tPorts[node]!;
  const t: TupleJson = { src: formatIpv4(ct.tSrc[node]!), dst: formatIpv4(ct.tDst[node]!), packets: ct.packets[node]!, bytes: ct.bytes[node]! };
  if (proto === IPPROTO_TCP || proto === IPPROTO_UDP) {
    t.sport = p >>> 16;
    t.dport = p & 0xffff;
  } else if (proto === IPPROTO_ICMP) {
    t.type = (p >>> 8) & 0xff;
    t.code = p & 0xff;
    t.id = p >>> 16;
  }
  return t;
}

const STATUS_NAMES: [number, string][] = [
  [1 << 0, "EXPECTED"], [IPS_SEEN_REPLY, "SEEN_REPLY"], [IPS_ASSURED, "ASSURED"], [1 << 3, "CONFIRMED"],
  [IPS_SRC_NAT, "SRC_NAT"], [IPS_DST_NAT, "DST_NAT"], [1 << 7, "SRC_NAT_DONE"], [1 << 8, "DST_NAT_DONE"],
  [1 << 10, "FIXED_TIMEOUT"], [IPS_NAT_CLASH, "NAT_CLASH"],
];

export function entryJson(ct: Conntrack, i: number): EntryJson {
  const proto = ct.tProto[i * 2]!;
  const st = ct.status[i]!;
  return {
    proto: protoName(proto),
    protonum: proto,
    timeout: ct.remaining(i),
    state: proto === IPPROTO_TCP ? TCP_STATE_NAMES[ct.l4state[i]!]! : null,
    original: tupleJson(ct, i * 2),
    reply: tupleJson(ct, i * 2 + 1),
    status: STATUS_NAMES.filter(([b]) => st & b).map(([, n]) => n),
    mark: ct.mark[i]!,
    use: 1,
  };
}

export function tableJson(ct: Conntrack): { entries: EntryJson[]; count: number; max: number; stats: ConntrackStats } {
  return { entries: listedEntries(ct).map((i) => entryJson(ct, i)), count: ct.count, max: ct.max, stats: { ...ct.stats } };
}
