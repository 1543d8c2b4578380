// tcbox map list|dump|update|delete --program FILE [--maps SEED.json] [--save OUT.json] [--json]
// Maps live in the process that loaded the program, so each invocation loads --program (a .ts or a built .wasm),
// seeds its maps from --maps, then lists, dumps or changes them; --save writes the maps back as a seed file, so
// a setup can be built up step by step. Output follows bpftool: `bpftool map list`, `bpftool map dump`
// (`key: 0a 00 00 01 ...  value: ...`, plus the fields by name when the program declared its structs), and
// `bpftool -j` for --json (key and value as arrays of "0x.." strings, "formatted" with the fields).
import { readFileSync, writeFileSync } from "node:fs";
import type { Command } from "commander";
import { BpfKernel, type BpfObject } from "../ebpf/kernel.js";
import type { BpfMap } from "../ebpf/maps/map.js";
import { BPF_ANY, BPF_EXIST, BPF_NOEXIST, MAP_TYPE_NAMES, PIN_GLOBAL_NS } from "../ebpf/maps/layout.js";
import { decodeStruct, encodeStruct, hexBytes, parseHexBytes } from "../ebpf/maps/struct.js";
import { applySeed, dumpSeed } from "../ebpf/seed.js";
import { CliError, print, printJson } from "./output.js";

interface MapOpts {
  program: string;
  maps?: string;
  save?: string;
  json?: boolean;
}

export async function loadWithSeed(program: string, seedFile?: string): Promise<{ kernel: BpfKernel; obj: BpfObject }> {
  const kernel = new BpfKernel();
  const obj = await kernel.load(program);
  if (seedFile) {
    let seed: unknown;
    try {
      seed = JSON.parse(readFileSync(seedFile, "utf8"));
    } catch (e) {
      throw new CliError(`cannot read seed: ${(e as Error).message}`, seedFile);
    }
    applySeed(obj, seed, seedFile);
  }
  return { kernel, obj };
}

function save(obj: BpfObject, file: string): void {
  const out: Record<string, unknown> = {};
  for (const m of obj.maps.values()) if (m.spec.type !== 27 && m.spec.type !== 3) out[m.name] = dumpSeed(m);
  writeFileSync(file, JSON.stringify(out, null, 2) + "\n");
}

function mapOf(obj: BpfObject, name: string): BpfMap {
  const m = obj.maps.get(name);
  if (!m) throw new CliError(`no map "${name}" (maps: ${[...obj.maps.keys()].join(", ") || "none"})`, obj.name);
  return m;
}

const hexArray = (b: Uint8Array) => Array.from(b, (x) => "0x" + x.toString(16).padStart(2, "0"));

function dumpJson(m: BpfMap): unknown[] {
  return [...m.entries()].map(([k, v]) => {
    const value = v.subarray(0, m.spec.valueSize);
    const e: Record<string, unknown> = { key: hexArray(k), value: hexArray(v) };
    if (m.keyLayout && m.valueLayout) e.formatted = { key: decodeStruct(m.keyLayout, k), value: decodeStruct(m.valueLayout, value) };
    return e;
  });
}

function dumpText(m: BpfMap): string {
  const lines: string[] = [];
  let n = 0;
  for (const [k, v] of m.entries()) {
    n++;
    lines.push(`key: ${hexBytes(k)}  value: ${hexBytes(v)}`);
    if (m.keyLayout && m.valueLayout) {
      const fmt = (o: Record<string, unknown>) => "{" + Object.entries(o).map(([f, x]) => `${f}: ${x}`).join(", ") + "}";
      lines.push(`\t${fmt(decodeStruct(m.keyLayout, k))} => ${fmt(decodeStruct(m.valueLayout, v.subarray(0, m.spec.valueSize)))}`);
    }
  }
  lines.push(`Found ${n} element${n === 1 ? "" : "s"}`);
  return lines.join("\n");
}

function listJson(m: BpfMap): Record<string, unknown> {
  const j: Record<string, unknown> = {
    id: m.id,
    type: MAP_TYPE_NAMES[m.spec.type],
    name: m.name,
    flags: m.spec.flags,
    bytes_key: m.spec.keySize,
    bytes_value: m.spec.valueSize,
    max_entries: m.spec.maxEntries,
    entries: m.spec.type === 27 ? 0 : m.count,
    lookups: m.lookups, // tcbox's addition: programs' map_lookup_elem calls (u32, wrapping)
  };
  if (m.spec.pinning === PIN_GLOBAL_NS) j.pinned = [`/sys/fs/bpf/tc/globals/${m.name}`];
  if (m.keyLayout) j.btf_key = m.keyLayout.name;
  if (m.valueLayout) j.btf_value = m.valueLayout.name;
  return j;
}

/** `key 0a 00 00 01 value 01 00 00 00 [any|exist|noexist]` (bpftool's syntax), or JSON via --key/--value. */
function parseKv(m: BpfMap, words: string[], opts: { key?: string; value?: string }, needValue: boolean): { key: Uint8Array; value?: Uint8Array; flags: number } {
  const where = `map ${m.name}`;
  let flags = BPF_ANY;
  const last = words.at(-1);
  if (last && ["any", "exist", "noexist"].includes(last)) {
    flags = last === "exist" ? BPF_EXIST : last === "noexist" ? BPF_NOEXIST : BPF_ANY;
    words = words.slice(0, -1);
  }
  const bytesOf = (json: string | undefined, word: "key" | "value", size: number): Uint8Array | undefined => {
    if (json !== undefined) {
      const layout = word === "key" ? m.keyLayout : m.valueLayout;
      if (!layout) throw new CliError(`no struct layout for the ${word}: give hex bytes`, where);
      const out = new Uint8Array(size);
      let parsed: unknown;
      try {
        parsed = JSON.parse(json);
      } catch (e) {
        throw new CliError(`--${word}: ${(e as Error).message}`, where);
      }
      encodeStruct(layout, parsed as never, out, `${where}: --${word}`);
      return out;
    }
    const at = words.indexOf(word);
    if (at < 0) return undefined;
    const end = word === "key" && words.includes("value") ? words.indexOf("value") : words.length;
    return parseHexBytes(words.slice(at + 1, end).join(" "), size, `${where}: ${word}`);
  };
  const key = bytesOf(opts.key, "key", m.spec.keySize);
  if (!key) throw new CliError("missing key (key HEX... or --key JSON)", where);
  const value = needValue ? bytesOf(opts.value, "value", m.spec.valueSize) : undefined;
  if (needValue && !value) throw new CliError("missing value (value HEX... or --value JSON)", where);
  return { key, value, flags };
}

export function register(program: Command): void {
  const map = program.command("map").description("list, dump and change the maps of a program (bpftool-style)");
  const common = (c: Command) =>
    c
      .requiredOption("--program <file>", "program whose maps to use (.ts or .wasm)")
      .option("--maps <file>", "seed the maps first from this JSON file")
      .option("--json", "JSON output like bpftool -j");
  common(map.command("list").description("the program's maps")).action(async (opts: MapOpts) => {
    const { obj } = await loadWithSeed(opts.program, opts.maps);
    const maps = [...obj.maps.values()];
    if (opts.json) return printJson(maps.map(listJson));
    const lines: string[] = [];
    for (const m of maps) {
      lines.push(`${m.id}: ${MAP_TYPE_NAMES[m.spec.type]}  name ${m.name}  flags 0x${m.spec.flags.toString(16)}`);
      lines.push(`\tkey ${m.spec.keySize}B  value ${m.spec.valueSize}B  max_entries ${m.spec.maxEntries}  entries ${m.spec.type === 27 ? 0 : m.count}`);
      if (m.spec.pinning === PIN_GLOBAL_NS) lines.push(`\tpinned /sys/fs/bpf/tc/globals/${m.name}`);
    }
    print(lines.join("\n") || "no maps");
  });
  common(map.command("dump").description("every element of a map").argument("<map>", "map name")).action(async (name: string, opts: MapOpts) => {
    const { obj } = await loadWithSeed(opts.program, opts.maps);
    const m = mapOf(obj, name);
    if (opts.json) printJson(dumpJson(m));
    else print(dumpText(m));
  });
  common(
    map
      .command("update")
      .description("update an element: MAP key HEX... value HEX... [any|exist|noexist], or --key/--value JSON")
      .argument("<map>", "map name")
      .argument("[words...]", "key BYTES value BYTES [flag]")
      .option("--key <json>", "key as JSON fields")
      .option("--value <json>", "value as JSON fields")
      .option("--save <file>", "write all maps back as a seed file"),
  ).action(async (name: string, words: string[], opts: MapOpts & { key?: string; value?: string }) => {
    const { obj } = await loadWithSeed(opts.program, opts.maps);
    const m = mapOf(obj, name);
    const kv = parseKv(m, words, opts, true);
    m.update(kv.key, kv.value!, kv.flags);
    if (opts.save) save(obj, opts.save);
    if (opts.json) printJson(dumpJson(m));
    else print(dumpText(m));
  });
  common(
    map
      .command("delete")
      .description("delete an element: MAP key HEX..., or --key JSON")
      .argument("<map>", "map name")
      .argument("[words...]", "key BYTES")
      .option("--key <json>", "key as JSON fields")
      .option("--save <file>", "write all maps back as a seed file"),
  ).action(async (name: string, words: string[], opts: MapOpts & { key?: string }) => {
    const { obj } = await loadWithSeed(opts.program, opts.maps);
    const m = mapOf(obj, name);
    m.delete(parseKv(m, words, opts, false).key);
    if (opts.save) save(obj, opts.save);
    if (opts.json) printJson(dumpJson(m));
    else print(dumpText(m));
  });
}
