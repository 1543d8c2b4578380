// tcbox demo (npm start): compare on the built-in demo cluster (3 nodes in 2 zones, a few Services, one
// NetworkPolicy, one flow to the internet) through Gen 1-4, printed side by side, then a short benchmark of the
// Service hop (the engine behind `tcbox bench`, src/perf/run.ts) at 10 and 1000 Services, Gen 1 (kube-proxy
// iptables, which Gen 2 and 3 share) against Gen 4 (lb4 on tc). The Gen 4 programs are compiled from programs/ at
// the package root (src/ebpf/paths.ts), not the cwd.
import type { Command } from "commander";
import { loadDemoCluster } from "../k8s/demo-cluster.js";
import { compare, defaultWorkload } from "../compare/run.js";
import { runBench, type BenchConfig, type BenchResult } from "../perf/run.js";
import { humanTable, useColor } from "./compare.js";
import { print, printJson } from "./output.js";

/** The demo's benchmark: two scales, kube-proxy's iptables path against lb4, tinybench's quick settings. */
export const DEMO_BENCH: BenchConfig = { gens: [1, 4], services: [10, 1000], endpoints: 3, policies: 0, quick: true, modes: ["iptables"] };

function rate(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(0)}k`;
  return n.toFixed(0);
}

/** Packets/s per generation and scale, and Gen 4 / Gen 1 at each scale. */
export function benchTable(rs: BenchResult[], seconds: number): string {
  const cols = ["services", "generation", "new conn pkt/s", "established pkt/s", "rules/new"];
  const rows: string[][] = [];
  for (const s of [...new Set(rs.map((r) => r.services))]) {
    const at = rs.filter((r) => r.services === s);
    for (const r of at) rows.push([String(s), r.gen === 4 ? "gen4 (lb4 on tc)" : `gen${r.gen} (kube-proxy ${r.mode})`, rate(r.new_pps), rate(r.established_pps), r.rules_per_new.toFixed(0)]);
    const b = at.find((r) => r.gen === 4);
    for (const a of at.filter((r) => r.gen === 1 && b !== undefined)) {
      rows.push(["", `gen4 / gen1 ${a.mode}`, `${(b!.new_pps / a.new_pps).toFixed(1)}x`, `${(b!.established_pps / a.established_pps).toFixed(1)}x`, ""]);
    }
  }
  const w = cols.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length)));
  const line = (r: string[]) => r.map((x, c) => (c === 1 ? x.padEnd(w[c]!) : x.padStart(w[c]!))).join("  ");
  return [
    `Short benchmark of the Service hop (${seconds.toFixed(1)} s): quick and noisy (40 ms of samples per figure on a shared machine).`,
    "Gen 2 and 3 take the Service decision with Gen 1's kube-proxy. `tcbox bench` runs the full method (longer samples, more scales, MAD).",
    line(cols),
    ...rows.map(line),
  ].join("\n");
}

export function register(program: Command): void {
  program
    .command("demo")
    .description("compare the four dataplane generations on the built-in demo cluster, then a short benchmark")
    .option("--json", "print JSON (the compare contract, plus `bench`: tcbox bench's results)")
    .option("--no-bench", "skip the short benchmark")
    .action(async (opts: { json?: boolean; bench: boolean }) => {
      const cluster = loadDemoCluster({ seed: 1 });
      const t0 = performance.now();
      const r = await compare(cluster, defaultWorkload(cluster), [1, 2, 3, 4], 1);
      const t1 = performance.now();
      const bench = opts.bench ? await runBench(DEMO_BENCH) : null;
      const t2 = performance.now();
      if (opts.json) {
        printJson(bench === null ? r : { ...r, bench: bench.results });
        return;
      }
      const parts = [humanTable(r, { color: useColor() }), `(built and ran 4 generations in ${((t1 - t0) / 1000).toFixed(1)} s)`];
      if (bench !== null) parts.push("", benchTable(bench.results, (t2 - t1) / 1000), `(demo: ${((t2 - t0) / 1000).toFixed(1)} s)`);
      print(parts.join("\n"));
    });
}
