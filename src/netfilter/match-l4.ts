// Layer-4 matches: tcp, udp, sctp (ports, tcp flags), icmp (type/code) and multiport.
import { IPPROTO_ICMP, IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP, parseIcmpType, parsePortRange } from "./names.js";
import type { IcmpMatch, MatchModule, MultiportMatch, ParseCtx, PortsMatch } from "./match.js";
import type { ArgCursor } from "./tokens.js";

const TCP_FLAGS: Array<[string, number]> = [
  ["FIN", 0x01], ["SYN", 0x02], ["RST", 0x04], ["PSH", 0x08], ["ACK", 0x10], ["URG", 0x20], ["ALL", 0x3f], ["NONE", 0],
];

function parseTcpFlags(text: string, cur: ArgCursor): number {
  let v = 0;
  for (const f of text.split(",")) {
    const e = TCP_FLAGS.find(([n]) => n === f.toUpperCase());
    if (!e) cur.fail(`Unknown TCP flag \`${f}'`);
    v |= e[1];
  }
  return v;
}

/** libxt_tcp print_tcpf: names in bit order, NONE for 0. */
export function formatTcpFlags(flags: number): string {
  const names: string[] = [];
  for (const [n, bit] of TCP_FLAGS.slice(0, 6)) if (flags & bit) names.push(n);
  return names.length ? names.join(",") : "NONE";
}

function savePorts(name: string, r: [number, number], invert: boolean): string {
  if (r[0] === 0 && r[1] === 0xffff) return "";
  const v = r[0] === r[1] ? `${r[0]}` : `${r[0]}:${r[1]}`;
  return `${invert ? " !" : ""} --${name} ${v}`;
}

/** The kernel's tcp/udp/sctp matches require `-p PROTO` without `!` (xt_tcpudp .proto). */
function requireProto(ctx: ParseCtx, proto: number, name: string, cur: ArgCursor): void {
  if (ctx.proto !== proto || ctx.protoInvert) cur.fail(`${name} match: requires -p ${name}`);
}

function portsModule(kind: "tcp" | "udp" | "sctp", proto: number): MatchModule<PortsMatch> {
  return {
    name: kind,
    create: () => ({ kind, sport: [0, 0xffff], sportInvert: false, dport: [0, 0xffff], dportInvert: false, flagsMask: 0, flagsComp: 0, flagsInvert: false }),
    parse(m, opt, invert, cur) {
      switch (opt) {
        case "--sport":
        case "--source-port":
          m.sport = parsePortRange(cur.value(opt), cur);
          m.sportInvert = invert;
          return true;
        case "--dport":
        case "--destination-port":
          m.dport = parsePortRange(cur.value(opt), cur);
          m.dportInvert = invert;
          return true;
      }
      if (kind !== "tcp") return false;
      if (opt === "--syn") {
        m.flagsMask = 0x17; // FIN,SYN,RST,ACK
        m.flagsComp = 0x02;
        m.flagsInvert = invert;
        return true;
      }
      if (opt === "--tcp-flags") {
        m.flagsMask = parseTcpFlags(cur.value(opt), cur);
        m.flagsComp = parseTcpFlags(cur.value(opt), cur);
        m.flagsInvert = invert;
        return true;
      }
      return false;
    },
    final(_m, cur, ctx) {
      requireProto(ctx, proto, kind, cur);
    },
    print(m) {
      let s = savePorts("sport", m.sport, m.sportInvert) + savePorts("dport", m.dport, m.dportInvert);
      if (m.flagsMask || m.flagsInvert) {
        s += `${m.flagsInvert ? " !" : ""} --tcp-flags ${formatTcpFlags(m.flagsMask)} ${formatTcpFlags(m.flagsComp)}`;
      }
      return s;
    },
  };
}

export const tcpModule = portsModule("tcp", IPPROTO_TCP);
export const udpModule = portsModule("udp", IPPROTO_UDP);
export const sctpModule = portsModule("sctp", IPPROTO_SCTP);

// Which icmp matches being parsed have had --icmp-type (libxt_icmp makes it mandatory).
const icmpTypeGiven = new WeakSet<IcmpMatch>();

export const icmpModule: MatchModule<IcmpMatch> = {
  name: "icmp",
  // libxt_icmp's init: type 0xff (any) until --icmp-type is given.
  create: () => ({ kind: "icmp", type: 0xff, codeMin: 0, codeMax: 0xff, invert: false }),
  parse(m, opt, invert, cur) {
    if (opt !== "--icmp-type") return false;
    Object.assign(m, parseIcmpType(cur.value(opt), cur));
    m.invert = invert;
    icmpTypeGiven.add(m);
    return true;
  },
  final(m, cur, ctx) {
    if (!icmpTypeGiven.has(m)) cur.fail('icmp: option "--icmp-type" must be specified');
    requireProto(ctx, IPPROTO_ICMP, "icmp", cur);
  },
  print(m) {
    const inv = m.invert ? " !" : "";
    if (m.type === 0xff) return `${inv} --icmp-type any`;
    if (m.codeMin === 0 && m.codeMax === 0xff) return `${inv} --icmp-type ${m.type}`;
    return `${inv} --icmp-type ${m.type}/${m.codeMin}`;
  },
};

export const multiportModule: MatchModule<MultiportMatch> = {
  name: "multiport",
  create: () => ({ kind: "multiport", dir: "ports", ports: [], invert: false }),
  parse(m, opt, invert, cur) {
    let dir: MultiportMatch["dir"];
    if (opt === "--sports" || opt === "--source-ports") dir = "sports";
    else if (opt === "--dports" || opt === "--destination-ports") dir = "dports";
    else if (opt === "--ports") dir = "ports";
    else return false;
    if (m.ports.length) cur.fail("multiport can only have one option");
    m.dir = dir;
    m.invert = invert;
    m.ports = cur.value(opt).split(",").map((p) => parsePortRange(p, cur));
    // XT_MULTI_PORTS: 15 slots, a range takes two.
    const slots = m.ports.reduce((n, [lo, hi]) => n + (lo === hi ? 1 : 2), 0);
    if (slots > 15) cur.fail("too many ports specified");
    return true;
  },
  final(m, cur, ctx) {
    if (!m.ports.length) cur.fail("multiport expects an option");
    const ok = [IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP, 33, 136].includes(ctx.proto) && !ctx.protoInvert;
    if (!ok) cur.fail("multiport needs `-p tcp', `-p udp', `-p udplite', `-p sctp' or `-p dccp'");
  },
  print(m) {
    const list = m.ports.map(([lo, hi]) => (lo === hi ? `${lo}` : `${lo}:${hi}`)).join(",");
    return `${m.invert ? " !" : ""} --${m.dir} ${list}`;
  },
};
