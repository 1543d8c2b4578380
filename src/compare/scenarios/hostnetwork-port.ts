// hostNetwork port conflict: hostNetwork pods share the node's network namespace, so two of them binding port 80
// on the same node collide exactly as two processes on the host would: the second bind(2) fails with EADDRINUSE
// and the container crash-loops. (The scheduler's NodePorts filter prevents it only when the pod declares a
// hostPort; a plain `hostNetwork: true` pod whose server listens on :80 is scheduled anyway.) The same two
// servers in pod-network pods each have their own namespace and both bind.
import { BUILDERS, buildGeneration, podOf } from "../../gens/index.js";
import type { GenNumber } from "../../gens/types.js";
import { IPPROTO_TCP, NetError } from "../../net/index.js";
import { hostNetworkPair } from "./clusters.js";
import { notApplicable, type GenVerdict, type Scenario, type ScenarioResult } from "./types.js";

const EADDRINUSE = 98;

export const hostNetworkPort: Scenario = {
  name: "hostnetwork-port",
  title: "hostNetwork port conflict: a second hostNetwork pod binding :80 on the same node gets EADDRINUSE",
  gens: [1, 2, 3, 4],
  async run(gens: GenNumber[]): Promise<ScenarioResult> {
    const happened: string[] = [];
    const counters: Record<string, number> = { binds: 0, eaddrinuse: 0 };
    const verdicts: GenVerdict[] = [];
    for (const gen of gens) {
      if (BUILDERS[gen] === undefined) {
        verdicts.push(notApplicable(gen, "no builder for this generation yet (hostNetwork pods share the node namespace in every generation)"));
        continue;
      }
      const g = buildGeneration(gen, hostNetworkPair());
      const a = podOf(g, "ingress/ingress-a");
      const b = podOf(g, "ingress/ingress-b");
      const c = { binds: 0, eaddrinuse: 0, same_namespace: a.ns === b.ns ? 1 : 0 };
      let msg = "";
      for (const p of [a, b]) {
        try {
          p.ns.bind(IPPROTO_TCP, 0, 80, `nginx (${p.key})`);
          c.binds++;
        } catch (e) {
          if (!(e instanceof NetError) || e.errno !== EADDRINUSE) throw e;
          c.eaddrinuse++;
          msg = `${p.key}: ${e.where}: ${e.message}`;
        }
      }
      counters.binds += c.binds;
      counters.eaddrinuse += c.eaddrinuse;
      if (happened.length === 0) {
        happened.push(`ingress-a and ingress-b (hostNetwork) both run in ${a.ns.name}; each starts nginx listening on 0.0.0.0:80`);
        happened.push(`  ${a.key}: bind 0.0.0.0:80/tcp ok`);
        happened.push(`  ${msg} -> the container exits, CrashLoopBackOff`);
      }
      verdicts.push({ gen, applies: true, verdict: c.eaddrinuse === 1 ? "second bind fails with EADDRINUSE (the node's port space is shared)" : "both binds succeed", counters: c });
    }
    return { name: this.name, title: this.title, happened, counters, gens: verdicts };
  },
};
