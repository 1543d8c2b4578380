// `tcbox bench --workers N`: Gen 4's packet path (lb4 in 1024-packet batches, src/perf/lb4.ts's workload) on N
// worker threads against the same maps, as the kernel runs one program on every CPU. The kernel's memory is a
// shared WebAssembly.Memory; each worker runs lb4 built for its own lane (src/ebpf/lanes.ts) on connections no
// other worker uses, the CT map shared (its updates under the map's lock, lookups lock-free).
// Throughput of a round = total packets of all workers / the longest worker's packet-path time, where a worker's
// time is the wall time of its runBatch calls (packet bytes written and CT entries of new connections removed off
// the clock, as on the main thread): all workers start together and run the same number of batches. The
// 1-worker figure is measured the same way, on one of the same workers, in alternate rounds.
import type { Worker } from "node:worker_threads";
import type { LaneProgram } from "../ebpf/kernel.js";
import { nextMessage, startWorker } from "../ebpf/lanes.js";
import type { MapSpec } from "../ebpf/maps/spec.js";
import { ctMap, growTo, loadLb4, primeCt, type Lb4Bench } from "./lb4.js";
import { median } from "./measure.js";
import { BACKGROUND } from "./workload.js";

export interface Lb4WorkerInit {
  program: LaneProgram;
  ct: { base: number; spec: MapSpec; ncpus: number; id: number };
  services: number;
  /** This worker's index among all workers (0-based) and how many there are. */
  index: number;
  stride: number;
}

export interface Lb4Round {
  phase: "new" | "est";
  batches: number;
  /** Int32Array over a SharedArrayBuffer: workers count themselves in and start when it reaches `parties`. */
  barrier: Int32Array;
  parties: number;
}

export interface Lb4RoundResult {
  packets: number;
  busyMs: number;
  traps: number;
}

export interface WorkersFigures {
  workers: number;
  /** Packets per second of all workers together (median round), and of each worker in that measurement. */
  new_pps: number;
  established_pps: number;
  /** Median absolute deviation of the rounds' totals. */
  new_mad_pps: number;
  established_mad_pps: number;
  new_pps_per_worker: number[];
  established_pps_per_worker: number[];
  /** The same measurement with one worker. */
  new_pps_1worker: number;
  established_pps_1worker: number;
  rounds: number;
}

/** A shared-memory lb4 setup and N workers on it, ready to measure at `services` Services. */
export class Lb4Workers {
  private readonly workers: Worker[] = [];

  private constructor(
    readonly bench: Lb4Bench,
    /** lb4 built for each worker's lane. */
    private readonly programs: LaneProgram[],
  ) {}

  static async start(n: number, endpoints: number, maxServices: number): Promise<Lb4Workers> {
    // CPU 0 is the main thread's (it primes the CT map); workers are CPUs 1..n.
    const bench = await loadLb4(endpoints, maxServices, { shared: true, nrCpus: n + 1 });
    const obj = [...bench.kernel.objects][0]!;
    const programs = await Promise.all(Array.from({ length: n }, (_, i) => bench.kernel.laneProgram(obj, i + 1)));
    return new Lb4Workers(bench, programs);
  }

  /** Measure at the bench's current Service count (grown to `services` first). */
  async measure(services: number, quick: boolean): Promise<WorkersFigures> {
    const b = this.bench;
    growTo(b, services);
    primeCt(b, services);
    const ct = ctMap(b);
    const n = this.programs.length;
    await this.stop();
    for (let i = 0; i < n; i++) {
      const init: Lb4WorkerInit = { program: this.programs[i]!, ct: { base: ct.base, spec: ct.spec, ncpus: ct.ncpus, id: ct.id }, services, index: i, stride: n };
      this.workers.push(startWorker(import.meta.url, "./lb4-worker", init));
    }
    await Promise.all(this.workers.map((w) => nextMessage<string>(w)));
    const rounds = quick ? 5 : 15;
    const batches = quick ? 10 : 40;
    const all = { new: [] as Lb4RoundResult[][], est: [] as Lb4RoundResult[][] };
    const one = { new: [] as Lb4RoundResult[][], est: [] as Lb4RoundResult[][] };
    for (let r = 0; r < rounds; r++) {
      for (const phase of ["new", "est"] as const) {
        one[phase].push(await this.round(this.workers.slice(0, 1), phase, batches));
        all[phase].push(await this.round(this.workers, phase, batches));
      }
    }
    if (ct.count !== 2 * BACKGROUND) throw new Error(`bench: lb4 workers: CT map holds ${ct.count} entries, expected ${2 * BACKGROUND}`);
    const agg = (rs: Lb4RoundResult[]) => rs.reduce((a, x) => a + x.packets, 0) / (Math.max(...rs.map((x) => x.busyMs)) / 1000);
    const perWorker = (rounds: Lb4RoundResult[][]) => Array.from({ length: n }, (_, w) => median(rounds.map((rs) => rs[w]!.packets / (rs[w]!.busyMs / 1000))));
    const mad = (xs: number[]) => median(xs.map((x) => Math.abs(x - median(xs))));
    return {
      workers: n,
      new_pps: median(all.new.map(agg)),
      established_pps: median(all.est.map(agg)),
      new_mad_pps: mad(all.new.map(agg)),
      established_mad_pps: mad(all.est.map(agg)),
      new_pps_per_worker: perWorker(all.new),
      established_pps_per_worker: perWorker(all.est),
      new_pps_1worker: median(one.new.map(agg)),
      established_pps_1worker: median(one.est.map(agg)),
      rounds,
    };
  }

  private async round(ws: Worker[], phase: "new" | "est", batches: number): Promise<Lb4RoundResult[]> {
    const barrier = new Int32Array(new SharedArrayBuffer(4));
    const replies = ws.map((w) => nextMessage<Lb4RoundResult>(w));
    for (const w of ws) w.postMessage({ phase, batches, barrier, parties: ws.length } satisfies Lb4Round);
    const rs = await Promise.all(replies);
    const traps = rs.reduce((a, r) => a + r.traps, 0);
    if (traps > 0) throw new Error(`bench: lb4 workers: ${traps} packets trapped`);
    return rs;
  }

  private async stop(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
    this.workers.length = 0;
  }

  async close(): Promise<void> {
    await this.stop();
  }
}
