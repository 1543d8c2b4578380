// tcbox bench: comparative benchmarks of the Service hop, Gen 1-4, at several cluster sizes, in one process.
//   tcbox bench [--gens 1,2,3,4] [--services 10,100,1000,10000] [--endpoints N] [--policies N] [--json]
//               [--plot FILE.svg] [--quick] [--workers N] [--modes iptables,ipvs,nftables] [--clock cpu|wall]
// JSON (contract, issue 7): {"results":[{"gen","services","new_pps","established_pps","rules_per_new",
//   "lookups_per_packet","sync_ms", ...extra: mode ("iptables" | "ipvs" | "nftables" | "ebpf"), endpoints, new_ns, new_mad_ns,
//   established_ns, established_mad_ns, rules_per_established, lookups_per_new, ct_ops_per_new, ruleset_rules,
//   bytes_per_service, bytes_per_ct_entry, samples, Gen 4: new_pps_hot10, established_pps_hot10; with --policies:
//   policies, policy_new_ns, policy_new_mad_ns, policy_rules_per_new, new_with_policy_pps; workers (every row),
//   with --workers N > 1 on Gen 4: new_mad_pps, established_mad_pps, new_pps_1worker, established_pps_1worker,
//   new_pps_per_worker, established_pps_per_worker, single_thread_new_pps, single_thread_established_pps (see
//   BenchResult)}], "batch", "hop",
//   "notes", "clock", "background_connections"}
import { writeFileSync } from "node:fs";
import type { Command } from "commander";
import cliProgress from "cli-progress";
import { CliError, print, printJson } from "./output.js";
import { benchSteps, DEFAULT_KUBE_PROXY_MODES, KUBE_PROXY_MODES, runBench, type BenchResult } from "../perf/run.js";
import type { KubeProxyMode } from "../perf/iptables.js";
import { BACKGROUND, BATCH, setBenchClock, type BenchClock } from "../perf/workload.js";
import { plotSvg } from "../perf/plot.js";

interface Opts {
  gens: string;
  services: string;
  endpoints: string;
  policies: string;
  json?: boolean;
  plot?: string;
  quick?: boolean;
  workers: string;
  modes: string;
  clock: string;
}

function modeList(v: string): KubeProxyMode[] {
  const out: KubeProxyMode[] = [];
  for (const m of v.split(",").map((x) => x.trim()).filter((x) => x !== "")) {
    if (!(KUBE_PROXY_MODES as readonly string[]).includes(m)) throw new CliError(`unknown kube-proxy mode "${m}" (expected ${KUBE_PROXY_MODES.join(", ")})`, "--modes");
    if (!out.includes(m as KubeProxyMode)) out.push(m as KubeProxyMode);
  }
  if (out.length === 0) throw new CliError(`expected a list of kube-proxy modes, got "${v}"`, "--modes");
  return out;
}

function intList(v: string, flag: string, min: number, max: number): number[] {
  const out = v.split(",").map((s) => s.trim()).filter((s) => s !== "").map(Number);
  if (out.length === 0 || out.some((n) => !Number.isInteger(n) || n < min || n > max)) throw new CliError(`expected a list of integers ${min}..${max}, got "${v}"`, flag);
  return out;
}

function fmtPps(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}k`;
  return n.toFixed(0);
}

const pct = (x: number) => `${(x * 100).toFixed(0)}%`;

function table(rs: BenchResult[]): string {
  const pol = rs.some((r) => r.policies !== undefined);
  const thr = rs.some((r) => (r.workers ?? 1) > 1);
  const head = [
    "gen", "mode", "services", "new pps", "±mad", "est pps", "±mad", "rules/new", "lookups/pkt", "sync ms", "B/svc", "B/ct",
    ...(pol ? ["new+policy pps", "policy rules/new"] : []), ...(thr ? ["workers", "new pps 1w", "est pps 1w"] : []),
  ];
  const rows = rs.map((r) => [
    String(r.gen), r.mode, String(r.services), fmtPps(r.new_pps), pct(r.new_mad_pps !== undefined ? r.new_mad_pps / r.new_pps : r.new_mad_ns / r.new_ns),
    fmtPps(r.established_pps), pct(r.established_mad_pps !== undefined ? r.established_mad_pps / r.established_pps : r.established_mad_ns / r.established_ns), r.rules_per_new.toFixed(1),
    String(r.lookups_per_packet), r.sync_ms < 1 ? r.sync_ms.toFixed(4) : r.sync_ms.toFixed(1), r.bytes_per_service.toFixed(0), r.bytes_per_ct_entry.toFixed(0),
    ...(pol ? [fmtPps(r.new_with_policy_pps ?? 0), (r.policy_rules_per_new ?? 0).toFixed(1)] : []),
    ...(thr ? [String(r.workers ?? 1), r.new_pps_1worker ? fmtPps(r.new_pps_1worker) : "-", r.established_pps_1worker ? fmtPps(r.established_pps_1worker) : "-"] : []),
  ]);
  const w = head.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length)));
  return [head, ...rows].map((r) => r.map((s, c) => (c < 2 ? s.padEnd(w[c]!) : s.padStart(w[c]!))).join("  ")).join("\n");
}

export function register(program: Command): void {
  program
    .command("bench")
    .description("comparative benchmarks: Service hop throughput, per-packet work, memory and sync cost, Gen 1-4")
    .option("--gens <list>", "generations", "1,2,3,4")
    .option("--services <list>", "Service counts", "10,100,1000,10000")
    .option("--endpoints <n>", "endpoints per Service", "3")
    .option("--policies <n>", "NetworkPolicies selecting the backend pod: adds the policy hop to the first packet's cost", "0")
    .option("--modes <list>", "kube-proxy modes for Gen 1-3 (iptables, ipvs, nftables)", DEFAULT_KUBE_PROXY_MODES.join(","))
    .option("--clock <clock>", "cpu (this process's CPU time per batch; default) or wall", "cpu")
    .option("--json", "print JSON")
    .option("--plot <file>", "write an SVG plot of throughput against Services")
    .option("--quick", "short runs (CI, tests)")
    .option("--workers <n>", "worker threads for Gen 4's packet path (lb4 on every worker, the maps shared); Gen 1-3 run on one", "1")
    .action(async (opts: Opts) => {
      const gens = [...new Set(intList(opts.gens, "--gens", 1, 4))].sort();
      const services = intList(opts.services, "--services", 1, 200_000);
      const [endpoints] = intList(opts.endpoints, "--endpoints", 1, 64);
      const [policies] = intList(opts.policies, "--policies", 0, 1_000_000);
      // Up to 16: each worker sends the established traffic of its own BATCH background connections.
      const [workers] = intList(opts.workers, "--workers", 1, BACKGROUND / BATCH);
      const modes = modeList(opts.modes);
      if (opts.clock !== "cpu" && opts.clock !== "wall") throw new CliError(`expected cpu or wall, got "${opts.clock}"`, "--clock");
      setBenchClock(opts.clock as BenchClock);
      const cfg = { gens, services, endpoints: endpoints!, policies: policies!, quick: opts.quick === true, modes, workers: workers! };
      const showBar = process.stdout.isTTY === true && !opts.json;
      const bar = showBar ? new cliProgress.SingleBar({ stream: process.stdout, format: "bench [{bar}] {value}/{total} {step}", hideCursor: true }, cliProgress.Presets.shades_classic) : null;
      bar?.start(benchSteps(cfg), 0, { step: "" });
      let done = 0;
      let run;
      try {
        run = await runBench(cfg, (step) => bar?.update(done++, { step }));
        bar?.update(done, { step: "done" });
      } finally {
        bar?.stop();
      }
      if (opts.plot) writeFileSync(opts.plot, await plotSvg(run.results));
      if (opts.json) printJson(run);
      else print(`${table(run.results)}\n\nhop: ${run.hop}; ${run.batch}-packet batches; median and MAD per packet\n${run.notes.map((n) => `note: ${n}`).join("\n")}`);
    });
}
