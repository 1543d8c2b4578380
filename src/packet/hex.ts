// Hex text <-> bytes, for tests, golden files and printing (never the per-packet path).
import { PacketError } from "./error.js";

/** "45 00 00 1c" or "4500001c" (whitespace and ':' ignored) -> bytes. */
export function fromHex(text: string): Uint8Array {
  const clean = text.replace(/[\s:]/g, "");
  if (clean.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(clean)) {
    throw new PacketError("malformed", "hex", 0, `not an even-length hex string`);
  }
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export function toHex(buf: Uint8Array, off = 0, len = buf.length - off): string {
  let s = "";
  for (let i = off; i < off + len; i++) s += buf[i]!.toString(16).padStart(2, "0");
  return s;
}
