// Build: AssemblyScript source -> WebAssembly, in-process through the compiler's API (asc.main), so a program
// compiles in well under 2 s without spawning a process. Options and why:
//   --runtime stub   no garbage collector: programs allocate nothing on the packet path (static buffers only);
//   -O3 --noAssert   fast code; the SDK's own bounds checks are explicit, not assert()s;
//   --importMemory   the program runs on the kernel's one shared memory (maps, packets, contexts);
//   --memoryBase N   its static data goes to the region the loader reserved for it (see runtime.ts).
// `import ... from "tcbox"` resolves to this repository's assembly/ directory.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import binaryen from "binaryen";
import { BtfTransform, type StructLayout } from "./btf.js";
import { CompileError } from "./errors.js";
import { SHARED_MAX_PAGES } from "./memory.js";

export { SDK_DIR } from "./paths.js";
import { SDK_DIR } from "./paths.js";
const SDK_MARK = "node_modules/tcbox/";

export interface CompileOptions {
  memoryBase: number;
  /** Shown in diagnostics instead of the absolute path. */
  displayName?: string;
  /** Source text to use instead of reading `file` (tests, generated programs). */
  source?: string;
  optimize?: boolean;
  /**
   * Build for a shared memory (worker threads): asc --sharedMemory with the threads feature, and the SDK's map
   * helpers take map locks (TCBOX_SHARED). `lane`: the base address of the worker's control block, contexts and
   * packet arena (TCBOX_LANE; 0 = the kernel's own, see src/ebpf/lanes.ts).
   */
  shared?: boolean;
  lane?: number;
}

/** The asc options of a shared-memory / lane build (empty for the default build). */
function threadArgs(opts: CompileOptions): string[] {
  const out: string[] = [];
  if (opts.shared) out.push("--sharedMemory", "--enable", "threads", "--maximumMemory", String(SHARED_MAX_PAGES), "--use", "TCBOX_SHARED=1");
  if (opts.lane) out.push("--use", `TCBOX_LANE=${opts.lane}`);
  return out;
}
/** The cache-key part of the thread options ("" for the default build, so its keys do not change). */
function threadKey(opts: CompileOptions): string {
  return opts.shared || opts.lane ? `|shared=${opts.shared === true}|lane=${opts.lane ?? 0}` : "";
}

export interface CompileResult {
  wasm: Uint8Array;
  layouts: StructLayout[];
  ms: number;
}

type Asc = typeof import("assemblyscript/asc");
let ascModule: Promise<Asc> | undefined;
function loadAsc(): Promise<Asc> {
  ascModule ??= import("assemblyscript/asc");
  return ascModule;
}

const cache = new Map<string, CompileResult>();

/** Compile one program file. Errors: CompileError listing `FILE:LINE:COL: message` for each diagnostic. */
export async function compileProgram(file: string, opts: CompileOptions): Promise<CompileResult> {
  const abs = resolve(file);
  const source = opts.source ?? readSource(abs, opts.displayName ?? file);
  const key = `${abs}\0${opts.memoryBase}\0${opts.optimize !== false}${threadKey(opts)}\0${source}`;
  const hit = cache.get(key) ?? diskCacheGet(abs, source, opts);
  if (hit) {
    cache.set(key, hit);
    return hit;
  }
  const asc = (await loadAsc()).default;
  const t0 = performance.now();
  const baseDir = dirname(abs);
  const entry = relative(baseDir, abs);
  const outputs = new Map<string, Uint8Array>();
  const diagnostics: string[] = [];
  const btf = new BtfTransform();
  const texts = new Map<string, string>();
  // Files outside the SDK the compiler read (and paths it probed that did not exist): the disk cache's dependencies.
  const deps = new Map<string, string | null>();
  const display = opts.displayName ?? file;
  const argv = [entry, "--baseDir", baseDir, "--runtime", "stub", "--noAssert", "--importMemory", "--memoryBase", String(opts.memoryBase), "--noExportMemory", "-o", "out.wasm"];
  argv.push(...(opts.optimize === false ? ["-O0"] : ["-O3"]));
  argv.push(...threadArgs(opts));
  const result = await asc.main(argv, {
    readFile: (name: string, dir: string) => {
      const p = resolve(dir, name);
      if (p === abs) {
        texts.set(relative(baseDir, p), source);
        return source;
      }
      const i = p.indexOf(SDK_MARK);
      const real = i >= 0 ? resolve(SDK_DIR, p.slice(i + SDK_MARK.length)) : p;
      if (!existsSync(real)) {
        if (i < 0) deps.set(real, null);
        return null;
      }
      const text = readFileSync(real, "utf8");
      if (i < 0) deps.set(real, text);
      texts.set(i >= 0 ? `~lib/tcbox/${p.slice(i + SDK_MARK.length)}` : relative(baseDir, p), text);
      return text;
    },
    writeFile: (name: string, contents: Uint8Array | string) => {
      outputs.set(name, typeof contents === "string" ? new TextEncoder().encode(contents) : contents);
    },
    listFiles: () => [],
    reportDiagnostic: (d: { message: string; range?: { source: { normalizedPath: string }; start: number } | null; category: number }) => {
      // category 3 = error (asc's DiagnosticCategory); warnings are not failures.
      if (d.category !== 3) return;
      const r = d.range;
      let where = display;
      if (r) {
        const np = r.source.normalizedPath;
        const shown = np === entry || resolve(baseDir, np) === abs ? display : np.replace(/^~lib\/tcbox\//, "assembly/");
        const [line, col] = lineCol(texts.get(np) ?? "", r.start);
        where = `${shown}:${line}:${col}`;
      }
      diagnostics.push(`${where}: ${d.message}`);
    },
    transforms: [btf as never],
  } as never);
  const wasm = outputs.get("out.wasm");
  if (result.error || !wasm || diagnostics.length > 0) {
    const first = diagnostics[0] ?? `${display}: ${result.error?.message ?? "compilation failed"}`;
    const sep = first.indexOf(": ");
    throw new CompileError(
      diagnostics.length > 1 ? `${first.slice(sep + 2)} (and ${diagnostics.length - 1} more)` : first.slice(sep + 2),
      first.slice(0, sep),
      diagnostics.length > 0 ? diagnostics : [first],
    );
  }
  const out: CompileResult = { wasm: withMemoryImport(wasm, opts), layouts: btf.layouts, ms: performance.now() - t0 };
  cache.set(key, out);
  diskCachePut(abs, source, opts, out, deps);
  return out;
}

/**
 * asc drops the env.memory import from a program that never touches memory (`return TC_ACT_OK;`), but every
 * program runs on the kernel's memory: its batch runner keeps the budget's trap reason and the verdict counts in
 * the control block (instrument.ts). Such a module gets the import back, as asc declares it for the others (no
 * maximum; for a shared kernel memory shared, with its maximum).
 */
function withMemoryImport(wasm: Uint8Array, opts: CompileOptions): Uint8Array {
  const m = binaryen.readBinary(wasm);
  try {
    if (m.hasMemory()) return wasm;
    m.setFeatures(binaryen.Features.All);
    const shared = opts.shared === true;
    m.setMemory(1, shared ? SHARED_MAX_PAGES : -1, null, [], shared, false, "0");
    m.addMemoryImport("0", "env", "memory", shared);
    return m.emitBinary();
  } finally {
    m.dispose();
  }
}

function readSource(abs: string, display: string): string {
  if (!existsSync(abs)) throw new CompileError(`no such file`, display, [`${display}: no such file`]);
  return readFileSync(abs, "utf8");
}

/** 1-based line and column of a character offset. */
function lineCol(text: string, pos: number): [number, number] {
  let line = 1;
  let start = 0;
  for (let i = 0; i < pos && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      start = i + 1;
    }
  }
  return [line, pos - start + 1];
}

// A disk cache of builds (in the OS temp dir). The key covers the program's path and source, every SDK file, the
// compiler version and the options; the entry lists every other file the compiler read (with a digest of its
// text) and every path it probed that did not exist, and a hit requires all of them unchanged, so a hit is the
// same module asc would emit now.
const CACHE_DIR = join(tmpdir(), "tcbox-asc-cache");
let sdkDigest: string | undefined;

interface CacheDeps {
  files: { path: string; sha: string | null }[];
}

const sha = (text: string) => createHash("sha256").update(text).digest("hex");
/** Bumped when what compileProgram makes of asc's output changes (2: withMemoryImport), so older entries miss. */
const CACHE_FORMAT = 2;

function cacheKey(abs: string, source: string, opts: CompileOptions): string {
  if (sdkDigest === undefined) {
    const h = createHash("sha256");
    for (const f of readdirSync(SDK_DIR).filter((f) => f.endsWith(".ts")).sort()) h.update(f).update(readFileSync(join(SDK_DIR, f)));
    const ascPkg = resolve(SDK_DIR, "../node_modules/assemblyscript/package.json");
    if (existsSync(ascPkg)) h.update(readFileSync(ascPkg));
    sdkDigest = h.digest("hex");
  }
  return createHash("sha256").update(sdkDigest).update(`${CACHE_FORMAT}|${opts.memoryBase}|${opts.optimize !== false}${threadKey(opts)}|${abs}|`).update(source).digest("hex").slice(0, 40);
}

function depsUnchanged(deps: CacheDeps): boolean {
  for (const d of deps.files) {
    if (d.sha === null) {
      if (existsSync(d.path)) return false;
    } else if (!existsSync(d.path) || sha(readFileSync(d.path, "utf8")) !== d.sha) return false;
  }
  return true;
}

function diskCacheGet(abs: string, source: string, opts: CompileOptions): CompileResult | undefined {
  try {
    const k = cacheKey(abs, source, opts);
    if (!existsSync(join(CACHE_DIR, `${k}.wasm`))) return undefined;
    const meta = JSON.parse(readFileSync(join(CACHE_DIR, `${k}.json`), "utf8")) as { layouts: StructLayout[]; deps: CacheDeps };
    if (!depsUnchanged(meta.deps)) return undefined;
    const wasm = new Uint8Array(readFileSync(join(CACHE_DIR, `${k}.wasm`)));
    return { wasm, layouts: meta.layouts, ms: 0 };
  } catch {
    return undefined;
  }
}

function diskCachePut(abs: string, source: string, opts: CompileOptions, r: CompileResult, deps: Map<string, string | null>): void {
  try {
    const k = cacheKey(abs, source, opts);
    mkdirSync(CACHE_DIR, { recursive: true });
    const files = [...deps].map(([path, text]) => ({ path, sha: text === null ? null : sha(text) }));
    const tmp = join(CACHE_DIR, `${k}.${process.pid}.tmp`);
    writeFileSync(tmp + ".json", JSON.stringify({ layouts: r.layouts, deps: { files } }));
    renameSync(tmp + ".json", join(CACHE_DIR, `${k}.json`));
    writeFileSync(tmp, r.wasm);
    renameSync(tmp, join(CACHE_DIR, `${k}.wasm`)); // the .wasm last: its presence means both are complete
  } catch {
    // a cache is an optimisation: failing to write it changes nothing
  }
}
