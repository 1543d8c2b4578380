// Name tables iptables uses when parsing and printing: protocols (iptables' own list, then /etc/protocols as
// Debian ships it), a few services (getservbyname), ICMP types (libxt_icmp's icmp_codes).
import { type ArgCursor, parseUint } from "./tokens.js";

export const IPPROTO_ICMP = 1;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
export const IPPROTO_SCTP = 132;

const PROTOCOLS: Array<[string, number]> = [
  ["all", 0], ["icmp", 1], ["igmp", 2], ["ipencap", 4], ["st", 5], ["tcp", 6], ["egp", 8], ["igp", 9], ["pup", 12],
  ["udp", 17], ["hmp", 20], ["xns-idp", 22], ["rdp", 27], ["iso-tp4", 29], ["dccp", 33], ["xtp", 36], ["ddp", 37],
  ["idpr-cmtp", 38], ["ipv6", 41], ["ipv6-route", 43], ["ipv6-frag", 44], ["idrp", 45], ["rsvp", 46], ["gre", 47],
  ["esp", 50], ["ah", 51], ["skip", 57], ["ipv6-icmp", 58], ["ipv6-nonxt", 59], ["ipv6-opts", 60], ["rspf", 73],
  ["vmtp", 81], ["eigrp", 88], ["ospf", 89], ["ax.25", 93], ["ipip", 94], ["etherip", 97], ["encap", 98], ["pim", 103],
  ["ipcomp", 108], ["vrrp", 112], ["l2tp", 115], ["isis", 124], ["sctp", 132], ["fc", 133], ["mobility-header", 135],
  ["udplite", 136], ["mpls-in-ip", 137], ["manet", 138], ["hip", 139], ["shim6", 140], ["wesp", 141], ["rohc", 142],
  ["ethernet", 143], ["mptcp", 262],
];
const protoByName = new Map(PROTOCOLS.map(([n, v]) => [n, v]));
const protoByNum = new Map(PROTOCOLS.filter(([, v]) => v < 256).map(([n, v]) => [v, n]));
// iptables' xtables_chain_protos win over /etc/protocols when printing.
protoByNum.set(58, "ipv6-icmp");

export function parseProto(text: string, cur: ArgCursor): number {
  const lower = text.toLowerCase();
  const named = protoByName.get(lower);
  if (named !== undefined) return named;
  if (/^[0-9]+$/.test(text)) return parseUint(text, 255, "protocol", cur);
  return cur.fail(`unknown protocol "${text}" specified`);
}

export function protoName(num: number): string {
  return protoByNum.get(num) ?? String(num);
}

const SERVICES: Record<string, number> = {
  ftp: 21, ssh: 22, telnet: 23, smtp: 25, domain: 53, bootps: 67, bootpc: 68, tftp: 69, http: 80, pop3: 110,
  ntp: 123, imap2: 143, snmp: 161, bgp: 179, ldap: 389, https: 443, syslog: 514, ldaps: 636, imaps: 993,
  pop3s: 995, mysql: 3306, postgresql: 5432,
};

export function parsePort(text: string, cur: ArgCursor): number {
  if (/^[0-9]+$/.test(text)) return parseUint(text, 65535, "port", cur);
  const s = SERVICES[text];
  if (s === undefined) return cur.fail(`invalid port/service \`${text}' specified`);
  return s;
}

/** `a:b`, `a`, `:b` (0..b), `a:` (a..65535) as xtables_parse_port_range does. */
export function parsePortRange(text: string, cur: ArgCursor): [number, number] {
  const c = text.indexOf(":");
  if (c < 0) {
    const p = parsePort(text, cur);
    return [p, p];
  }
  const lo = c === 0 ? 0 : parsePort(text.slice(0, c), cur);
  const hi = c === text.length - 1 ? 65535 : parsePort(text.slice(c + 1), cur);
  if (lo > hi) cur.fail(`invalid portrange (min > max) "${text}"`);
  return [lo, hi];
}

/** libxt_icmp's table: name, type, code range. */
const ICMP_CODES: Array<[string, number, number, number]> = [
  ["any", 0xff, 0, 0xff], ["echo-reply", 0, 0, 0xff], ["destination-unreachable", 3, 0, 0xff],
  ["network-unreachable", 3, 0, 0], ["host-unreachable", 3, 1, 1], ["protocol-unreachable", 3, 2, 2],
  ["port-unreachable", 3, 3, 3], ["fragmentation-needed", 3, 4, 4], ["source-route-failed", 3, 5, 5],
  ["network-unknown", 3, 6, 6], ["host-unknown", 3, 7, 7], ["network-prohibited", 3, 9, 9],
  ["host-prohibited", 3, 10, 10], ["TOS-network-unreachable", 3, 11, 11], ["TOS-host-unreachable", 3, 12, 12],
  ["communication-prohibited", 3, 13, 13], ["host-precedence-violation", 3, 14, 14], ["precedence-cutoff", 3, 15, 15],
  ["source-quench", 4, 0, 0xff], ["redirect", 5, 0, 0xff], ["network-redirect", 5, 0, 0], ["host-redirect", 5, 1, 1],
  ["TOS-network-redirect", 5, 2, 2], ["TOS-host-redirect", 5, 3, 3], ["echo-request", 8, 0, 0xff],
  ["router-advertisement", 9, 0, 0xff], ["router-solicitation", 10, 0, 0xff], ["time-exceeded", 11, 0, 0xff],
  ["ttl-zero-during-transit", 11, 0, 0], ["ttl-zero-during-reassembly", 11, 1, 1], ["parameter-problem", 12, 0, 0xff],
  ["ip-header-bad", 12, 0, 0], ["required-option-missing", 12, 1, 1], ["timestamp-request", 13, 0, 0xff],
  ["timestamp-reply", 14, 0, 0xff], ["address-mask-request", 17, 0, 0xff], ["address-mask-reply", 18, 0, 0xff],
];

/** `--icmp-type NAME`, `TYPE` or `TYPE/CODE` → type and code range (type 0xff = any). */
export function parseIcmpType(text: string, cur: ArgCursor): { type: number; codeMin: number; codeMax: number } {
  const named = ICMP_CODES.filter(([n]) => n.toLowerCase().startsWith(text.toLowerCase()));
  const exact = named.find(([n]) => n.toLowerCase() === text.toLowerCase());
  if (exact ?? named.length === 1) {
    const [, type, codeMin, codeMax] = exact ?? named[0]!;
    return { type, codeMin, codeMax };
  }
  if (named.length > 1) cur.fail(`Ambiguous ICMP type \`${text}'`);
  const m = /^([0-9]+)(?:\/([0-9]+))?$/.exec(text);
  if (!m) return cur.fail(`Invalid ICMP type \`${text}'`);
  const type = parseUint(m[1]!, 255, "ICMP type", cur);
  if (m[2] === undefined) return { type, codeMin: 0, codeMax: 0xff };
  const code = parseUint(m[2], 255, "ICMP code", cur);
  return { type, codeMin: code, codeMax: code };
}
