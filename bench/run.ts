// `npm run bench [-- --quick] [NAME...]`: runs bench/*.bench.ts (each exports a default async function taking
// BenchOptions), in one process so ratios within a group are measured side by side.
import { readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { BenchOptions } from "./harness.js";

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const opts: BenchOptions = { quick: args.includes("--quick") };
const only = args.filter((a) => !a.startsWith("--"));

const files = readdirSync(here)
  .filter((f) => f.endsWith(".bench.ts"))
  .filter((f) => only.length === 0 || only.some((o) => f.startsWith(o)))
  .sort();
// A benchmark whose promise never settles (a timer or worker nobody awaits, a task that never resolves) leaves the
// event loop empty and the process would end silently after the last group printed: say so and fail instead.
let current = "";
let finished = false;
process.on("exit", (code) => {
  if (!finished && code === 0) {
    process.stderr.write(`bench: stopped inside ${current} before it finished (an unsettled promise?)\n`);
    process.exitCode = 1;
  }
});
for (const f of files) {
  current = f;
  process.stdout.write(`\n# ${f}\n`);
  const mod = (await import(pathToFileURL(join(here, f)).href)) as { default: (o: BenchOptions) => Promise<unknown> };
  await mod.default(opts);
}
finished = true;
