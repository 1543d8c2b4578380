// The one workload every mode of `tcbox bench` is measured with: connection c goes from a pod address in the
// cluster CIDR to Service svcOf(c, n) (spread uniformly over all n Services, as real traffic hits a random
// Service: the average iptables walk is ~n/2 rules) on port 80. Before measuring, every table holds the same
// BACKGROUND live connections (connections 0..BACKGROUND-1): a busy node's conntrack is neither empty nor full.
// New connections use fresh numbers (each batch its own), established traffic the first BATCH background
// connections. Tasks time only the dataplane work: packet bytes are written before the clock starts and the
// entries a new-connection batch created are removed after it stops (conntrack GC / Cilium's CT GC, which run
// off the packet path in both systems), so the tables keep their size from sample to sample.
import { writeTcp } from "../packet/build.js";
import { median } from "./measure.js";
import { serviceIp } from "./cluster.js";

/** Packets per timed call. */
export const BATCH = 1024;
/** Live connections in every table before measuring. */
export const BACKGROUND = 16384;
export const SERVICE_PORT = 80;
export const L3 = 14;
export const SYN = 0x02;
export const ACK = 0x10;
/** New-connection batches cycle through this many distinct connection-number ranges (entries are removed after each). */
const NEW_RANGES = 4096;

export interface PathTask {
  /** One timed call; returns tinybench's overriddenDuration (ms of dataplane work only). */
  fn: () => { overriddenDuration: number };
  items: number;
}

/**
 * The clock of timed tasks. "cpu" (default): this process's CPU time (process.cpuUsage, user + system, µs
 * resolution) minus the cost of reading it, so time spent descheduled while other jobs run on this shared machine
 * is not counted; "wall": performance.now().
 */
export type BenchClock = "cpu" | "wall";
let clock: BenchClock = "cpu";
let cpuReadUs = -1;

export function setBenchClock(c: BenchClock): void {
  clock = c;
}
export function benchClock(): BenchClock {
  return clock;
}

/** Median µs an empty process.cpuUsage() interval reads (the cost of the two reads). */
function cpuReadCost(): number {
  if (cpuReadUs < 0) {
    const xs: number[] = [];
    for (let i = 0; i < 2001; i++) {
      const c = process.cpuUsage(process.cpuUsage());
      xs.push(c.user + c.system);
    }
    cpuReadUs = median(xs);
  }
  return cpuReadUs;
}

/** A task that times only `run` (ms, tinybench's overriddenDuration); `prepare` and `cleanup` run off the clock. */
export function timedTask(run: () => void, prepare?: () => void, cleanup?: () => void): PathTask {
  const overhead = cpuReadCost();
  return {
    items: BATCH,
    fn: () => {
      prepare?.();
      let d: number;
      if (clock === "cpu") {
        const c0 = process.cpuUsage();
        run();
        const c = process.cpuUsage(c0);
        d = Math.max(0, c.user + c.system - overhead) / 1000;
      } else {
        const t0 = performance.now();
        run();
        d = performance.now() - t0;
      }
      cleanup?.();
      return { overriddenDuration: d };
    },
  };
}

/** Client address of connection c: 10.244.0.0/16 (cluster CIDR), 1024 connections per address. */
export function clientIp(c: number): number {
  return (0x0af40000 + 0x100 + ((c >>> 10) % 0xfe00)) >>> 0;
}
export function clientPort(c: number): number {
  return 20000 + (c & 1023);
}
/** Service index of connection c among n (a multiplicative hash: uniform, the same for every mode). */
export function svcOf(c: number, n: number): number {
  return Math.floor(((Math.imul(c ^ (c >>> 13), 0x9e3779b1) >>> 0) / 4294967296) * n);
}
/** First connection number of new-connection batch g (never a background connection). */
export function newBase(g: number): number {
  return BACKGROUND + (g % NEW_RANGES) * BATCH;
}

/** The server's initial sequence number in the handshakes the benches make (its SYN-ACK carries SERVER_ISN). */
export const SERVER_ISN = 9;

/**
 * Write connection c's packet (client -> ClusterIP:80) at buf[off]; returns its length. Checksums correct. SYN:
 * seq 1; ACK: the third packet of the handshake (seq 2, ack SERVER_ISN + 1).
 */
export function writeConn(buf: Uint8Array, off: number, c: number, n: number, flags: number): number {
  const ack = (flags & ACK) !== 0;
  return writeTcp(buf, off, { src: clientIp(c), dst: serviceIp(svcOf(c, n)), sport: clientPort(c), dport: SERVICE_PORT, flags, seq: ack ? 2 : 1, ack: ack ? SERVER_ISN + 1 : 0 });
}

/** Frame length of a connection packet (all are the same size). */
export const CONN_FRAME = 14 + 20 + 20;
