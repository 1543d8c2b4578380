// Struct layouts of a program, the role BTF plays for cilium-agent and bpftool: field names, types and offsets
// of every @unmanaged class, so the host can print and parse map keys and values by field name. `tcbox build`
// extracts them from the AST (an asc transform) and stores them in the custom section "tcbox.btf" as JSON;
// the field type names are the declared ones (be16, be32, ipv4 are aliases the SDK gives integers).
import { VerifierError } from "./errors.js";

export type FieldType =
  | "u8" | "i8" | "bool" | "u16" | "i16" | "be16" | "u32" | "i32" | "be32" | "ipv4" | "u64" | "i64" | "f32" | "f64"
  // Only in layouts written for the host API (parseLayout): a MAC address and raw bytes.
  | "mac" | "bytes";

export interface FieldLayout {
  name: string;
  type: FieldType;
  offset: number;
  size: number;
}

export interface StructLayout {
  name: string;
  size: number;
  fields: FieldLayout[];
}

export const BTF_SECTION = "tcbox.btf";

const SIZES: Record<string, number> = {
  u8: 1, i8: 1, bool: 1, u16: 2, i16: 2, be16: 2, u32: 4, i32: 4, be32: 4, ipv4: 4, usize: 4, isize: 4,
  u64: 8, i64: 8, f32: 4, f64: 8,
};

/** Layout of a primitive key or value type (a map declared with map_def<u32, u64>). */
export function primitiveLayout(name: string): StructLayout | undefined {
  const size = SIZES[name];
  if (size === undefined) return undefined;
  const type = (name === "usize" ? "u32" : name === "isize" ? "i32" : name) as FieldType;
  return { name, size, fields: [{ name: "value", type, offset: 0, size }] };
}

// Minimal shapes of the AssemblyScript AST nodes the transform reads (duck-typed: asc's classes are not exported as types).
interface AstNamed { text: string }
interface AstMember { name?: AstNamed; type?: { name?: { identifier?: AstNamed } }; flags?: number; decorators?: unknown[] | null; initializer?: unknown }
interface AstStatement { name?: AstNamed; members?: AstMember[]; decorators?: { name: AstNamed & { text?: string } }[] | null; range?: unknown }
interface AstSource { normalizedPath: string; statements: AstStatement[] }

/** AssemblyScript field layout: each field aligned to its own size, in declaration order; size = end of the last. */
export function layoutFields(name: string, fields: { name: string; type: string }[]): StructLayout | undefined {
  const out: FieldLayout[] = [];
  let off = 0;
  for (const f of fields) {
    const size = SIZES[f.type];
    if (size === undefined) return undefined; // a field of a type we cannot describe: no layout
    off = (off + size - 1) & ~(size - 1);
    const type = (f.type === "usize" ? "u32" : f.type === "isize" ? "i32" : f.type) as FieldType;
    out.push({ name: f.name, type, offset: off, size });
    off += size;
  }
  return { name, size: off, fields: out };
}

/** Collect @unmanaged classes from parsed sources (user files and the SDK). */
export function collectLayouts(sources: AstSource[]): StructLayout[] {
  const layouts: StructLayout[] = [];
  for (const src of sources) {
    if (src.normalizedPath.startsWith("~lib/") && !src.normalizedPath.startsWith("~lib/tcbox/")) continue;
    for (const st of src.statements) {
      if (!st.members || !st.name) continue;
      const unmanaged = (st.decorators ?? []).some((d) => (d.name as { text?: string }).text === "unmanaged");
      if (!unmanaged) continue;
      const fields: { name: string; type: string }[] = [];
      let ok = true;
      for (const m of st.members) {
        const tname = m.type?.name?.identifier?.text;
        // Methods have a signature instead of a type; static fields are flagged (CommonFlags.Static = 32).
        if (!m.name || m.type === undefined || ((m.flags ?? 0) & 32) !== 0) continue;
        if (!tname) {
          ok = false;
          continue;
        }
        fields.push({ name: m.name.text, type: tname });
      }
      const l = ok ? layoutFields(st.name.text, fields) : undefined;
      if (l) layouts.push(l);
    }
  }
  return layouts;
}

/** The asc transform: records layouts after parsing and writes them into the module's custom section. */
export class BtfTransform {
  layouts: StructLayout[] = [];
  afterParse(parser: { sources: AstSource[] }): void {
    this.layouts = collectLayouts(parser.sources);
  }
  afterCompile(module: { addCustomSection(name: string, contents: Uint8Array): void }): void {
    module.addCustomSection(BTF_SECTION, new TextEncoder().encode(JSON.stringify(this.layouts)));
  }
}

const FIELD_TYPES = new Set<string>(["u8", "i8", "bool", "u16", "i16", "be16", "u32", "i32", "be32", "ipv4", "u64", "i64", "f32", "f64", "mac", "bytes"]);
/** No struct is bigger than the largest map value (validateSpec's value_size limit). */
const MAX_STRUCT = 65536;

const show = (v: unknown) => (v === undefined ? "(none)" : JSON.stringify(v));
const isCount = (v: unknown, max: number): v is number => typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= max;

/** Why `v` is not a struct layout a map key or value can be read and written by, or undefined if it is one. */
function layoutProblem(v: unknown): string | undefined {
  if (typeof v !== "object" || v === null) return "not an object";
  const l = v as Partial<Record<keyof StructLayout, unknown>>;
  if (typeof l.name !== "string" || l.name === "") return "no name";
  if (!isCount(l.size, MAX_STRUCT)) return `${l.name}: size ${show(l.size)} is not an integer 0..${MAX_STRUCT}`;
  if (!Array.isArray(l.fields)) return `${l.name}: fields is not an array`;
  for (const [i, f] of (l.fields as unknown[]).entries()) {
    const at = `${l.name}: field ${i + 1}`;
    if (typeof f !== "object" || f === null) return `${at}: not an object`;
    const { name, type, offset, size } = f as Partial<Record<keyof FieldLayout, unknown>>;
    if (typeof name !== "string" || name === "") return `${at}: no name`;
    if (typeof type !== "string" || !FIELD_TYPES.has(type)) return `${at} (${name}): unknown type ${show(type)}`;
    const want = type === "mac" ? 6 : SIZES[type];
    if (!isCount(size, MAX_STRUCT) || (want !== undefined ? size !== want : size === 0)) return `${at} (${name}): size ${show(size)} does not fit type ${type}`;
    if (!isCount(offset, MAX_STRUCT) || offset + size > l.size) return `${at} (${name}): offset ${show(offset)} + size ${size} runs past the struct's ${l.size} bytes`;
  }
  return undefined;
}

/**
 * The layouts in a module's tcbox.btf section (none if it has no such section). A section that is not a JSON
 * array of well-formed layouts is a malformed program: a VerifierError naming the layout and field, as the kernel
 * refuses BTF it cannot check (btf_check_*), rather than layouts that would read outside the key or value later.
 */
export function decodeBtf(sections: ArrayBuffer[], where: string): StructLayout[] {
  if (sections.length === 0) return [];
  const fail = (msg: string): never => {
    throw new VerifierError(`${BTF_SECTION} section: ${msg}`, where);
  };
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder().decode(sections[0]!));
  } catch (e) {
    return fail(`not JSON (${(e as Error).message})`);
  }
  if (!Array.isArray(parsed)) return fail("not an array of struct layouts");
  for (const [i, l] of parsed.entries()) {
    const problem = layoutProblem(l);
    if (problem !== undefined) fail(`layout ${i + 1}: ${problem}`);
  }
  return parsed as StructLayout[];
}
