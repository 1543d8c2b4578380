// NetworkPolicy decision cost per packet against the number of pods and policies: Gen 1-3's Felix-style iptables
// rules (per-endpoint dispatch + policy chains with member sets expanded to one rule per pod, walked by the
// compiled evaluator) vs Gen 4's policy program (ipcache LPM + endpoint + policy map lookups). The packet is the
// first of a connection the policies deny (the costliest verdict for iptables: every rule of every policy
// selecting the destination is read). M policies each select the destination pod and allow one role; pods are
// spread over the roles, so the rules grow with pods and policies; the eBPF lookups do not.
import { compileRuleset } from "../src/netfilter/compile.js";
import { AddrType } from "../src/netfilter/ctstate.js";
import { type EvalEnv, EvalResult, evalChain, NF_DROP } from "../src/netfilter/eval.js";
import { PacketState } from "../src/netfilter/packet-state.js";
import { RecentTables } from "../src/netfilter/recent.js";
import { parseIptablesRestore } from "../src/netfilter/restore.js";
import { Hook } from "../src/netfilter/tables.js";
import { BpfKernel } from "../src/ebpf/kernel.js";
import { PacketBatch } from "../src/ebpf/batch.js";
import { IdentityAllocator, RESERVED_IDENTITIES } from "../src/k8s/agent/identity.js";
import { PolicyMaps } from "../src/k8s/agent/policy-maps.js";
import { calicoPolicySave } from "../src/k8s/netpol/calico.js";
import { ciliumPolicy, writeCiliumPolicy } from "../src/k8s/netpol/cilium.js";
import type { Cluster, NetworkPolicy, Pod } from "../src/k8s/types.js";
import { formatIpv4, parseIpv4 } from "../src/packet/addr.js";
import { buildTcp } from "../src/packet/index.js";
import { runGroup, type BenchOptions } from "./harness.js";

const BATCH = 1024;

function pod(ns: string, i: number, labels: Record<string, string>): Pod {
  return {
    kind: "Pod",
    metadata: { name: `p${i}`, namespace: ns, labels, annotations: {} },
    nodeName: "n1",
    hostNetwork: false,
    containers: [{ name: "c", image: "c", ports: [{ name: null, containerPort: 80, protocol: "TCP", hostPort: null }] }],
    podIP: formatIpv4((0x0af40000 + (ns === "x" ? 0 : 0x8000) + i + 2) >>> 0),
    phase: "Running",
    ready: true,
    terminating: false,
    ownerRef: null,
  };
}

function cluster(pods: number, policies: number): Cluster {
  const ps = Array.from({ length: pods }, (_, i) => pod("x", i, i === 0 ? { app: "target" } : { role: `r${i % policies}` }));
  ps.push(pod("y", 0, { role: "outsider" }));
  const pols: NetworkPolicy[] = Array.from({ length: policies }, (_, j) => ({
    kind: "NetworkPolicy",
    metadata: { name: `allow-r${j}`, namespace: "x", labels: {}, annotations: {} },
    podSelector: { matchLabels: { app: "target" }, matchExpressions: [] },
    policyTypes: ["Ingress"],
    ingress: [{ peers: [{ podSelector: { matchLabels: { role: `r${j}` }, matchExpressions: [] }, namespaceSelector: null, ipBlock: null }], ports: [{ protocol: "TCP", port: 80, endPort: null }] }],
    egress: [],
  }));
  const ns = (name: string) => ({ kind: "Namespace" as const, metadata: { name, namespace: "", labels: {}, annotations: {} } });
  return { namespaces: [ns("x"), ns("y")], nodes: [], pods: ps, services: [], endpointSlices: [], networkPolicies: pols, clusterCIDR: "10.244.0.0/16", serviceCIDR: "10.96.0.0/12", seed: 1 };
}

const env: EvalEnv = { randomMatch: () => false, addrType: () => AddrType.UNICAST, now: () => 0, recent: new RecentTables() };

export default async function (opts: BenchOptions): Promise<void> {
  const POD_SIZES = [10, 100, 1000];
  const kernel0 = new BpfKernel({ seed: 1 });
  await kernel0.load("programs/policy.ts"); // compile once
  for (const policies of [1, 10, 100]) {
    const tasks = [];
    const ebpfTasks = [];
    for (const pods of POD_SIZES) {
      if (policies > pods) continue;
      const c = cluster(pods, policies);
      const src = c.pods[c.pods.length - 1]!;
      const dst = c.pods[0]!;
      // Gen 1-3: the node's rules, every pod a local endpoint, dispatch by address (the linear form).
      const save = calicoPolicySave(c, c.pods.map((p, i) => ({ pod: p, hostIf: `cali${i}` })), { dispatch: "address" });
      const t = compileRuleset(parseIptablesRestore(save)).byName.filter!;
      const fwd = t.hookChain[Hook.FORWARD]!;
      const r = new EvalResult();
      const p = new PacketState();
      // The verdict measured must be the deny (else the walk would stop early and the figure mean nothing).
      p.proto = 6;
      p.src = parseIpv4(src.podIP);
      p.dst = parseIpv4(dst.podIP);
      p.dport = 80;
      evalChain(t, fwd, p, env, r);
      if (r.verdict !== NF_DROP) throw new Error(`iptables ${pods}/${policies}: expected DROP`);
      tasks.push({
        name: `iptables ${pods} pods, ${policies} policies (${save.split("\n").filter((l) => l.startsWith("-A")).length} rules)`,
        items: BATCH,
        fn: () => {
          for (let i = 0; i < BATCH; i++) {
            p.reset();
            p.proto = 6;
            p.src = parseIpv4(src.podIP);
            p.dst = parseIpv4(dst.podIP);
            p.sport = 30000 + i;
            p.dport = 80;
            p.len = 60;
            evalChain(t, fwd, p, env, r);
          }
        },
      });
      // Gen 4: the same policies in the maps of programs/policy.ts.
      const kernel = new BpfKernel({ seed: 2 });
      const prog = (await kernel.load("programs/policy.ts")).program();
      kernel.ktimeNs = 100n * 1_000_000_000n;
      const maps = new PolicyMaps(kernel);
      const ids = new IdentityAllocator();
      maps.upsertIpcache("0.0.0.0/0", RESERVED_IDENTITIES.world);
      for (const q of c.pods) maps.upsertIpcache(`${q.podIP}/32`, ids.allocate(q.metadata.labels, q.metadata.namespace));
      writeCiliumPolicy(maps, ciliumPolicy(c, ids, c.pods.map((q, i) => ({ pod: q, id: i + 1 }))));
      const batch = new PacketBatch(kernel.mem);
      for (let i = 0; i < BATCH; i++) batch.add(buildTcp({ src: src.podIP, dst: dst.podIP, sport: 30000 + i, dport: 80, flags: 0x02 }));
      if (prog.run(buildTcp({ src: src.podIP, dst: dst.podIP, sport: 29999, dport: 80, flags: 0x02 })).retval !== 2) throw new Error(`eBPF ${pods}/${policies}: expected TC_ACT_SHOT`);
      for (let w = 0; w < 50; w++) prog.runBatch(batch); // tier up the WebAssembly
      ebpfTasks.push({ name: `eBPF ${pods} pods, ${policies} policies`, items: BATCH, fn: () => prog.runBatch(batch) });
    }
    await runGroup(`policy: NEW denied packet, ${policies} polic${policies === 1 ? "y" : "ies"} selecting the destination`, [...tasks, ...ebpfTasks], opts);
  }
}
