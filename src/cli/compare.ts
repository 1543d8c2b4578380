// tcbox compare --cluster FILE [--workload FILE] [--gens 1,2,3,4] [--seed N] [--json] [--pcap DIR]
// Without --cluster: the built-in demo cluster. Without --workload: every client pod to every Service port plus
// one flow to the internet. --pcap DIR writes DIR/gen1.pcapng ... (every frame on every interface, see
// src/compare/capture.ts); DIR is created when missing.
import { mkdirSync, readFileSync } from "node:fs";
import type { Command } from "commander";
import { loadClusterFile } from "../k8s/cluster.js";
import { loadDemoCluster } from "../k8s/demo-cluster.js";
import type { GenNumber } from "../gens/types.js";
import { compare, defaultWorkload, type CompareJson, type WorkloadEntry } from "../compare/run.js";
import { parseWorkload } from "../compare/workload.js";
import { CliError, print, printJson } from "./output.js";

interface Opts {
  cluster?: string;
  workload?: string;
  gens: string;
  seed: string;
  json?: boolean;
  pcap?: string;
}

/** The workload file, every entry checked before anything runs (src/compare/workload.ts). */
export function readWorkload(file: string): WorkloadEntry[] {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new CliError(`cannot read the workload: ${(e as Error).message}`, file);
  }
  return parseWorkload(text, file);
}

export function humanTable(r: CompareJson): string {
  const lines: string[] = [];
  for (const f of r.flows) {
    lines.push(`#${f.id} ${f.from} -> ${f.to} ${f.protocol}`);
    for (const g of r.gens) {
      const x = f.results[String(g)]!;
      const to = x.delivered ? `${x.dst_pod ?? "external"} (${x.dst})` : `- (${x.drop_reason})`;
      lines.push(`  gen${g}: ${x.verdict.padEnd(7)} to ${to}  src seen ${x.src_seen ?? "-"}  hops ${x.hops.length}  encap ${x.encap_bytes}B  rules ${x.rules_evaluated}  prog runs ${x.map_lookups}`);
    }
    if (r.summary.disagreements.some((d) => d.id === f.id && d.field === "delivered")) lines.push("  !!! REACHABILITY DISAGREEMENT between generations");
  }
  lines.push("");
  lines.push(`${r.summary.connections} connections; ${r.summary.disagreements.length} disagreements, ${r.summary.reachability_disagreements} in reachability${r.summary.reachability_disagreements > 0 ? " (!!! generations must agree on who can reach whom)" : ""}`);
  return lines.join("\n");
}

export function register(program: Command): void {
  program
    .command("compare")
    .description("the same connections through each generation's dataplane, side by side")
    .option("--cluster <file>", "Kubernetes manifests (default: the built-in demo cluster)")
    .option("--workload <file>", "workload YAML with a flows: list (default: every pod to every Service port + the internet)")
    .option("--gens <list>", "generations", "1,2,3,4")
    .option("--seed <n>", "seed", "1")
    .option("--json", "print JSON")
    .option("--pcap <dir>", "write DIR/gen1.pcapng .. gen4.pcapng: every frame on every interface (node/ifname)")
    .action(async (opts: Opts) => {
      const seed = Number(opts.seed);
      if (!Number.isInteger(seed) || seed < 0) throw new CliError(`invalid seed "${opts.seed}"`, "--seed");
      const gens = opts.gens.split(",").map((s) => Number(s.trim()));
      for (const g of gens) if (![1, 2, 3, 4].includes(g)) throw new CliError(`invalid generation "${g}"`, "--gens");
      const cluster = opts.cluster ? loadClusterFile(opts.cluster, { seed }) : loadDemoCluster({ seed });
      const wl = opts.workload ? readWorkload(opts.workload) : defaultWorkload(cluster);
      if (opts.pcap !== undefined) {
        try {
          mkdirSync(opts.pcap, { recursive: true });
        } catch (e) {
          throw new CliError(`cannot create the capture directory: ${(e as Error).message}`, `--pcap ${opts.pcap}`);
        }
      }
      const r = await compare(cluster, wl, gens as GenNumber[], seed, { pcapDir: opts.pcap });
      if (opts.json) printJson(r);
      else print(humanTable(r));
    });
}
