// Typed keys and values: encode and decode map bytes by a struct layout (from the program's BTF section or
// written by hand), like cilium/ebpf's binary marshalling of Go structs. Setup and printing only.
import { formatIpv4, formatMac, parseIpv4, parseMac } from "../../packet/addr.js";
import { layoutFields, type FieldLayout, type StructLayout } from "../btf.js";

export type FieldValue = number | string | boolean;
export type StructValue = Record<string, FieldValue>;

export class StructError extends Error {}

/**
 * A layout from text: "addr:ipv4 dport:be16 proto:u8 pad:u8" or with bytes: "mac:mac data:bytes[6]". Fields
 * are aligned like AssemblyScript (and C) lay them out: each to its own size.
 */
export function parseLayout(name: string, text: string): StructLayout {
  const fields: FieldLayout[] = [];
  let off = 0;
  for (const tok of text.trim().split(/[\s,;]+/)) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*):([a-z0-9]+)(?:\[(\d+)\])?$/.exec(tok);
    if (!m) throw new StructError(`layout ${name}: cannot parse field "${tok}" (want name:type)`);
    const [, fname, type, n] = m;
    if (type === "bytes" || type === "mac") {
      const size = type === "mac" ? 6 : Number(n ?? 0);
      if (!(size > 0)) throw new StructError(`layout ${name}: field ${fname}: bytes[N] needs N > 0`);
      fields.push({ name: fname!, type, offset: off, size });
      off += size;
      continue;
    }
    const one = layoutFields(name, [{ name: fname!, type: type! }]);
    if (!one) throw new StructError(`layout ${name}: field ${fname}: unknown type ${type}`);
    const f = one.fields[0]!;
    off = (off + f.size - 1) & ~(f.size - 1);
    fields.push({ ...f, offset: off });
    off += f.size;
  }
  return { name, size: off, fields };
}

function toInt(v: FieldValue, what: string): bigint {
  if (typeof v === "boolean") return v ? 1n : 0n;
  if (typeof v === "number") {
    if (!Number.isInteger(v)) throw new StructError(`${what}: ${v} is not an integer`);
    return BigInt(v);
  }
  const t = v.trim();
  if (!/^-?(0x[0-9a-f]+|\d+)$/i.test(t)) throw new StructError(`${what}: "${v}" is not an integer`);
  return t.startsWith("-") ? -BigInt(t.slice(1)) : BigInt(t);
}

/** Write `value` into `out` (zeroed first) by `layout`. Unknown fields are errors; missing ones stay 0. */
export function encodeStruct(layout: StructLayout, value: StructValue | FieldValue, out: Uint8Array, what: string): void {
  out.fill(0);
  const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
  // A primitive layout (one field named "value") accepts the bare value.
  if (value === null || Array.isArray(value)) throw new StructError(`${what}: want {field: value, ...} or a bare value, got ${JSON.stringify(value)}`);
  const obj: StructValue = typeof value === "object" ? value : { [layout.fields[0]?.name ?? "value"]: value };
  const known = new Set(layout.fields.map((f) => f.name));
  for (const k of Object.keys(obj)) {
    if (!known.has(k)) throw new StructError(`${what}: no field "${k}" in ${layout.name} (fields: ${[...known].join(", ")})`);
  }
  for (const f of layout.fields) {
    const v = obj[f.name];
    if (v === undefined) continue;
    const fw = `${what}.${f.name}`;
    if (typeof v !== "number" && typeof v !== "string" && typeof v !== "boolean") throw new StructError(`${fw}: want a number, string or boolean, got ${JSON.stringify(v)}`);
    switch (f.type) {
      case "ipv4": {
        const n = typeof v === "string" && v.includes(".") ? parseIpv4(v) : Number(toInt(v, fw));
        dv.setUint32(f.offset, n >>> 0, false);
        break;
      }
      case "mac": {
        const bytes = typeof v === "string" ? parseMac(v) : undefined;
        if (!bytes) throw new StructError(`${fw}: want a MAC like 02:00:00:00:00:01`);
        out.set(bytes as Uint8Array, f.offset);
        break;
      }
      case "bytes": {
        const hex = String(v).replace(/[\s:]/g, "");
        if (!/^([0-9a-f]{2})*$/i.test(hex) || hex.length / 2 > f.size) throw new StructError(`${fw}: want up to ${f.size} hex bytes`);
        for (let i = 0; i < hex.length / 2; i++) out[f.offset + i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
        break;
      }
      case "f32":
        dv.setFloat32(f.offset, Number(v), true);
        break;
      case "f64":
        dv.setFloat64(f.offset, Number(v), true);
        break;
      default: {
        const n = toInt(v, fw);
        const bits = BigInt(f.size * 8);
        const signed = f.type.startsWith("i");
        const min = signed ? -(1n << (bits - 1n)) : 0n;
        const max = signed ? (1n << (bits - 1n)) - 1n : (1n << bits) - 1n;
        if (n < min || n > max) throw new StructError(`${fw}: ${n} does not fit in ${f.type}`);
        const u = BigInt.asUintN(Number(bits), n);
        const be = f.type === "be16" || f.type === "be32";
        for (let i = 0; i < f.size; i++) {
          const byte = Number((u >> BigInt(8 * i)) & 0xffn);
          out[f.offset + (be ? f.size - 1 - i : i)] = byte;
        }
      }
    }
  }
}

export function decodeStruct(layout: StructLayout, bytes: Uint8Array): StructValue {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: StructValue = {};
  for (const f of layout.fields) {
    switch (f.type) {
      case "ipv4":
        out[f.name] = formatIpv4(dv.getUint32(f.offset, false));
        break;
      case "mac":
        out[f.name] = formatMac(bytes.subarray(f.offset, f.offset + 6) as never);
        break;
      case "bytes":
        out[f.name] = Array.from(bytes.subarray(f.offset, f.offset + f.size), (b) => b.toString(16).padStart(2, "0")).join("");
        break;
      case "bool":
        out[f.name] = bytes[f.offset] !== 0;
        break;
      case "f32":
        out[f.name] = dv.getFloat32(f.offset, true);
        break;
      case "f64":
        out[f.name] = dv.getFloat64(f.offset, true);
        break;
      default: {
        const be = f.type === "be16" || f.type === "be32";
        let u = 0n;
        for (let i = 0; i < f.size; i++) u |= BigInt(bytes[f.offset + (be ? f.size - 1 - i : i)]!) << BigInt(8 * i);
        const n = f.type.startsWith("i") ? BigInt.asIntN(f.size * 8, u) : u;
        out[f.name] = n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n.toString();
      }
    }
  }
  return out;
}

/** bpftool's hex: "0a 00 00 01 1f 90 ...". */
export function hexBytes(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join(" ");
}

/** A value written as bpftool takes it: "0a 00 00 01" or "0x0a 0x00 ...". */
export function parseHexBytes(text: string, size: number, what: string): Uint8Array {
  const toks = text.trim().split(/\s+/).filter((t) => t.length > 0);
  if (toks.length !== size) throw new StructError(`${what}: want ${size} bytes, got ${toks.length}`);
  const out = new Uint8Array(size);
  toks.forEach((t, i) => {
    const v = parseInt(t.replace(/^0x/i, ""), 16);
    if (!/^(0x)?[0-9a-f]{1,2}$/i.test(t) || Number.isNaN(v)) throw new StructError(`${what}: "${t}" is not a hex byte`);
    out[i] = v;
  });
  return out;
}
