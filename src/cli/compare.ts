// tcbox compare --cluster FILE [--workload FILE] [--gens 1,2,3,4] [--seed N] [--json] [--pcap DIR]
// Without --cluster: the built-in demo cluster. Without --workload: every client pod to every Service port plus
// one flow to the internet. --pcap DIR writes DIR/gen1.pcapng ... (every frame on every interface, see
// src/compare/capture.ts); DIR is created when missing.
import { mkdirSync, readFileSync } from "node:fs";
import type { Command } from "commander";
import { loadClusterFile } from "../k8s/cluster.js";
import { loadDemoCluster } from "../k8s/demo-cluster.js";
import type { GenNumber } from "../gens/types.js";
import { GEN4_TUNNELS, type Gen4Tunnel } from "../gens/gen4.js";
import { compare, defaultWorkload, seenAs, type CompareJson, type GenTotals, type WorkloadEntry } from "../compare/run.js";
import { parseWorkload } from "../compare/workload.js";
import { CliError, print, printJson } from "./output.js";

interface Opts {
  cluster?: string;
  workload?: string;
  gens: string;
  seed: string;
  json?: boolean;
  pcap?: string;
  tunnel?: string;
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

export interface TableOptions {
  /** ANSI colour for differing values (yellow) and reachability disagreements (red). Default: off. */
  color?: boolean;
}

/** The per-connection columns, in order. */
const COLUMNS = ["verdict", "delivered to", "dst", "src seen", "as", "hops", "encap", "rules", "map lookups"] as const;
/** Columns whose values are expected to differ between generations (each numbers its own pods): never marked. */
const ADDRESS_COLUMNS = new Set(["dst", "src seen"]);

function cells(r: CompareJson, f: CompareJson["flows"][number], g: number): string[] {
  const x = f.results[String(g)]!;
  return [
    x.verdict,
    x.delivered ? (x.dst_pod ?? "external") : "-",
    x.dst ?? "-",
    x.src_seen ?? "-",
    seenAs(x.src_seen, r.addresses[String(g)]!, f.from) ?? "-",
    String(x.hops.length),
    `${x.encap_bytes}B`,
    String(x.rules_evaluated),
    String(x.map_lookups),
  ];
}

/**
 * Per connection, one row per generation side by side; a value that differs between generations is marked `*`
 * (and yellow with colour), the row's drop reason follows it, and a `differs:` line names the columns. A
 * reachability disagreement is flagged `!!!`. Then the summary: where the generations disagree, and per
 * generation totals.
 */
export function humanTable(r: CompareJson, opts: TableOptions = {}): string {
  const paint = (code: number, s: string) => (opts.color ? `\x1b[${code}m${s}\x1b[0m` : s);
  const lines: string[] = [];
  const gname = (g: number) => `gen${g}`;
  for (const f of r.flows) {
    lines.push(`#${f.id} ${f.from} -> ${f.to} ${f.protocol}`);
    const rows = r.gens.map((g) => cells(r, f, g));
    const differs = COLUMNS.map((c, i) => !ADDRESS_COLUMNS.has(c) && new Set(rows.map((x) => x[i])).size > 1);
    const marked = rows.map((x) => x.map((v, i) => (differs[i] ? `${v}*` : v)));
    const w = COLUMNS.map((c, i) => Math.max(c.length, ...marked.map((x) => x[i]!.length)));
    const fmt = (x: string[], paintDiffs: boolean) =>
      x.map((v, i) => {
        const cell = i >= 5 ? v.padStart(w[i]!) : v.padEnd(w[i]!);
        return paintDiffs && differs[i] ? paint(33, cell) : cell;
      }).join("  ");
    lines.push(`        ${fmt([...COLUMNS], false)}`.trimEnd());
    r.gens.forEach((g, k) => {
      const x = f.results[String(g)]!;
      const dns = x.dns_queries !== undefined ? `  [DNS: ${x.dns_queries} queries, ${x.dns_nxdomain ?? 0} NXDOMAIN -> ${x.resolved ?? "unresolved"}]` : "";
      const why = `${dns}${x.drop_reason !== null ? `  (${x.drop_reason})` : ""}`;
      lines.push(`  ${gname(g).padEnd(6)}${fmt(marked[k]!, true)}${why}`.trimEnd());
    });
    const names = COLUMNS.filter((_, i) => differs[i]);
    const reach = r.summary.disagreements.find((d) => d.id === f.id && d.field === "delivered");
    if (reach?.note !== undefined) lines.push(`  reachability differs as in real clusters: ${reach.note}`);
    else if (reach !== undefined) lines.push(paint(31, "  !!! REACHABILITY DISAGREEMENT between generations"));
    if (names.length > 0) lines.push(`  differs: ${names.join(", ")}`);
  }
  lines.push("", ...summaryText(r, paint));
  return lines.join("\n");
}

function summaryText(r: CompareJson, paint: (code: number, s: string) => string): string[] {
  const s = r.summary;
  const out = [
    `${s.connections} connections; ${s.disagreements.length} disagreements, ${s.reachability_disagreements} in reachability` +
      (s.reachability_explained > 0 ? ` (${s.reachability_explained} as in real clusters, see the note)` : "") +
      (s.reachability_disagreements > s.reachability_explained ? paint(31, " (!!! generations must agree on who can reach whom)") : ""),
  ];
  const byId = new Map(r.flows.map((f) => [f.id, f]));
  const label: Record<string, string> = { delivered: "reachability", verdict: "verdict", dst_pod: "delivered to a pod", src_seen: "source address seen" };
  for (const field of ["delivered", "verdict", "dst_pod", "src_seen"]) {
    const ds = s.disagreements.filter((d) => d.field === field);
    if (ds.length === 0) continue;
    out.push(`  ${label[field]}: ${ds.length} connection${ds.length === 1 ? "" : "s"} disagree`);
    for (const d of ds) {
      const f = byId.get(d.id)!;
      const vals = r.gens.map((g) => {
        const x = f.results[String(g)]!;
        let v = String(d.values[String(g)] ?? "-");
        if (field === "src_seen") v = seenAs(x.src_seen, r.addresses[String(g)]!, f.from) ?? "-";
        else if (field === "delivered") v = x.delivered ? "delivered" : `not delivered (${x.drop_reason ?? "?"})`;
        return `gen${g} ${v}`;
      });
      out.push(`    #${d.id} ${f.from} -> ${f.to} ${f.protocol}: ${vals.join(", ")}`);
      if (d.note !== undefined && field === "delivered") out.push(`      note: ${d.note}`);
    }
  }
  if (Object.keys(s.totals).length > 0) {
    const rows: [string, (t: GenTotals) => string][] = [
      ["delivered", (t) => `${t.delivered}/${s.connections}`],
      ["denied", (t) => String(t.denied)],
      ["dropped", (t) => String(t.dropped)],
      ["encapsulated (max bytes)", (t) => `${t.encapsulated} (${t.encap_bytes}B)`],
      ["rules evaluated", (t) => String(t.rules_evaluated)],
      ["map lookups", (t) => String(t.map_lookups)],
      ["conntrack entries", (t) => String(t.conntrack_entries)],
    ];
    const cols = r.gens.map((g) => rows.map(([, fn]) => fn(s.totals[String(g)]!)));
    const w0 = Math.max(...rows.map(([n]) => n.length));
    const wg = r.gens.map((g, i) => Math.max(`gen${g}`.length, ...cols[i]!.map((v) => v.length)));
    out.push("", `  ${"per generation".padEnd(w0)}  ${r.gens.map((g, i) => `gen${g}`.padStart(wg[i]!)).join("  ")}`);
    rows.forEach(([n], k) => out.push(`  ${n.padEnd(w0)}  ${r.gens.map((_, i) => cols[i]![k]!.padStart(wg[i]!)).join("  ")}`));
  }
  return out;
}

/** Colour on a terminal unless NO_COLOR is set (https://no-color.org). */
export function useColor(): boolean {
  return process.stdout.isTTY === true && (process.env.NO_COLOR ?? "") === "";
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
    .option("--tunnel <mode>", `Gen 4 routing: ${GEN4_TUNNELS.join(" | ")} (default disabled: native routing; vxlan: cilium_vxlan overlay on UDP 8472)`)
    .action(async (opts: Opts) => {
      if (opts.tunnel !== undefined && !(GEN4_TUNNELS as readonly string[]).includes(opts.tunnel)) {
        throw new CliError(`invalid tunnel mode "${opts.tunnel}" (have ${GEN4_TUNNELS.join(", ")})`, "--tunnel");
      }
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
      const r = await compare(cluster, wl, gens as GenNumber[], seed, { pcapDir: opts.pcap, gen4Tunnel: opts.tunnel as Gen4Tunnel | undefined });
      if (opts.json) printJson(r);
      else print(humanTable(r, { color: useColor() }));
    });
}
