// tcbox policy: who can reach whom under the cluster's NetworkPolicies, in each generation, by sending real packets.
//   tcbox policy --cluster FILE [--gens 1,2,3,4] [--seed N] [--json] [--expect FILE]
// Prints one e2e-style reachability matrix per port (rows = from, columns = to, "." allowed, "X" denied, "-" self)
// and the cells where generations disagree. JSON (issue 6 contract):
//   {"gens":[1,2,3],"results":[{"from":"x/a","to":"y/b","port":80,"protocol":"TCP","verdict":{"1":"allow",...}}]}
// --expect FILE: an expected table (that JSON, or the matrix text); every differing cell is listed and the exit
// code is non-zero.
import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { CliError, print, printJson, warn } from "./output.js";
import { loadClusterFile } from "../k8s/cluster.js";
import { diffExpected, matrixText, parseExpected } from "../k8s/netpol/truth-table.js";
import { POLICY_GENS, policyReport } from "../gens/policy-run.js";
import type { GenNumber } from "../gens/types.js";

interface Opts {
  cluster: string;
  gens?: string;
  seed?: string;
  json?: boolean;
  expect?: string;
}

function parseGens(text: string | undefined): GenNumber[] {
  if (text === undefined) return POLICY_GENS;
  const gens = text.split(",").map((s) => s.trim());
  const out: GenNumber[] = [];
  for (const g of gens) {
    const n = Number(g) as GenNumber;
    if (!POLICY_GENS.includes(n)) {
      throw new CliError(`generation "${g}": no such generation (have ${POLICY_GENS.join(", ")})`, "--gens");
    }
    if (!out.includes(n)) out.push(n);
  }
  return out;
}

export function register(program: Command): void {
  program
    .command("policy")
    .description("probe every pod pair on every destination port through each generation and print the NetworkPolicy reachability matrix")
    .requiredOption("--cluster <file>", "Kubernetes manifests with NetworkPolicies (multi-document YAML)")
    .option("--gens <list>", `generations, comma-separated (default ${POLICY_GENS.join(",")})`)
    .option("--seed <n>", "seed (allocations, MACs)")
    .option("--json", "print JSON")
    .option("--expect <file>", "expected truth table (JSON or matrix text); exit non-zero listing each differing cell")
    .action(async (opts: Opts) => {
      const gens = parseGens(opts.gens);
      let seed: number | undefined;
      if (opts.seed !== undefined) {
        seed = Number(opts.seed);
        if (!Number.isInteger(seed) || seed < 0) throw new CliError(`invalid seed "${opts.seed}"`, "--seed");
      }
      let expectText: string | null = null;
      if (opts.expect !== undefined) {
        try {
          expectText = readFileSync(opts.expect, "utf8");
        } catch (e) {
          throw new CliError((e as Error).message, opts.expect);
        }
      }
      const expected = expectText === null ? null : parseExpected(expectText, opts.expect!);
      const cluster = loadClusterFile(opts.cluster, seed === undefined ? {} : { seed });
      const report = await policyReport(cluster, gens, seed);
      if (opts.json) printJson(report);
      else print(matrixText(report));
      if (expected !== null) {
        const diff = diffExpected(report, expected);
        if (diff.length > 0) {
          for (const d of diff) warn(d);
          throw new CliError(`${diff.length} cell(s) differ from the expected truth table`, opts.expect);
        }
      }
    });
}
