// Multi-document YAML in, one Field view per document out. A Field carries its path (spec.ports[0].port) and
// reaches back to the YAML node for the line number, so every validation error names file, document, object
// and field like kube-apiserver's field errors do.
import { isCollection, LineCounter, parseAllDocuments, visit, type Document, type Node } from "yaml";
import { ManifestError } from "./errors.js";

export type PathElem = string | number;

export function formatPath(path: readonly PathElem[]): string {
  let s = "";
  for (const p of path) {
    if (typeof p === "number") s += `[${p}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(p)) s += s === "" ? p : `.${p}`;
    else s += `[${p}]`;
  }
  return s;
}

/** One YAML document of a manifest file. */
export class ManifestDoc {
  /** "Service default/web" once kind and metadata are known. */
  label = "";
  readonly root: Field;
  constructor(
    readonly file: string,
    readonly index: number, // 1-based
    private readonly doc: Document,
    private readonly lines: LineCounter,
    value: unknown,
  ) {
    this.root = new Field(this, [], value);
  }

  where(path: readonly PathElem[]): string {
    const obj = this.label ? ` (${this.label})` : "";
    const field = formatPath(path);
    return `${this.file}: document ${this.index}${obj}${field ? `, ${field}` : ""}`;
  }

  lineOf(path: readonly PathElem[]): number | undefined {
    // Walk up until a node exists (a missing field is reported at its parent's line).
    for (let n = path.length; n >= 0; n--) {
      const node = this.doc.getIn(path.slice(0, n), true) as { range?: [number, number, number] } | undefined;
      if (node && typeof node === "object" && node.range) return this.lines.linePos(node.range[0]).line;
    }
    return undefined;
  }

  error(path: readonly PathElem[], message: string): ManifestError {
    return new ManifestError(message, this.where(path), this.lineOf(path));
  }
}

const TOO_DEEP = "collections nested too deeply for the YAML parser";

/**
 * One parsed YAML document as a plain JSON-like value, or `fail(message, line)`'s error: the first syntax error;
 * a collection used as a mapping key (`? [a, b]`: no JSON form, and toJS would stringify it with a process
 * warning on stderr); an undefined alias or an alias bomb (the yaml library's ReferenceError from toJS);
 * nesting past the parser's stack (which it reports as "Maximum call stack size exceeded").
 */
export function yamlDocValue(doc: Document, lines: LineCounter, fail: (message: string, line?: number) => Error): unknown {
  const first = doc.errors[0];
  if (first) {
    const message = first.code === "RESOURCE_EXHAUSTION" && /call stack/i.test(first.message) ? TOO_DEEP : first.message.split("\n")[0]!;
    throw fail(message, first.linePos?.[0]?.line);
  }
  let badKey: Node | null = null;
  visit(doc, {
    Pair(_k, pair) {
      if (isCollection(pair.key)) {
        badKey = pair.key;
        return visit.BREAK;
      }
    },
  });
  if (badKey !== null) {
    const range = (badKey as Node).range;
    throw fail("a mapping key must be a string, not a collection", range ? lines.linePos(range[0]).line : undefined);
  }
  try {
    return doc.toJS({ maxAliasCount: 100 }) as unknown;
  } catch (e) {
    if (e instanceof ReferenceError) throw fail(e.message);
    if (e instanceof RangeError && /call stack/i.test(e.message)) throw fail(TOO_DEEP);
    throw e;
  }
}

/** Parse a file into documents; YAML errors are ManifestErrors with the line. Empty documents are skipped. */
export function readManifests(text: string, file: string): ManifestDoc[] {
  const lines = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter: lines, uniqueKeys: true });
  const out: ManifestDoc[] = [];
  let index = 0;
  for (const doc of Array.isArray(docs) ? docs : [docs]) {
    index++;
    const value = yamlDocValue(doc, lines, (message, line) => new ManifestError(message, `${file}${line ? `:${line}` : ""}: document ${index}`, line));
    if (value === null || value === undefined) continue;
    out.push(new ManifestDoc(file, index, doc, lines, value));
  }
  return out;
}

/** A typed view of one value in a document, with its path. */
export class Field {
  constructor(
    readonly doc: ManifestDoc,
    readonly path: PathElem[],
    readonly value: unknown,
  ) {}

  get present(): boolean {
    return this.value !== undefined && this.value !== null;
  }

  error(message: string): ManifestError {
    return this.doc.error(this.path, message);
  }

  get(key: string): Field {
    const v = this.value;
    const child = v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>)[key] : undefined;
    return new Field(this.doc, [...this.path, key], child);
  }

  /** The object's keys (error if not an object). */
  map(): Field[] {
    if (!this.present) return [];
    const v = this.value;
    if (typeof v !== "object" || Array.isArray(v)) throw this.error("must be an object");
    return Object.keys(v as object).map((k) => this.get(k));
  }

  keyName(): string {
    return String(this.path[this.path.length - 1]);
  }

  list(): Field[] {
    if (!this.present) return [];
    if (!Array.isArray(this.value)) throw this.error("must be a list");
    return this.value.map((v, i) => new Field(this.doc, [...this.path, i], v));
  }

  str(opts: { required?: boolean; def?: string } = {}): string {
    if (!this.present) {
      if (opts.required) throw this.error("Required value");
      return opts.def ?? "";
    }
    if (typeof this.value !== "string") throw this.error(`must be a string, got ${JSON.stringify(this.value)}`);
    if (opts.required && this.value === "") throw this.error("Required value");
    return this.value;
  }

  optStr(): string | null {
    return this.present ? this.str() : null;
  }

  int(opts: { required?: boolean; def?: number; min?: number; max?: number; range?: string } = {}): number {
    if (!this.present) {
      if (opts.required) throw this.error("Required value");
      return opts.def ?? 0;
    }
    const v = this.value;
    if (typeof v !== "number" || !Number.isInteger(v)) throw this.error(`must be an integer, got ${JSON.stringify(v)}`);
    if ((opts.min !== undefined && v < opts.min) || (opts.max !== undefined && v > opts.max)) {
      throw this.error(`must be ${opts.range ?? `${opts.min ?? ""}-${opts.max ?? ""}`}`);
    }
    return v;
  }

  bool(def = false): boolean {
    if (!this.present) return def;
    if (typeof this.value !== "boolean") throw this.error(`must be a boolean, got ${JSON.stringify(this.value)}`);
    return this.value;
  }

  oneOf<T extends string>(allowed: readonly T[], def: T): T {
    if (!this.present) return def;
    const v = this.str();
    if (!(allowed as readonly string[]).includes(v)) {
      throw this.error(`Unsupported value: "${v}": supported values: ${allowed.map((a) => `"${a}"`).join(", ")}`);
    }
    return v as T;
  }

  /** A string map such as labels or a selector: values must be strings. */
  stringMap(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const f of this.map()) {
      const v = f.value;
      if (typeof v !== "string") throw f.error(`must be a string, got ${JSON.stringify(v)}`);
      out[f.keyName()] = v;
    }
    return out;
  }

  strList(): string[] {
    return this.list().map((f) => f.str({ required: true }));
  }
}
