// DNS over UDP port 53 as `tcpdump -n` prints it (print-domain.c, non-verbose): a query as
// `ID[+] TYPE? NAME. (LEN)`, a response as `ID[ RCODE][*][-][|] AN/NS/AR RR[,RR...] (LEN)`. Enough to read the
// CoreDNS traffic a cluster makes; anything it cannot follow ends in tcpdump's `[|domain]`.

import { formatIpv4 } from "./addr.js";
import { get16, get32 } from "./checksum.js";

/** ns_type2str for common types. */
const TYPES: Record<number, string> = { 1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 12: "PTR", 15: "MX", 16: "TXT", 28: "AAAA", 33: "SRV", 41: "OPT", 65: "HTTPS" };
const OPCODES = ["", " IQuery", " Status", " Op3", " Notify", " Update"];
const RCODES = ["", " FormErr", " ServFail", " NXDomain", " NotImp", " Refused", " YXDomain", " YXRRSet", " NXRRSet", " NotAuth", " NotZone"];

const typeName = (t: number) => TYPES[t] ?? `Type${t}`;

/** A domain name at `at` (message starts at `msg`, ends at `end`): the text (with its final dot) and where the name
 *  ends in the message. Compression pointers are followed. */
export function readName(buf: Uint8Array, msg: number, at: number, end: number): { name: string; next: number } | undefined {
  let name = "";
  let next = -1;
  for (let hops = 0; hops < 64; hops++) {
    if (at >= end) return undefined;
    const len = buf[at]!;
    if (len === 0) return { name: name === "" ? "." : name, next: next < 0 ? at + 1 : next };
    if ((len & 0xc0) === 0xc0) {
      // A compression pointer (RFC 1035 4.1.4): continue at the offset it names.
      if (at + 2 > end) return undefined;
      if (next < 0) next = at + 2;
      at = msg + (get16(buf, at) & 0x3fff);
      continue;
    }
    if (at + 1 + len > end) return undefined;
    for (let i = at + 1; i <= at + len; i++) name += String.fromCharCode(buf[i]!);
    name += ".";
    at += 1 + len;
  }
  return undefined;
}

/** ns_rprint() stopped silently: the record's name or fixed fields were not captured (it returns snapend). */
const SNAPEND = Symbol("snapend");

/**
 * One resource record as ns_rprint prints it: ` TYPE DATA`. `text` without `next` means its data was cut short
 * (tcpdump prints the type, then `[|domain]`).
 */
function readRecord(buf: Uint8Array, msg: number, at: number, end: number): { text: string; next?: number } | typeof SNAPEND {
  const n = readName(buf, msg, at, end);
  if (!n || n.next + 10 > end) return SNAPEND;
  const type = get16(buf, n.next);
  const rdlen = get16(buf, n.next + 8);
  const rd = n.next + 10;
  let text = ` ${typeName(type)}`;
  if (rd + rdlen > end) return { text };
  if (type === 1 && rdlen === 4) text += ` ${formatIpv4(get32(buf, rd))}`;
  else if (type === 5 || type === 2 || type === 12) {
    const t = readName(buf, msg, rd, end);
    if (!t) return { text };
    text += ` ${t.name}`;
  }
  return { text, next: rd + rdlen };
}

/** The DNS message in `buf[off, off+len)`; `cap` is the end of the captured bytes. */
export function formatDns(buf: Uint8Array, off: number, len: number, cap: number): string {
  const end = Math.min(off + len, cap);
  if (end - off < 12) return " [|domain]";
  const id = get16(buf, off);
  const b2 = get16(buf, off + 2);
  const [qd, an, ns, ar] = [get16(buf, off + 4), get16(buf, off + 6), get16(buf, off + 8), get16(buf, off + 10)];
  const opcode = OPCODES[(b2 >>> 11) & 15] ?? ` Op${(b2 >>> 11) & 15}`;
  let at = off + 12;
  let s: string;
  if (b2 & 0x8000) {
    const rcode = b2 & 15;
    s = `${id}${opcode}${RCODES[rcode] ?? ` Resp${rcode}`}${b2 & 0x0400 ? "*" : ""}${b2 & 0x0080 ? "" : "-"}${b2 & 0x0200 ? "|" : ""}`;
    if (qd !== 1) s += ` [${qd}q]`;
    for (let i = 0; i < qd; i++) {
      const q = readName(buf, off, at, end);
      if (!q) return s + " [|domain]";
      at = q.next + 4;
    }
    s += ` ${an}/${ns}/${ar}`;
    // ns_print(): the first answer, then more while bytes remain; a record cut in its name or fixed fields ends
    // the walk silently, one cut in its data (or answers left over) ends in [|domain].
    let left = an;
    for (let i = 0; left > 0 && (i === 0 || at < end); i++) {
      if (i > 0) s += ",";
      const r = readRecord(buf, off, at, end);
      left--;
      if (r === SNAPEND) {
        at = end;
        continue;
      }
      s += r.text;
      if (r.next === undefined) return s + " [|domain]";
      at = r.next;
    }
    if (left > 0) return s + " [|domain]";
  } else {
    s = `${id}${opcode}${b2 & 0x0100 ? "+" : ""}${b2 & 0x0010 ? "%" : ""}`;
    if (b2 & 0x6cf) s += ` [b2&3=0x${b2.toString(16)}]`;
    if (qd !== 1) s += ` [${qd}q]`;
    if (an) s += ` [${an}a]`;
    if (ns) s += ` [${ns}n]`;
    if (ar) s += ` [${ar}au]`;
    if (qd) {
      const q = readName(buf, off, at, end);
      if (!q || q.next + 4 > end) return s + " [|domain]";
      s += ` ${typeName(get16(buf, q.next))}? ${q.name}`;
    }
  }
  return s + ` (${len})`;
}
