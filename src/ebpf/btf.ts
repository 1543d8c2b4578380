// Struct layouts of a program, the role BTF plays for cilium-agent and bpftool: field names, types and offsets
// of every @unmanaged class, so the host can print and parse map keys and values by field name. `tcbox build`
// extracts them from the AST (an asc transform) and stores them in the custom section "tcbox.btf" as JSON;
// the field type names are the declared ones (be16, be32, ipv4 are aliases the SDK gives integers).

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

export function decodeBtf(sections: ArrayBuffer[]): StructLayout[] {
  if (sections.length === 0) return [];
  try {
    const parsed = JSON.parse(new TextDecoder().decode(sections[0]!)) as StructLayout[];
    return Array.isArray(parsed) ? parsed : [];
  } catch {
    return [];
  }
}
