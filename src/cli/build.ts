// tcbox build FILE.ts [-o FILE.wasm] [--memory-base N] [--json]
// Compiles a tc program with the in-process AssemblyScript compiler, checks it like the loader does (verifier and
// map declarations, by loading it into a scratch kernel) and writes the module. Compile errors are printed as
// `tcbox: FILE:LINE:COL: message`, one per line, and the exit code is 1.
import { writeFileSync } from "node:fs";
import { basename } from "node:path";
import type { Command } from "commander";
import { PREBUILT_BASE } from "../ebpf/abi.js";
import { compileProgram } from "../ebpf/compile.js";
import { CompileError } from "../ebpf/errors.js";
import { BpfKernel } from "../ebpf/kernel.js";
import { MAP_TYPE_NAMES } from "../ebpf/maps/layout.js";
import { CliError, print, printJson, warn } from "./output.js";

export function register(program: Command): void {
  program
    .command("build")
    .description("compile an AssemblyScript tc program to WebAssembly and verify it")
    .argument("<file>", "program source (.ts)")
    .option("-o, --out <file>", "output module (default: FILE with .wasm)")
    .option("--memory-base <n>", "address of the program's static data (each program loaded together needs its own)", String(PREBUILT_BASE))
    .option("--json", "print the result as JSON")
    .action(async (file: string, opts: { out?: string; memoryBase: string; json?: boolean }) => {
      const base = Number(opts.memoryBase);
      if (!Number.isInteger(base) || base < PREBUILT_BASE || base % 16 !== 0) {
        throw new CliError(`--memory-base must be a multiple of 16 >= ${PREBUILT_BASE} (0x${PREBUILT_BASE.toString(16)})`, file);
      }
      const out = opts.out ?? file.replace(/\.ts$/, "") + ".wasm";
      let built;
      try {
        built = await compileProgram(file, { memoryBase: base, displayName: file });
      } catch (e) {
        if (e instanceof CompileError && e.diagnostics.length > 1) {
          for (const d of e.diagnostics) warn(`tcbox: ${d}`);
          throw new CliError(`${e.diagnostics.length} compile errors`, file);
        }
        throw e;
      }
      // Verify as the loader would, including the map declarations the program makes when it starts.
      const obj = new BpfKernel().loadWasm(built.wasm, basename(out), built.layouts);
      writeFileSync(out, built.wasm);
      const maps = [...obj.maps.values()].map((m) => ({
        name: m.name,
        type: MAP_TYPE_NAMES[m.spec.type],
        key: m.spec.keySize,
        value: m.spec.valueSize,
        maxEntries: m.spec.maxEntries,
        pinning: m.spec.pinning,
      }));
      const result = {
        file,
        out,
        bytes: built.wasm.length,
        ms: Math.round(built.ms),
        memoryBase: base,
        region: obj.region ? { start: obj.region.start, end: obj.region.end } : null,
        entryPoints: [...obj.programs.keys()],
        maps,
      };
      if (opts.json) return printJson(result);
      print(`${out}: ${result.bytes} bytes, built in ${result.ms} ms; entry points: ${result.entryPoints.join(", ")}`);
      for (const m of maps) print(`  map ${m.name}: ${m.type} key ${m.key}B value ${m.value}B max_entries ${m.maxEntries}${m.pinning === 2 ? " pinned" : ""}`);
    });
}
