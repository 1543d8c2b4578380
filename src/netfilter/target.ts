// Targets (`-j NAME`): the parsed form of each, parsed like its libxt_*.c and printed like its `save`.
// Table and hook restrictions are the kernel's checkentry ones (enforced in restore-check.ts).
import { formatIpv4, parseIpv4 } from "../packet/addr.js";
import type { ParseCtx } from "./match.js";
import { IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP } from "./names.js";
import { parseValMask } from "./match-state.js";
import type { HookName, TableName } from "./tables.js";
import { type ArgCursor, hex, parseUint, saveString } from "./tokens.js";

export interface NatRange {
  minIp: number;
  maxIp: number;
  /** False: no address given (MASQUERADE/REDIRECT). */
  hasIp: boolean;
  minPort: number;
  maxPort: number;
  hasPorts: boolean;
  random: boolean;
  randomFully: boolean;
  persistent: boolean;
}

export type Target =
  | { kind: "ACCEPT" }
  | { kind: "DROP" }
  | { kind: "RETURN" }
  | { kind: "jump"; chain: string; goto: boolean }
  | { kind: "REJECT"; with: string }
  | ({ kind: "DNAT" | "SNAT" | "MASQUERADE" | "REDIRECT" } & NatRange)
  /** xt_MARK v2: mark = (mark & ~mask) ^ value. */
  | { kind: "MARK"; value: number; mask: number }
  | { kind: "CONNMARK"; mode: "set" | "save" | "restore"; value: number; mask: number; nfmask: number; ctmask: number }
  | { kind: "LOG"; prefix: string; level: number; flags: number }
  | { kind: "TRACE" }
  | { kind: "NOTRACK" }
  | { kind: "CT"; notrack: boolean };

export type TargetKind = Target["kind"];

export interface TargetCtx extends ParseCtx {
  table: TableName;
}

export interface TargetModule<T extends Target = Target> {
  name: string;
  create(): T;
  parse(t: T, opt: string, invert: boolean, cur: ArgCursor, ctx: TargetCtx): boolean;
  final(t: T, cur: ArgCursor, ctx: TargetCtx): void;
  print(t: T): string;
  /** The kernel's xt_target .table, if restricted. */
  table?: TableName;
  /** The kernel's xt_target .hooks, if restricted. */
  hooks?: HookName[];
}

type Of<K extends TargetKind> = Extract<Target, { kind: K }>;

function simple<K extends "ACCEPT" | "DROP" | "RETURN" | "TRACE" | "NOTRACK">(kind: K, table?: TableName): TargetModule<Of<K>> {
  return { name: kind, create: () => ({ kind }) as Of<K>, parse: () => false, final() {}, print: () => "", table };
}

const REJECT_WITH: Array<[string, string]> = [
  ["icmp-net-unreachable", "net-unreach"],
  ["icmp-host-unreachable", "host-unreach"],
  ["icmp-proto-unreachable", "proto-unreach"],
  ["icmp-port-unreachable", "port-unreach"],
  ["icmp-net-prohibited", "net-prohib"],
  ["icmp-host-prohibited", "host-prohib"],
  ["tcp-reset", "tcp-rst"],
  ["icmp-admin-prohibited", "admin-prohib"],
];

const rejectModule: TargetModule<Of<"REJECT">> = {
  name: "REJECT",
  hooks: ["INPUT", "FORWARD", "OUTPUT"],
  create: () => ({ kind: "REJECT", with: "icmp-port-unreachable" }),
  parse(t, opt, _inv, cur) {
    if (opt !== "--reject-with") return false;
    const v = cur.value(opt);
    const e = REJECT_WITH.find(([a, b]) => v === a || v === b);
    if (!e) return cur.fail(`unknown reject type "${v}"`);
    t.with = e[0];
    return true;
  },
  final(t, cur, ctx) {
    // ipt_REJECT checkentry: a TCP RST needs a TCP rule.
    if (t.with === "tcp-reset" && (ctx.proto !== IPPROTO_TCP || ctx.protoInvert)) cur.fail("REJECT: TCP_RESET invalid for non-tcp");
  },
  print: (t) => ` --reject-with ${t.with}`,
};

function emptyRange(): NatRange {
  return { minIp: 0, maxIp: 0, hasIp: false, minPort: 0, maxPort: 0, hasPorts: false, random: false, randomFully: false, persistent: false };
}

function parsePorts(text: string, r: NatRange, cur: ArgCursor): void {
  const m = /^([0-9]+)(?:-([0-9]+))?$/.exec(text);
  if (!m) cur.fail(`Port \`${text}' not valid`);
  r.minPort = parseUint(m[1]!, 65535, "port", cur);
  r.maxPort = m[2] === undefined ? r.minPort : parseUint(m[2], 65535, "port", cur);
  if (r.minPort === 0 && m[2] === undefined) cur.fail(`Port \`${text}' not valid`);
  if (r.maxPort < r.minPort) cur.fail(`Port range \`${text}' funky`);
  r.hasPorts = true;
}

/** `ip[-ip][:port[-port]]` as libxt_NAT parses --to-destination / --to-source. */
function parseNatTo(text: string, r: NatRange, cur: ArgCursor): void {
  const colon = text.indexOf(":");
  const ipPart = colon < 0 ? text : text.slice(0, colon);
  if (colon >= 0) parsePorts(text.slice(colon + 1), r, cur);
  if (ipPart === "") return;
  const dash = ipPart.indexOf("-");
  try {
    r.minIp = parseIpv4(dash < 0 ? ipPart : ipPart.slice(0, dash));
    r.maxIp = dash < 0 ? r.minIp : parseIpv4(ipPart.slice(dash + 1));
  } catch {
    cur.fail(`Bad IP address "${ipPart}"`);
  }
  // A reversed range is accepted by iptables and the kernel alike (tested); nf_nat then uses min..max as given.
  r.hasIp = true;
}

function portsNeedProto(r: NatRange, ctx: TargetCtx, cur: ArgCursor, name: string): void {
  // libxt_NAT looks at the protocol number only: `! -p udp` with ports passes (tested with iptables-legacy).
  const ok = [IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP, 33, 136].includes(ctx.proto);
  if (r.hasPorts && !ok) cur.fail(`${name}: Need TCP, UDP, SCTP or DCCP with port specification`);
}

function formatRange(r: NatRange): string {
  let s = r.hasIp ? formatIpv4(r.minIp) + (r.maxIp !== r.minIp ? "-" + formatIpv4(r.maxIp) : "") : "";
  if (r.hasPorts) s += `:${r.minPort}${r.maxPort !== r.minPort ? "-" + r.maxPort : ""}`;
  return s;
}

function natFlags(r: NatRange): string {
  return (r.random ? " --random" : "") + (r.randomFully ? " --random-fully" : "") + (r.persistent ? " --persistent" : "");
}

function natModule(kind: "DNAT" | "SNAT" | "MASQUERADE" | "REDIRECT"): TargetModule<Of<typeof kind>> {
  const toOpt = kind === "DNAT" ? "--to-destination" : kind === "SNAT" ? "--to-source" : "--to-ports";
  const hooks: Record<typeof kind, HookName[]> = {
    DNAT: ["PREROUTING", "OUTPUT"],
    REDIRECT: ["PREROUTING", "OUTPUT"],
    SNAT: ["POSTROUTING", "INPUT"],
    MASQUERADE: ["POSTROUTING"],
  };
  return {
    name: kind,
    table: "nat",
    hooks: hooks[kind],
    create: () => ({ kind, ...emptyRange() }),
    parse(t, opt, _inv, cur) {
      if (opt === toOpt || (kind === "DNAT" && opt === "--to")) {
        if (t.hasIp || t.hasPorts) cur.fail(`${kind}: Multiple ${toOpt} not supported`);
        const v = cur.value(opt);
        if (kind === "MASQUERADE" || kind === "REDIRECT") parsePorts(v, t, cur);
        else parseNatTo(v, t, cur);
        return true;
      }
      if (opt === "--random") t.random = true;
      else if (opt === "--random-fully" && kind !== "DNAT") t.randomFully = true;
      else if (opt === "--persistent" && (kind === "DNAT" || kind === "SNAT")) t.persistent = true;
      else return false;
      return true;
    },
    final(t, cur, ctx) {
      if ((kind === "DNAT" || kind === "SNAT") && !t.hasIp && !t.hasPorts) cur.fail(`${kind}: option "${toOpt}" must be specified`);
      portsNeedProto(t, ctx, cur, kind);
    },
    print(t) {
      if (kind === "MASQUERADE" || kind === "REDIRECT") {
        const ports = t.hasPorts ? ` --to-ports ${t.minPort}${t.maxPort !== t.minPort ? "-" + t.maxPort : ""}` : "";
        return ports + natFlags(t);
      }
      return (t.hasIp || t.hasPorts ? ` ${toOpt} ${formatRange(t)}` : "") + natFlags(t);
    },
  };
}

const markModule: TargetModule<Of<"MARK">> = {
  name: "MARK",
  create: () => ({ kind: "MARK", value: 0, mask: -1 }),
  parse(t, opt, _inv, cur) {
    if (t.mask !== -1 && opt.endsWith("-mark")) cur.fail("MARK: only one action allowed");
    const mm = () => parseValMask(cur.value(opt), cur);
    const one = () => parseUint(cur.value(opt), 0xffffffff, "mark", cur);
    switch (opt) {
      case "--set-xmark": {
        const { value, mask } = mm();
        Object.assign(t, { value, mask });
        return true;
      }
      case "--set-mark": {
        // libxt_MARK: zero the masked bits then set: mask |= value.
        const { value, mask } = mm();
        Object.assign(t, { value, mask: (mask | value) >>> 0 });
        return true;
      }
      case "--and-mark":
        Object.assign(t, { value: 0, mask: ~one() >>> 0 });
        return true;
      case "--or-mark": {
        const v = one();
        Object.assign(t, { value: v, mask: v });
        return true;
      }
      case "--xor-mark":
        Object.assign(t, { value: one(), mask: 0 });
        return true;
    }
    return false;
  },
  final(t, cur) {
    if (t.mask === -1) cur.fail("MARK target: Parameter --set/and/or/xor-mark is required");
  },
  print: (t) => ` --set-xmark ${hex(t.value)}/${hex(t.mask)}`,
};

export { markModule as markTargetModule };
export const TARGET_MODULES_BASE = { rejectModule, natModule, simple, formatRange };
