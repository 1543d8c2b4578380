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
for (const f of files) {
  process.stdout.write(`\n# ${f}\n`);
  const mod = (await import(pathToFileURL(join(here, f)).href)) as { default: (o: BenchOptions) => Promise<unknown> };
  await mod.default(opts);
}
