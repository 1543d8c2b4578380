// Truth tables of `tcbox policy`: the JSON contract (issue 6, kept exactly), the matrix text the upstream e2e netpol
// suite prints (rows = from, columns = to, "." allowed, "X" denied; "-" where from = to, never probed), parsing an
// expected table in either form, and the cells that differ. Setup and printing only.
import type { Protocol } from "../types.js";
import { NetpolError } from "./errors.js";

export type Verdict = "allow" | "deny";

export interface PolicyResult {
  from: string;
  to: string;
  port: number;
  protocol: Protocol;
  /** Keyed by generation number as a string: {"1": "allow", ...}. */
  verdict: Record<string, Verdict>;
}

export interface PolicyReport {
  gens: number[];
  results: PolicyResult[];
}

const portKey = (r: { port: number; protocol: string }) => `${r.port}/${r.protocol}`;
const cellKey = (r: { from: string; to: string; port: number; protocol: string }) => `${r.from} ${r.to} ${portKey(r)}`;

/** Port/protocol groups in first-seen order, and the pods (rows and columns) in first-seen order. */
function groups(results: PolicyResult[]): { ports: string[]; pods: string[] } {
  const ports: string[] = [];
  const pods: string[] = [];
  for (const r of results) {
    if (!ports.includes(portKey(r))) ports.push(portKey(r));
    for (const p of [r.from, r.to]) if (!pods.includes(p)) pods.push(p);
  }
  return { ports, pods };
}

function matrix(title: string, pods: string[], cell: (from: string, to: string) => Verdict | undefined): string[] {
  const lines = [title, ["-", ...pods].join("\t")];
  for (const from of pods) {
    lines.push([from, ...pods.map((to) => (from === to ? "-" : cell(from, to) === undefined ? "?" : cell(from, to) === "allow" ? "." : "X"))].join("\t"));
  }
  return lines;
}

/** The matrices: one per port when the generations agree on it, else one per port and generation. */
export function matrixText(report: PolicyReport): string {
  const { ports, pods } = groups(report.results);
  const byCell = new Map(report.results.map((r) => [cellKey(r), r]));
  const out: string[] = [];
  for (const pk of ports) {
    const [port, protocol] = pk.split("/");
    const get = (from: string, to: string, g: number) => byCell.get(`${from} ${to} ${port}/${protocol}`)?.verdict[String(g)];
    const agree = report.results.filter((r) => portKey(r) === pk).every((r) => new Set(report.gens.map((g) => r.verdict[String(g)])).size === 1);
    if (agree) out.push(...matrix(`${pk} (gens ${report.gens.join(",")})`, pods, (f, t) => get(f, t, report.gens[0]!)), "");
    else for (const g of report.gens) out.push(...matrix(`${pk} (gen ${g})`, pods, (f, t) => get(f, t, g)), "");
  }
  const dis = disagreements(report);
  out.push(dis.length === 0 ? "generations agree on every cell" : `generations disagree on ${dis.length} cell(s):`, ...dis);
  return out.join("\n") + "\n";
}

export function disagreements(report: PolicyReport): string[] {
  return report.results
    .filter((r) => new Set(report.gens.map((g) => r.verdict[String(g)])).size > 1)
    .map((r) => `${r.from} -> ${r.to} ${portKey(r)}: ${report.gens.map((g) => `gen ${g} ${r.verdict[String(g)]}`).join(", ")}`);
}

/** An expected cell: a verdict for every generation (matrix text) or per generation (JSON). */
export interface ExpectedCell {
  from: string;
  to: string;
  port: number;
  protocol: string;
  verdict: Verdict | Record<string, Verdict>;
}

/** Parse an expected truth table: the JSON contract, or matrix text (blocks headed `PORT/PROTOCOL ...`). */
export function parseExpected(text: string, file: string): ExpectedCell[] {
  const t = text.trim();
  if (t.startsWith("{")) {
    let j: unknown;
    try {
      j = JSON.parse(t);
    } catch (e) {
      throw new NetpolError(`invalid JSON: ${(e as Error).message}`, file);
    }
    const results = (j as { results?: unknown }).results;
    if (!Array.isArray(results)) throw new NetpolError("missing results array", file);
    return results.map((r: Partial<PolicyResult>, i) => {
      if (typeof r.from !== "string" || typeof r.to !== "string" || typeof r.port !== "number" || typeof r.protocol !== "string" || typeof r.verdict !== "object" || r.verdict === null) {
        throw new NetpolError("needs from, to, port, protocol and verdict", `${file}: results[${i}]`);
      }
      for (const v of Object.values(r.verdict)) if (v !== "allow" && v !== "deny") throw new NetpolError(`verdict "${String(v)}" is not allow or deny`, `${file}: results[${i}]`);
      return { from: r.from, to: r.to, port: r.port, protocol: r.protocol, verdict: r.verdict };
    });
  }
  const cells: ExpectedCell[] = [];
  let port: { port: number; protocol: string } | null = null;
  let cols: string[] | null = null;
  for (const [i, raw] of text.split("\n").entries()) {
    const line = raw.trim();
    const where = `${file}:${i + 1}`;
    if (line === "") continue;
    const head = /^(\d+)\/(TCP|UDP|SCTP)\b/.exec(line);
    if (head !== null) {
      port = { port: Number(head[1]), protocol: head[2]! };
      cols = null;
      continue;
    }
    const f = line.split(/\s+/);
    if (port === null) throw new NetpolError(`expected a "PORT/PROTOCOL" line before the matrix`, where);
    if (cols === null) {
      if (f[0] !== "-") throw new NetpolError(`expected the header row ("-" then the destination pods)`, where);
      cols = f.slice(1);
      continue;
    }
    if (f.length !== cols.length + 1) throw new NetpolError(`row has ${f.length - 1} cells, header has ${cols.length}`, where);
    for (const [k, c] of f.slice(1).entries()) {
      if (c === "-" || f[0] === cols[k]) continue;
      if (c !== "." && c !== "X") throw new NetpolError(`cell "${c}" is not "." (allowed), "X" (denied) or "-"`, where);
      cells.push({ from: f[0]!, to: cols[k]!, ...port, verdict: c === "." ? "allow" : "deny" });
    }
  }
  return cells;
}

/** Every cell where the report differs from the expectation (a missing cell counts as differing). */
export function diffExpected(report: PolicyReport, expected: ExpectedCell[]): string[] {
  const byCell = new Map(report.results.map((r) => [cellKey(r), r]));
  const out: string[] = [];
  for (const e of expected) {
    const r = byCell.get(cellKey(e));
    const name = `${e.from} -> ${e.to} ${portKey(e)}`;
    if (r === undefined) {
      out.push(`${name}: not probed`);
      continue;
    }
    for (const g of report.gens) {
      const want = typeof e.verdict === "string" ? e.verdict : e.verdict[String(g)];
      if (want !== undefined && r.verdict[String(g)] !== want) out.push(`${name}: gen ${g} ${r.verdict[String(g)]}, expected ${want}`);
    }
  }
  return out;
}
