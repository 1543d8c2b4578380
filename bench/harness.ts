// Shared harness for bench/*.bench.ts: one tinybench run per group, tasks side by side, medians and spread,
// ratios against the group's first task. Benchmarks print; tests never time anything.
import { Bench } from "tinybench";

export interface BenchOptions {
  /** Shorter runs (CI smoke, `npm run bench -- --quick`). */
  quick: boolean;
}

export interface TaskSpec {
  name: string;
  fn: () => void;
  /** Work items per call (e.g. packets in a batch), so rates are per item. */
  items?: number;
}

export interface TaskResult {
  name: string;
  /** Median nanoseconds per item. */
  medianNs: number;
  /** Median absolute deviation in nanoseconds per item. */
  madNs: number;
  /** Items per second at the median. */
  perSecond: number;
  /** medianNs relative to the group's first task. */
  ratio: number;
  samples: number;
}

export async function runGroup(title: string, tasks: TaskSpec[], opts: BenchOptions): Promise<TaskResult[]> {
  const bench = new Bench({
    time: opts.quick ? 150 : 1000,
    warmupTime: opts.quick ? 50 : 250,
    // Keep the raw samples so medians and spread come from the same run.
    retainSamples: true,
  });
  for (const t of tasks) bench.add(t.name, t.fn);
  await bench.run();
  const results: TaskResult[] = [];
  for (let i = 0; i < tasks.length; i++) {
    const spec = tasks[i]!;
    const task = bench.tasks[i]!;
    const r = task.result as unknown as { latency?: { p50?: number; mad?: number; samplesCount?: number; samples?: number[] } };
    const lat = r.latency;
    if (!lat || lat.p50 === undefined) throw new Error(`bench ${title}/${spec.name}: no result (did it throw?)`);
    const items = spec.items ?? 1;
    const medianNs = (lat.p50 * 1e6) / items; // tinybench reports milliseconds
    const madNs = ((lat.mad ?? 0) * 1e6) / items;
    results.push({
      name: spec.name,
      medianNs,
      madNs,
      perSecond: 1e9 / medianNs,
      ratio: 1,
      samples: lat.samplesCount ?? lat.samples?.length ?? 0,
    });
  }
  for (const r of results) r.ratio = r.medianNs / results[0]!.medianNs;
  printGroup(title, results);
  return results;
}

function fmtRate(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} M/s`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} k/s`;
  return `${n.toFixed(0)} /s`;
}

export function printGroup(title: string, results: TaskResult[]): void {
  const rows = results.map((r) => [
    r.name,
    `${r.medianNs.toFixed(2)} ns`,
    `±${r.madNs.toFixed(2)}`,
    fmtRate(r.perSecond),
    `${r.ratio.toFixed(2)}x`,
    String(r.samples),
  ]);
  const head = ["task", "median/item", "mad", "rate", "vs first", "samples"];
  const widths = head.map((h, c) => Math.max(h.length, ...rows.map((row) => row[c]!.length)));
  const line = (cells: string[]) => cells.map((s, c) => (c === 0 ? s.padEnd(widths[c]!) : s.padStart(widths[c]!))).join("  ");
  process.stdout.write(`\n## ${title}\n${line(head)}\n${rows.map(line).join("\n")}\n`);
}
