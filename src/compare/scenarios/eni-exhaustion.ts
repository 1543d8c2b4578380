// ENI IP exhaustion (Gen 3, AWS VPC CNI): pods take real VPC addresses from the node's ENIs. An m5.large has 3
// ENIs x 10 IPv4 addresses; one per ENI is the ENI's own, so 27 pod addresses, and kubelet's max-pods is
// 3 x (10 - 1) + 2 = 29. The 30th pod (2 hostNetwork DaemonSet pods + 28) is refused by the scheduler's pod count
// (OutOfpods); with no hostNetwork pods the 28th pod-network pod reaches the CNI, which has no address left
// (FailedCreatePodSandBox). Gen 1 and 2 hand out a /24 (or /26 blocks) per node and start every pod.
import { BUILDERS, buildGeneration } from "../../gens/index.js";
import type { GenNumber } from "../../gens/types.js";
import { packedNode } from "./clusters.js";
import { notApplicable, type GenVerdict, type Scenario, type ScenarioResult } from "./types.js";

export const eniExhaustion: Scenario = {
  name: "eni-exhaustion",
  title: "ENI IP exhaustion: the 30th pod on an m5.large gets no address (Gen 3)",
  gens: [3],
  async run(gens: GenNumber[]): Promise<ScenarioResult> {
    const happened: string[] = [];
    const counters: Record<string, number> = {};
    const verdicts: GenVerdict[] = [];
    for (const gen of gens) {
      if (BUILDERS[gen] === undefined) {
        verdicts.push(notApplicable(gen, "no builder for this generation yet (Cilium in ENI mode has the same limit; overlay or prefix delegation does not)"));
        continue;
      }
      const a = buildGeneration(gen, packedNode("m5.large", 2, 28));
      const b = buildGeneration(gen, packedNode("m5.large", 0, 28));
      const c: Record<string, number> = {
        pods_requested_a: 30, pods_running_a: a.pods.length, pods_failed_a: a.failed.length,
        pods_requested_b: 28, pods_running_b: b.pods.length, pods_failed_b: b.failed.length,
        OutOfpods: [...a.events, ...b.events].filter((e) => e.reason === "OutOfpods").length,
        FailedCreatePodSandBox: [...a.events, ...b.events].filter((e) => e.reason === "FailedCreatePodSandBox").length,
      };
      if (gen === 3) {
        Object.assign(counters, c);
        happened.push(`m5.large n1 with 2 hostNetwork pods + 28 pod-network pods: ${a.pods.length} running, ${a.failed.length} refused`);
        for (const e of a.events) happened.push(`  ${e.type} ${e.reason} ${e.object}: ${e.message}`);
        happened.push(`m5.large n1 with 28 pod-network pods: ${b.pods.length} running, ${b.failed.length} without an address`);
        for (const e of b.events) happened.push(`  ${e.type} ${e.reason} ${e.object}: ${e.message}`);
      }
      const failed = a.failed.length + b.failed.length;
      verdicts.push({
        gen,
        applies: gen === 3,
        verdict: failed === 0 ? `all ${a.pods.length + b.pods.length} pods start (pod addresses come from a per-node range, not the ENIs)` : `${failed} pod(s) cannot start: ${[...new Set([...a.events, ...b.events].map((e) => e.reason))].join(", ")}`,
        counters: c,
      });
    }
    return { name: this.name, title: this.title, happened, counters, gens: verdicts };
  },
};
