// tcbox scenario: the seed's production failure modes, reproduced on the model.
//   tcbox scenario list [--json]
//   tcbox scenario run NAME [--gens 1,2,3,4] [--json]
// JSON of run: { name, title, happened: [lines], counters: {NAME: n}, gens: [{gen, applies, verdict, counters}] }
import type { Command } from "commander";
import { CliError, print, printJson } from "./output.js";
import { ALL_GENS, findScenario, SCENARIOS, type ScenarioResult } from "../compare/scenarios/index.js";
import type { GenNumber } from "../gens/types.js";

function parseGens(text: string | undefined): GenNumber[] {
  if (text === undefined) return ALL_GENS;
  const out: GenNumber[] = [];
  for (const part of text.split(",")) {
    const n = Number(part.trim());
    if (!(n === 1 || n === 2 || n === 3 || n === 4)) throw new CliError(`invalid generation "${part}" (have 1, 2, 3, 4)`, "--gens");
    if (!out.includes(n)) out.push(n);
  }
  return out.sort();
}

export function renderResult(r: ScenarioResult): string {
  const lines = [`scenario ${r.name}: ${r.title}`, "", "what happened:", ...r.happened.map((l) => `  ${l}`), "", "counters:"];
  for (const [k, v] of Object.entries(r.counters)) lines.push(`  ${k.padEnd(28)} ${v}`);
  lines.push("", "generations:");
  for (const g of r.gens) lines.push(`  Gen ${g.gen}: ${g.verdict}`);
  return lines.join("\n");
}

export function register(program: Command): void {
  const cmd = program.command("scenario").description("the seed's failure modes, reproduced: run one and see its counters per generation");
  cmd
    .command("list")
    .description("list the scenarios")
    .option("--json", "print JSON")
    .action((opts: { json?: boolean }) => {
      if (opts.json) printJson(SCENARIOS.map((s) => ({ name: s.name, title: s.title, gens: s.gens })));
      else print(SCENARIOS.map((s) => `${s.name.padEnd(24)} ${s.title} [Gen ${s.gens.join(",")}]`).join("\n"));
    });
  cmd
    .command("run")
    .description("run one scenario")
    .argument("<name>", "scenario name (see `tcbox scenario list`)")
    .option("--gens <list>", "generations, comma-separated (default 1,2,3,4)")
    .option("--json", "print JSON")
    .action(async (name: string, opts: { gens?: string; json?: boolean }) => {
      const s = findScenario(name);
      if (s === undefined) throw new CliError(`unknown scenario "${name}" (have ${SCENARIOS.map((x) => x.name).join(", ")})`, "scenario run");
      const r = await s.run(parseGens(opts.gens));
      if (opts.json) printJson(r);
      else print(renderResult(r));
    });
}
