// Matches on packet metadata and connection state: mark, conntrack, state, addrtype.
import { parseCidr, formatIpv4, parseIpv4 } from "../packet/addr.js";
import { ADDR_TYPES, CT_STATE_PRINT_ORDER } from "./ctstate.js";
import type { AddrtypeMatch, ConntrackMatch, MarkMatch, MatchModule } from "./match.js";
import { parsePort } from "./names.js";
import { type ArgCursor, hex, parseUint } from "./tokens.js";

/** `value[/mask]` as xtables_parse_val_mask reads it (mask defaults to all ones). */
export function parseValMask(text: string, cur: ArgCursor): { value: number; mask: number } {
  const slash = text.indexOf("/");
  if (slash < 0) return { value: parseUint(text, 0xffffffff, "value", cur), mask: 0xffffffff };
  return {
    value: parseUint(text.slice(0, slash), 0xffffffff, "value", cur),
    mask: parseUint(text.slice(slash + 1), 0xffffffff, "mask", cur),
  };
}

export function parseAddr(text: string, invert: boolean, cur: ArgCursor): { addr: number; len: number; mask: number; invert: boolean } {
  try {
    return { ...parseCidr(text), invert };
  } catch {
    return cur.fail(`host/network \`${text}' not found`);
  }
}

/** xt_conntrack keeps the address as written (host bits too) and masks both sides when matching. */
function parseUnmaskedAddr(text: string, invert: boolean, cur: ArgCursor): { addr: number; len: number; mask: number; invert: boolean } {
  const slash = text.indexOf("/");
  const a = parseAddr(text, invert, cur);
  try {
    return { ...a, addr: parseIpv4(slash < 0 ? text : text.slice(0, slash)) };
  } catch {
    return cur.fail(`host/network \`${text}' not found`);
  }
}

/** libxt_conntrack prints a host address bare and a network with its prefix length. */
export function formatAddrMask(a: { addr: number; len: number }): string {
  return a.len === 32 ? formatIpv4(a.addr) : `${formatIpv4(a.addr)}/${a.len}`;
}

// Which mark matches being parsed have had --mark (parse-time bookkeeping only).
const markGiven = new WeakSet<MarkMatch>();

export const markModule: MatchModule<MarkMatch> = {
  name: "mark",
  create: () => ({ kind: "mark", value: 0, mask: 0xffffffff, invert: false }),
  parse(m, opt, invert, cur) {
    if (opt !== "--mark") return false;
    Object.assign(m, parseValMask(cur.value(opt), cur));
    m.invert = invert;
    markGiven.add(m);
    return true;
  },
  final(m, cur) {
    if (!markGiven.has(m)) cur.fail('mark: option "--mark" must be specified');
  },
  print(m) {
    return `${m.invert ? " !" : ""} --mark ${hex(m.value)}${m.mask !== 0xffffffff ? "/" + hex(m.mask) : ""}`;
  },
};

function parseStates(text: string, allowed: string[], cur: ArgCursor): number {
  let bits = 0;
  for (const s of text.split(",")) {
    const e = CT_STATE_PRINT_ORDER.find(([n]) => n === s.toUpperCase());
    if (!e || !allowed.includes(e[0])) cur.fail(`Bad ctstate "${s}"`);
    bits |= e[1];
  }
  return bits;
}

function formatStates(bits: number): string {
  return CT_STATE_PRINT_ORDER.filter(([, b]) => bits & b).map(([n]) => n).join(",");
}

function ctModule(kind: "conntrack" | "state"): MatchModule<ConntrackMatch> {
  const allowed = kind === "state" ? ["INVALID", "NEW", "RELATED", "ESTABLISHED", "UNTRACKED"] : CT_STATE_PRINT_ORDER.map(([n]) => n);
  return {
    name: kind,
    create: () => ({ kind, state: 0, hasState: false, stateInvert: false }),
    parse(m, opt, invert, cur) {
      if ((kind === "conntrack" && opt === "--ctstate") || (kind === "state" && opt === "--state")) {
        m.state = parseStates(cur.value(opt), allowed, cur);
        m.hasState = true;
        m.stateInvert = invert;
        return true;
      }
      if (kind !== "conntrack") return false;
      switch (opt) {
        case "--ctorigsrc":
          m.origSrc = parseUnmaskedAddr(cur.value(opt), invert, cur);
          return true;
        case "--ctorigdst":
          m.origDst = parseUnmaskedAddr(cur.value(opt), invert, cur);
          return true;
        case "--ctorigsrcport":
          m.origSrcPort = { port: parsePort(cur.value(opt), cur), invert };
          return true;
        case "--ctorigdstport":
          m.origDstPort = { port: parsePort(cur.value(opt), cur), invert };
          return true;
      }
      return false;
    },
    final(m, cur) {
      const any = m.hasState || m.origSrc || m.origDst || m.origSrcPort || m.origDstPort;
      if (!any) cur.fail(kind === "state" ? "state: option \"--state\" must be specified" : "conntrack: At least one option is required");
    },
    print(m) {
      if (kind === "state") return `${m.stateInvert ? " !" : ""} --state ${formatStates(m.state)}`;
      let s = "";
      if (m.hasState) s += `${m.stateInvert ? " !" : ""} --ctstate ${formatStates(m.state)}`;
      if (m.origSrc) s += `${m.origSrc.invert ? " !" : ""} --ctorigsrc ${formatAddrMask(m.origSrc)}`;
      if (m.origDst) s += `${m.origDst.invert ? " !" : ""} --ctorigdst ${formatAddrMask(m.origDst)}`;
      if (m.origSrcPort) s += `${m.origSrcPort.invert ? " !" : ""} --ctorigsrcport ${m.origSrcPort.port}`;
      if (m.origDstPort) s += `${m.origDstPort.invert ? " !" : ""} --ctorigdstport ${m.origDstPort.port}`;
      return s;
    },
  };
}
export const conntrackModule = ctModule("conntrack");
export const stateModule = ctModule("state");

function parseAddrTypes(text: string, cur: ArgCursor): number {
  let bits = 0;
  for (const t of text.split(",")) {
    const e = ADDR_TYPES.find(([n]) => n === t.toUpperCase());
    if (!e) cur.fail(`addrtype: invalid address type "${t}"`);
    bits |= e[1];
  }
  return bits;
}

function formatAddrTypes(bits: number): string {
  return ADDR_TYPES.filter(([, b]) => bits & b).map(([n]) => n).join(",");
}

export const addrtypeModule: MatchModule<AddrtypeMatch> = {
  name: "addrtype",
  create: () => ({ kind: "addrtype", srcType: 0, srcInvert: false, dstType: 0, dstInvert: false, limitIfaceIn: false, limitIfaceOut: false }),
  parse(m, opt, invert, cur) {
    switch (opt) {
      case "--src-type":
        m.srcType = parseAddrTypes(cur.value(opt), cur);
        m.srcInvert = invert;
        return true;
      case "--dst-type":
        m.dstType = parseAddrTypes(cur.value(opt), cur);
        m.dstInvert = invert;
        return true;
      case "--limit-iface-in":
        m.limitIfaceIn = true;
        return true;
      case "--limit-iface-out":
        m.limitIfaceOut = true;
        return true;
    }
    return false;
  },
  final(m, cur) {
    if (!m.srcType && !m.dstType) cur.fail("addrtype: you must specify --src-type or --dst-type");
    if (m.limitIfaceIn && m.limitIfaceOut) cur.fail("addrtype: you can't specify both --limit-iface-in and --limit-iface-out");
  },
  print(m) {
    let s = "";
    if (m.srcType) s += `${m.srcInvert ? " !" : ""} --src-type ${formatAddrTypes(m.srcType)}`;
    if (m.dstType) s += `${m.dstInvert ? " !" : ""} --dst-type ${formatAddrTypes(m.dstType)}`;
    if (m.limitIfaceIn) s += " --limit-iface-in";
    if (m.limitIfaceOut) s += " --limit-iface-out";
    return s;
  },
};
