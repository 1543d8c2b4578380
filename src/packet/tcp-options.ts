// TCP options as plain objects for the parsed form and builders (RFC 9293 3.2, RFC 7323, RFC 2018).
// Decoding never throws: like tcp_parse_options(), a malformed option ends the walk; the undecodable rest is kept
// as raw bytes so emit(parse(x)) reproduces x exactly.
import {
  TCPOPT_EOL,
  TCPOPT_MSS,
  TCPOPT_NOP,
  TCPOPT_SACK,
  TCPOPT_SACK_PERM,
  TCPOPT_TIMESTAMP,
  TCPOPT_WINDOW,
} from "./constants.js";
import { fromHex, toHex } from "./hex.js";

export type TcpOption =
  | { kind: "eol" }
  | { kind: "nop" }
  | { kind: "mss"; mss: number }
  | { kind: "wscale"; shift: number }
  | { kind: "sackPermitted" }
  | { kind: "sack"; blocks: Array<[number, number]> }
  | { kind: "timestamp"; tsval: number; tsecr: number }
  /** Any other option: `type` byte and its data (hex). */
  | { kind: "other"; type: number; data: string }
  /** Bytes that do not decode (after EOL, or a bad length), kept verbatim as hex. */
  | { kind: "raw"; data: string };

const u32 = (b: Uint8Array, p: number) => ((b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!) >>> 0;

/** Decode `len` option bytes at `off`. */
export function decodeTcpOptions(buf: Uint8Array, off: number, len: number): TcpOption[] {
  const out: TcpOption[] = [];
  const end = off + len;
  let p = off;
  while (p < end) {
    const k = buf[p]!;
    if (k === TCPOPT_NOP) {
      out.push({ kind: "nop" });
      p++;
      continue;
    }
    if (k === TCPOPT_EOL) {
      out.push({ kind: "eol" });
      p++;
      // Zero padding up to the next 4-byte boundary is what emit re-creates; anything else stays raw.
      if (!allZero(buf, p, end) || end - off !== padded(p - off)) {
        if (p < end) out.push({ kind: "raw", data: toHex(buf, p, end - p) });
      }
      return out;
    }
    const l = p + 1 < end ? buf[p + 1]! : 0;
    if (l < 2 || p + l > end) {
      out.push({ kind: "raw", data: toHex(buf, p, end - p) });
      return out;
    }
    out.push(decodeOne(buf, p, k, l));
    p += l;
  }
  return out;
}

function decodeOne(buf: Uint8Array, p: number, k: number, l: number): TcpOption {
  if (k === TCPOPT_MSS && l === 4) return { kind: "mss", mss: (buf[p + 2]! << 8) | buf[p + 3]! };
  if (k === TCPOPT_WINDOW && l === 3) return { kind: "wscale", shift: buf[p + 2]! };
  if (k === TCPOPT_SACK_PERM && l === 2) return { kind: "sackPermitted" };
  if (k === TCPOPT_TIMESTAMP && l === 10) return { kind: "timestamp", tsval: u32(buf, p + 2), tsecr: u32(buf, p + 6) };
  if (k === TCPOPT_SACK && l >= 10 && (l - 2) % 8 === 0) {
    const blocks: Array<[number, number]> = [];
    for (let q = p + 2; q < p + l; q += 8) blocks.push([u32(buf, q), u32(buf, q + 4)]);
    return { kind: "sack", blocks };
  }
  return { kind: "other", type: k, data: toHex(buf, p + 2, l - 2) };
}

function allZero(buf: Uint8Array, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (buf[i] !== 0) return false;
  return true;
}

const padded = (n: number) => (n + 3) & ~3;

/** Encode options, zero-padded to a multiple of 4 bytes (the data offset unit). */
export function encodeTcpOptions(opts: readonly TcpOption[]): Uint8Array {
  const bytes: number[] = [];
  const u16 = (v: number) => bytes.push((v >>> 8) & 255, v & 255);
  const u32w = (v: number) => bytes.push((v >>> 24) & 255, (v >>> 16) & 255, (v >>> 8) & 255, v & 255);
  for (const o of opts) {
    switch (o.kind) {
      case "eol":
        bytes.push(TCPOPT_EOL);
        break;
      case "nop":
        bytes.push(TCPOPT_NOP);
        break;
      case "mss":
        bytes.push(TCPOPT_MSS, 4);
        u16(o.mss);
        break;
      case "wscale":
        bytes.push(TCPOPT_WINDOW, 3, o.shift);
        break;
      case "sackPermitted":
        bytes.push(TCPOPT_SACK_PERM, 2);
        break;
      case "sack":
        bytes.push(TCPOPT_SACK, 2 + 8 * o.blocks.length);
        for (const [l, r] of o.blocks) {
          u32w(l);
          u32w(r);
        }
        break;
      case "timestamp":
        bytes.push(TCPOPT_TIMESTAMP, 10);
        u32w(o.tsval);
        u32w(o.tsecr);
        break;
      case "other": {
        const d = fromHex(o.data);
        bytes.push(o.type, 2 + d.length, ...d);
        break;
      }
      case "raw":
        bytes.push(...fromHex(o.data));
        break;
    }
  }
  const out = new Uint8Array(padded(bytes.length));
  out.set(bytes);
  return out;
}
