// One tinybench measurement: warm-up, retained samples, median and MAD per item (the same statistics as
// bench/harness.ts; src/ may not import bench/).
import { Bench } from "tinybench";

export interface Measured {
  medianNs: number;
  madNs: number;
  samples: number;
}

export async function measure(fn: () => unknown, items: number, quick: boolean): Promise<Measured> {
  const bench = new Bench({ time: quick ? 40 : 600, warmupTime: quick ? 10 : 150, retainSamples: true });
  bench.add("t", fn);
  await bench.run();
  const r = bench.tasks[0]!.result as unknown as { error?: unknown; latency?: { p50?: number; mad?: number; samplesCount?: number } };
  if (r.error) throw r.error;
  const lat = r.latency;
  if (!lat || lat.p50 === undefined) throw new Error("bench: no result");
  return { medianNs: (lat.p50 * 1e6) / items, madNs: ((lat.mad ?? 0) * 1e6) / items, samples: lat.samplesCount ?? 0 };
}

/** The median of `xs` (the upper one of an even count), without reordering `xs`. */
export function median(xs: number[]): number {
  return [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
}

/** Median of a few wall-clock runs of a slow operation (a full kube-proxy sync), in milliseconds. */
export function medianMs(fn: () => void, runs: number): number {
  const t: number[] = [];
  for (let i = 0; i < runs; i++) {
    const a = performance.now();
    fn();
    t.push(performance.now() - a);
  }
  return median(t);
}
