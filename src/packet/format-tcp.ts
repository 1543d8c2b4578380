// TCP as `tcpdump -n -S` prints it (print-tcp.c, non-verbose): flags in tcpdump's letters, seq only when the
// segment carries data or SYN/FIN/RST, ack when ACK is set, the raw window, urg, options, payload length, and for
// HTTP ports the request or status line (print-http.c via txtproto_print). Split from format.ts by noun.

import { get16 } from "./checksum.js";
import { decodeTcpOptions, type TcpOption } from "./tcp-options.js";
import { TcpView } from "./tcp.js";
import type { FrameBytes } from "./format.js";

/** tcp_flag_values in print-tcp.c, in its order: SYN+ACK prints "S.", PSH+ACK "P.". */
const TCP_FLAG_LETTERS: [number, string][] = [
  [0x01, "F"],
  [0x02, "S"],
  [0x04, "R"],
  [0x08, "P"],
  [0x10, "."],
  [0x20, "U"],
  [0x40, "E"],
  [0x80, "W"],
];

export function tcpFlagsString(flags: number): string {
  let s = "";
  for (const [bit, letter] of TCP_FLAG_LETTERS) if (flags & bit) s += letter;
  return s === "" ? "none" : s;
}

function optionString(o: TcpOption): string {
  switch (o.kind) {
    case "eol":
      return "eol";
    case "nop":
      return "nop";
    case "mss":
      return `mss ${o.mss}`;
    case "wscale":
      return `wscale ${o.shift}`;
    case "sackPermitted":
      return "sackOK";
    case "sack":
      return `sack ${o.blocks.length} ${o.blocks.map(([l, r]) => `{${l}:${r}}`).join("")}`;
    case "timestamp":
      return `TS val ${o.tsval} ecr ${o.tsecr}`;
    case "other":
      return `unknown-${o.type}${o.data ? " 0x" + o.data : ""}`;
    case "raw":
      return "[bad opt]";
  }
}

/** tcp_option_values: the name tcpdump prints before an option's data. */
function optionName(kind: number): string {
  const names: Record<number, string> = { 0: "eol", 1: "nop", 2: "mss", 3: "wscale", 4: "sackOK", 5: "sack", 8: "TS" };
  return names[kind] ?? `unknown-${kind}`;
}

/**
 * Options cut by the capture, as print-tcp.c walks them: each whole option, then at the cut " [|tcp]"; an option
 * whose kind and length bytes were captured but not its data first prints its name (and, for the options tcpdump
 * reads inside its print call, a stray ">": `TS [|tcp]>`, as tcpdump 4.99 prints).
 */
function truncatedOptions(f: FrameBytes, off: number): string {
  const opts = decodeTcpOptions(f.buf, off, f.cap - off);
  const last = opts[opts.length - 1];
  const whole = last?.kind === "raw" ? opts.slice(0, -1) : opts;
  let s = whole.map(optionString).join(",") + (whole.length ? "," : "");
  if (last?.kind === "raw" && last.data.length >= 4) {
    const kind = parseInt(last.data.slice(0, 2), 16);
    s += optionName(kind) + (kind === 2 || optionName(kind).startsWith("unknown") ? " [|tcp]" : " [|tcp]>");
  } else {
    s += " [|tcp]";
  }
  return s;
}

/** TCP ports tcpdump hands to its HTTP printer (HTTP, HTTP alternate, Squid). */
const HTTP_PORTS = new Set([80, 8080, 3128]);
/** print-http.c's request methods (HTTP/1.1 and WebDAV). */
const HTTP_METHODS = new Set(["OPTIONS", "GET", "HEAD", "POST", "PUT", "DELETE", "TRACE", "CONNECT", "PROPFIND", "PROPPATCH", "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK", "ORDERPATCH", "ACL"]);

const printable = (c: number) => c >= 0x20 && c <= 0x7e;

/** fetch_token() of util-print.c: a token ending at a space, and the index of what follows its spaces; 0 if none. */
function fetchToken(buf: Uint8Array, off: number, idx: number, len: number, cap: number): { idx: number; token: string } {
  let token = "";
  for (; idx < len; idx++) {
    if (idx >= cap) return { idx: 0, token: "" };
    const c = buf[off + idx]!;
    if (!printable(c)) return { idx: 0, token: "" };
    if (c === 0x20) break;
    token += String.fromCharCode(c);
  }
  if (token === "") return { idx: 0, token };
  for (; idx < len && idx < cap; idx++) {
    const c = buf[off + idx]!;
    if (c !== 0x20 && c !== 0x09) break;
  }
  return { idx, token };
}

/**
 * txtproto_print() for HTTP, non-verbose: ": HTTP", then ": <first line>" when the first token is a method or the
 * second a 3-digit status; a first line that runs past the captured bytes ends in " [|http]".
 */
function httpSummary(buf: Uint8Array, off: number, len: number, cap: number): string {
  const isCode = (t: string) => /^[0-9]{3}$/.test(t);
  const first = fetchToken(buf, off, 0, len, cap);
  let printThis = false;
  if (first.idx !== 0) {
    printThis = HTTP_METHODS.has(first.token.toUpperCase()) || isCode(first.token);
    const second = fetchToken(buf, off, first.idx, len, cap);
    if (second.idx !== 0 && isCode(second.token)) printThis = true;
  }
  if (!printThis) return ": HTTP";
  // print_txt_line(): up to CR LF or LF; binary data or a lone CR prints nothing more.
  let line = "";
  for (let idx = 0; idx < len; idx++) {
    if (idx >= cap) return ": HTTP [|http]";
    const c = buf[off + idx]!;
    if (c === 0x0a) return `: HTTP: ${line}`;
    if (c === 0x0d) {
      if (idx + 1 >= len) return ": HTTP";
      if (idx + 1 >= cap) return ": HTTP [|http]";
      return buf[off + idx + 1] === 0x0a ? `: HTTP: ${line}` : ": HTTP";
    }
    if (!printable(c) && c !== 0x09) return ": HTTP";
    line += String.fromCharCode(c);
  }
  return `: HTTP: ${line}`;
}

/** The TCP segment at `off` (`len` bytes: the IP payload), after "SRC > DST" are known. */
export function formatTcp(f: FrameBytes, off: number, len: number, src: string, dst: string): string {
  if (f.cap - off < 4 || len < 4) return `${src} > ${dst}: [|tcp]`;
  const sport = get16(f.buf, off);
  const dport = get16(f.buf, off + 2);
  const head = `${src}.${sport} > ${dst}.${dport}: `;
  if (f.cap - off < 20 || len < 20) return head + " [|tcp]";
  const hl = (f.buf[off + 12]! >>> 4) * 4;
  if (hl < 20) return head + ` tcp ${len - hl} [bad hdr length ${hl} - too short, < 20]`;
  if (hl > len) return head + ` [bad hdr length ${hl} - too long, > ${len}]`;
  const t = new TcpView().bind(f.buf, off, len);
  const flags = t.flags;
  const dataLen = t.payloadLen;
  let s = head + `Flags [${tcpFlagsString(flags)}]`;
  if (dataLen > 0 || flags & 0x07) {
    s += dataLen > 0 ? `, seq ${t.seq}:${(t.seq + dataLen) >>> 0}` : `, seq ${t.seq}`;
  }
  if (flags & 0x10) s += `, ack ${t.ack}`;
  s += `, win ${t.window}`;
  if (flags & 0x20) s += `, urg ${t.urgent}`;
  if (t.optionsLen > 0) {
    if (f.cap < t.optionsOff + t.optionsLen) return s + `, options [${truncatedOptions(f, t.optionsOff)}`;
    s += `, options [${decodeTcpOptions(f.buf, t.optionsOff, t.optionsLen).map(optionString).join(",")}]`;
  }
  s += `, length ${dataLen}`;
  if (dataLen > 0 && (HTTP_PORTS.has(sport) || HTTP_PORTS.has(dport))) {
    s += httpSummary(f.buf, t.payloadOff, dataLen, f.cap - t.payloadOff);
  }
  return s;
}
