// tcbox demo (npm start): compare on the built-in demo cluster (3 nodes in 2 zones, a few Services, one
// NetworkPolicy, one flow to the internet) through Gen 1-4, printed side by side. The Gen 4 programs are compiled
// from programs/ at the package root (src/ebpf/paths.ts), not the cwd. (The short benchmark is not in yet.)
import type { Command } from "commander";
import { loadDemoCluster } from "../k8s/demo-cluster.js";
import { compare, defaultWorkload } from "../compare/run.js";
import { humanTable } from "./compare.js";
import { print, printJson } from "./output.js";

export function register(program: Command): void {
  program
    .command("demo")
    .description("compare the four dataplane generations on the built-in demo cluster")
    .option("--json", "print JSON")
    .action(async (opts: { json?: boolean }) => {
      const cluster = loadDemoCluster({ seed: 1 });
      const t0 = performance.now();
      const r = await compare(cluster, defaultWorkload(cluster), [1, 2, 3, 4], 1);
      if (opts.json) printJson(r);
      else print(`${humanTable(r)}\n(built and ran 4 generations in ${((performance.now() - t0) / 1000).toFixed(1)} s)`);
    });
}
