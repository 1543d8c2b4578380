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

/** TCP ports tcpdump hands to its HTTP printer (HTTP, HTTP alternate, Squid). */
const HTTP_PORTS = new Set([80, 8080, 3128]);
const HTTP_METHODS = ["GET", "PUT", "POST", "HEAD", "DELETE", "OPTIONS", "TRACE", "CONNECT", "PATCH"];

/** print-http.c: ": HTTP", plus ": <first line>" when it is a request line or a status line. */
function httpSummary(buf: Uint8Array, off: number, len: number): string {
  let end = off;
  const max = off + Math.min(len, 300);
  while (end < max && buf[end] !== 0x0d && buf[end] !== 0x0a) end++;
  if (end >= max || buf[end] !== 0x0d || buf[end + 1] !== 0x0a) return ": HTTP";
  let line = "";
  for (let i = off; i < end; i++) {
    const c = buf[i]!;
    if (c < 0x20 || c > 0x7e) return ": HTTP";
    line += String.fromCharCode(c);
  }
  const word = line.split(" ")[0]!;
  return HTTP_METHODS.includes(word) || word.startsWith("HTTP/") ? `: HTTP: ${line}` : ": HTTP";
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
    if (f.cap < t.optionsOff + t.optionsLen) return s + ", options [|tcp]";
    s += `, options [${decodeTcpOptions(f.buf, t.optionsOff, t.optionsLen).map(optionString).join(",")}]`;
  }
  s += `, length ${dataLen}`;
  if (dataLen > 0 && (HTTP_PORTS.has(sport) || HTTP_PORTS.has(dport))) {
    s += httpSummary(f.buf, t.payloadOff, Math.min(dataLen, f.cap - t.payloadOff));
  }
  return s;
}
