// `tcbox bench`: every generation at every scale in one process and one run, the Service hop's per-packet work
// measured with tinybench (warm-up, retained samples, median and MAD per packet), plus per-packet work counters,
// memory per Service and per conntrack entry, and the control-plane cost of one Service change.
import { BATCH, setupIptables, syncMedianMs, type KubeProxyMode } from "./iptables.js";
import { growTo, LB4_CT_CREATES_NEW, LB4_LOOKUPS_ESTABLISHED, LB4_LOOKUPS_NEW, lb4BytesPerCtEntry, lb4BytesPerService, lb4Tasks, loadLb4, upsertService } from "./lb4.js";
import { syntheticCluster } from "./cluster.js";
import { ebpfPolicyHop, iptablesPolicyHop, type PolicyHop } from "./policy.js";
import { BACKGROUND, benchClock } from "./workload.js";
import { measure, medianMs } from "./measure.js";
import { Lb4Workers } from "./lb4-workers.js";
import { loadavg } from "node:os";

export type BenchMode = "iptables" | "ipvs" | "nftables" | "ebpf";
/** kube-proxy modes Gen 1-3 can be measured in. */
export const KUBE_PROXY_MODES: readonly KubeProxyMode[] = ["iptables", "ipvs", "nftables"];
/** Measured when --modes is not given. */
export const DEFAULT_KUBE_PROXY_MODES: readonly KubeProxyMode[] = ["iptables", "ipvs"];

export interface BenchConfig {
  gens: number[];
  services: number[];
  endpoints: number;
  policies: number;
  quick: boolean;
  /** kube-proxy modes for Gen 1-3 rows (default iptables and ipvs). */
  modes?: KubeProxyMode[];
  /** Worker threads for Gen 4's packet path (lb4-workers.ts); Gen 1-3 run on one thread. Default 1. */
  workers?: number;
}

export interface BenchResult {
  gen: number;
  services: number;
  new_pps: number;
  established_pps: number;
  rules_per_new: number;
  lookups_per_packet: number;
  sync_ms: number;
  mode: BenchMode;
  endpoints: number;
  new_ns: number;
  new_mad_ns: number;
  established_ns: number;
  established_mad_ns: number;
  rules_per_established: number;
  lookups_per_new: number;
  ct_ops_per_new: number;
  ruleset_rules: number;
  bytes_per_service: number;
  bytes_per_ct_entry: number;
  samples: number;
  /**
   * Gen 4: the same measurement with the traffic on 10 of the Services installed (the maps' size, not their
   * working set): equal to the 10-Service row when the lookups are O(1).
   */
  new_pps_hot10?: number;
  established_pps_hot10?: number;
  /**
   * --policies N: the NetworkPolicy hop of a new connection at the backend pod's node with N policies selecting
   * it (Felix-style iptables for Gen 1-3, programs/policy.ts for Gen 4), measured once per run (it does not depend
   * on the Services), and the first packet's cost through both hops.
   */
  policies?: number;
  policy_new_ns?: number;
  policy_new_mad_ns?: number;
  policy_rules_per_new?: number;
  new_with_policy_pps?: number;
  /**
   * Threads the row's packet path ran on. Gen 1-3: 1 (the netfilter model is TypeScript on one thread). Gen 4
   * with --workers N > 1: new_pps and established_pps are then N workers' total packets over the longest worker's
   * packet-path wall time (lb4-workers.ts), *_1worker the same measurement with one worker in the same run,
   * *_per_worker each worker's own rate, and single_thread_* the main thread's figure (what new_pps is without
   * --workers; new_ns and established_ns stay that measurement's).
   */
  workers?: number;
  /** With --workers N > 1: the MAD of the N workers' total over the rounds (new_mad_ns is the single thread's). */
  new_mad_pps?: number;
  established_mad_pps?: number;
  new_pps_1worker?: number;
  established_pps_1worker?: number;
  new_pps_per_worker?: number[];
  established_pps_per_worker?: number[];
  single_thread_new_pps?: number;
  single_thread_established_pps?: number;
}

export interface BenchRun {
  results: BenchResult[];
  batch: number;
  hop: string;
  notes: string[];
  /** "cpu": per-batch CPU time of this process (time descheduled on a shared machine not counted); "wall". */
  clock: string;
  /** Live connections in every connection table while measuring. */
  background_connections: number;
}

/** Steps the run will report through onStep (for a progress bar). */
export function benchSteps(cfg: BenchConfig): number {
  const ipt = cfg.gens.some((g) => g <= 3) ? (cfg.modes ?? DEFAULT_KUBE_PROXY_MODES).length : 0;
  const ebpf = cfg.gens.includes(4) ? ((cfg.workers ?? 1) > 1 ? 2 : 1) : 0;
  return cfg.services.length * (ipt + ebpf) + (cfg.policies > 0 ? 1 : 0);
}

const pps = (ns: number) => 1e9 / ns;

export async function runBench(cfg: BenchConfig, onStep: (label: string) => void = () => {}): Promise<BenchRun> {
  const sizes = [...new Set(cfg.services)].sort((a, b) => a - b);
  const results: BenchResult[] = [];
  const modes = cfg.modes ?? [...DEFAULT_KUBE_PROXY_MODES];
  const notes: string[] = [
    "Gen 1-3 share kube-proxy on the node taking the Service decision: one measurement per mode serves all three rows.",
    `Every table holds ${BACKGROUND} live connections when measuring; entries a new-connection batch made are removed off the clock.`,
  ];
  if (modes.includes("nftables")) {
    notes.push("kube-proxy nftables mode: rules_per_new counts nft rules whose evaluation started; lookups_per_new adds its set and verdict-map lookups (service-ips, numgen vmap, ...) to conntrack's.");
  }
  if (cfg.policies > 0) {
    notes.push(`--policies ${cfg.policies}: the policy hop (at the backend pod's node) is measured once and added to each row's first-packet cost: new_with_policy_pps = 1e9 / (new_ns + policy_new_ns).`);
  }
  const ipGens = cfg.gens.filter((g) => g <= 3);
  const lb = cfg.gens.includes(4) ? await loadLb4(cfg.endpoints, sizes[sizes.length - 1]!) : null;
  const nWorkers = cfg.workers ?? 1;
  const workers = lb && nWorkers > 1 ? await Lb4Workers.start(nWorkers, cfg.endpoints, sizes[sizes.length - 1]!) : null;
  if (nWorkers > 1) {
    notes.push(
      `--workers ${nWorkers}: Gen 4's new_pps and established_pps are ${nWorkers} worker threads' total packets over the longest worker's packet-path wall time (lb4 built per worker, the maps shared; each worker on its own connections), new_pps_1worker the same with one worker; single_thread_* is the main thread's measurement. Gen 1-3 run on one thread (workers: 1). Wall clock on a shared machine: load average ${loadavg()[0]!.toFixed(1)} at the start.`,
    );
  }
  for (const s of sizes) {
    const cluster = syntheticCluster(s, cfg.endpoints);
    for (const mode of ipGens.length > 0 ? modes : []) {
      onStep(`kube-proxy ${mode} ${s} Services`);
      const ipt = setupIptables(cluster, mode);
      const est = await measure(ipt.established.fn, ipt.established.items, cfg.quick);
      const nw = await measure(ipt.newConn.fn, ipt.newConn.items, cfg.quick);
      const syncMs = syncMedianMs(cluster, mode, cfg.quick, ipt.syncMs);
      for (const gen of ipGens) {
        results.push({
          gen, services: s, new_pps: pps(nw.medianNs), established_pps: pps(est.medianNs), rules_per_new: ipt.rulesPerNew,
          // Hash lookups per established packet (conntrack; IPVS adds its connection table); rules in rules_per_new.
          lookups_per_packet: ipt.lookupsPerEstablished, sync_ms: syncMs, mode, endpoints: cfg.endpoints,
          new_ns: nw.medianNs, new_mad_ns: nw.madNs, established_ns: est.medianNs, established_mad_ns: est.madNs,
          rules_per_established: ipt.rulesPerEstablished, lookups_per_new: ipt.lookupsPerNew,
          // nf_conntrack_in (lookup miss + init), nf_conntrack_confirm (insert); IPVS: + connection create.
          ct_ops_per_new: mode === "ipvs" ? 3 : 2, ruleset_rules: ipt.rules, bytes_per_service: ipt.rulesetBytes / s,
          bytes_per_ct_entry: ipt.bytesPerCtEntry, samples: nw.samples + est.samples, workers: 1,
        });
      }
    }
    if (lb) {
      onStep(`eBPF lb4 ${s} Services`);
      growTo(lb, s);
      const t = lb4Tasks(lb);
      const nw = await measure(t.newConn.fn, t.newConn.items, cfg.quick);
      const est = await measure(t.established.fn, t.established.items, cfg.quick);
      const hot = s > 10 ? lb4Tasks(lb, 10) : null;
      const nwHot = hot ? await measure(hot.newConn.fn, hot.newConn.items, cfg.quick) : nw;
      const estHot = hot ? await measure(hot.established.fn, hot.established.items, cfg.quick) : est;
      // One Service change: the agent rewrites that Service's entries (reverse NAT, slots, slot 0).
      const target = s >> 1;
      const syncMs = medianMs(() => upsertService(lb, target), 101);
      let threads: Partial<BenchResult> = { workers: 1 };
      if (workers) {
        onStep(`eBPF lb4 ${s} Services, ${nWorkers} workers`);
        const f = await workers.measure(s, cfg.quick);
        threads = {
          workers: nWorkers, new_pps: f.new_pps, established_pps: f.established_pps, new_mad_pps: f.new_mad_pps,
          established_mad_pps: f.established_mad_pps, new_pps_1worker: f.new_pps_1worker,
          established_pps_1worker: f.established_pps_1worker, new_pps_per_worker: f.new_pps_per_worker,
          established_pps_per_worker: f.established_pps_per_worker, single_thread_new_pps: pps(nw.medianNs), single_thread_established_pps: pps(est.medianNs),
        };
      }
      results.push({
        gen: 4, services: s, new_pps: pps(nw.medianNs), established_pps: pps(est.medianNs), rules_per_new: 0,
        lookups_per_packet: LB4_LOOKUPS_ESTABLISHED, sync_ms: syncMs, mode: "ebpf", endpoints: cfg.endpoints,
        new_ns: nw.medianNs, new_mad_ns: nw.madNs, established_ns: est.medianNs, established_mad_ns: est.madNs,
        rules_per_established: 0, lookups_per_new: LB4_LOOKUPS_NEW, ct_ops_per_new: LB4_CT_CREATES_NEW + 1,
        ruleset_rules: 0, bytes_per_service: lb4BytesPerService(lb), bytes_per_ct_entry: lb4BytesPerCtEntry(lb),
        samples: nw.samples + est.samples, new_pps_hot10: pps(nwHot.medianNs), established_pps_hot10: pps(estHot.medianNs),
        ...threads,
      });
    }
  }
  await workers?.close();
  const order: BenchMode[] = ["iptables", "ipvs", "nftables", "ebpf"];
  if (cfg.policies > 0) {
    onStep(`NetworkPolicy hop, ${cfg.policies} policies`);
    for (const ebpf of [false, true]) {
      const rows = results.filter((r) => (r.mode === "ebpf") === ebpf);
      if (rows.length === 0) continue;
      const hop: PolicyHop = ebpf ? await ebpfPolicyHop(cfg.policies) : iptablesPolicyHop(cfg.policies);
      const m = await measure(hop.newConn.fn, hop.newConn.items, cfg.quick);
      for (const r of rows) {
        r.policies = cfg.policies;
        r.policy_new_ns = m.medianNs;
        r.policy_new_mad_ns = m.madNs;
        r.policy_rules_per_new = hop.rulesPerNew;
        r.new_with_policy_pps = pps(r.new_ns + m.medianNs);
      }
    }
  }
  results.sort((a, b) => a.gen - b.gen || order.indexOf(a.mode) - order.indexOf(b.mode) || a.services - b.services);
  return { results, batch: BATCH, clock: benchClock(), background_connections: BACKGROUND, hop: "the client's node, where the Service decision is taken (netfilter PREROUTING..POSTROUTING for Gen 1-3, lb4 on tc for Gen 4)", notes };
}
