// The Service hop of every generation side by side (what `tcbox bench` measures, through the same src/perf code):
// the first packet of a connection and established packets, kube-proxy iptables and IPVS modes (Gen 1-3) vs lb4
// (Gen 4), all on src/perf/workload.ts's workload (tasks time only the dataplane work).
import { setupIptables } from "../src/perf/iptables.js";
import { growTo, lb4Tasks, loadLb4 } from "../src/perf/lb4.js";
import { syntheticCluster } from "../src/perf/cluster.js";
import { runGroup, type BenchOptions } from "./harness.js";

export default async function (opts: BenchOptions): Promise<void> {
  const sizes = opts.quick ? [10, 1000] : [10, 1000, 10_000];
  const lb = await loadLb4(3, sizes[sizes.length - 1]!);
  for (const n of sizes) {
    const cluster = syntheticCluster(n, 3);
    const ipt = setupIptables(cluster, "iptables");
    const ipvs = setupIptables(cluster, "ipvs");
    growTo(lb, n);
    const t = lb4Tasks(lb);
    await runGroup(`gens: Service hop at ${n} Services (${ipt.rulesPerNew.toFixed(0)} rules per first packet in iptables)`, [
      { name: "Gen 1-3 kube-proxy iptables, new connection", ...ipt.newConn },
      { name: "Gen 1-3 kube-proxy iptables, established", ...ipt.established },
      { name: "Gen 1-3 kube-proxy IPVS, new connection", ...ipvs.newConn },
      { name: "Gen 1-3 kube-proxy IPVS, established", ...ipvs.established },
      { name: "Gen 4 lb4, new connection", ...t.newConn },
      { name: "Gen 4 lb4, established", ...t.established },
    ], opts);
  }
}
