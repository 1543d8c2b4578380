// `tcbox bench --policies N`: the NetworkPolicy hop of a new connection, at the backend pod's node, with N
// policies selecting that pod (each allows one role of clients; clients are spread over the roles, so a first
// packet is allowed by policy ~N/2 on average, as Services are found ~n/2 rules into KUBE-SERVICES).
//  - Gen 1-3: Felix-style iptables (calicoPolicySave, interface dispatch; member sets expanded to one rule per pod)
//    through the node's netfilter path with conntrack: PREROUTING, FORWARD (cali-FORWARD -> to-wl-dispatch ->
//    the pod's chain -> the policy chains), POSTROUTING, confirm.
//  - Gen 4: programs/policy.ts on the pod's tc hook (CT lookups, endpoint, ipcache and policy map lookups, one CT
//    create), with the same policies written into the maps as the agent writes them.
// The first packets are allowed (a Service connection must get through); the entries each batch made are removed
// off the clock, as for the Service hop. Both paths start from empty connection tables.
import { BpfKernel } from "../ebpf/kernel.js";
import { PacketBatch } from "../ebpf/batch.js";
import type { BpfMap } from "../ebpf/maps/map.js";
import { IdentityAllocator, RESERVED_IDENTITIES } from "../k8s/agent/identity.js";
import { PolicyMaps } from "../k8s/agent/policy-maps.js";
import { calicoPolicySave } from "../k8s/netpol/calico.js";
import { ciliumPolicy, writeCiliumPolicy } from "../k8s/netpol/cilium.js";
import type { Cluster, NetworkPolicy, Pod } from "../k8s/types.js";
import { compileRuleset } from "../netfilter/compile.js";
import { Conntrack } from "../netfilter/conntrack.js";
import { ConntrackPathHook } from "../netfilter/conntrack-hook.js";
import { AddrType } from "../netfilter/ctstate.js";
import { NF_ACCEPT } from "../netfilter/eval.js";
import { NetfilterPath, PathResult } from "../netfilter/hooks.js";
import { IfaceRegistry } from "../netfilter/iface.js";
import { PacketState } from "../netfilter/packet-state.js";
import { RecentTables } from "../netfilter/recent.js";
import { parseIptablesRestore } from "../netfilter/restore.js";
import { formatIpv4 } from "../packet/addr.js";
import { writeTcp } from "../packet/build.js";
import { KP_CT_BUCKETS, KP_CT_MAX } from "./iptables.js";
import { CT_MAP } from "./lb4.js";
import { BATCH, CONN_FRAME, L3, SYN, timedTask, type PathTask } from "./workload.js";

const TARGET_PORT = 8080;
const TARGET_IP = 0x0a800001; // the backend pod (10.128.0.1, in endpointIp's range)
/** Client pod i's address (10.244.0.0/16, the cluster CIDR). */
const clientIp = (i: number) => (0x0af40000 + 0x100 + i) >>> 0;

export interface PolicyHop {
  newConn: PathTask;
  /** Rules evaluated per first packet (iptables); 0 for eBPF. */
  rulesPerNew: number;
  /** Rules in the node's filter table (iptables). */
  rules: number;
}

function pod(name: string, ip: number, labels: Record<string, string>): Pod {
  return {
    kind: "Pod",
    metadata: { name, namespace: "bench", labels, annotations: {} },
    nodeName: "node-1",
    hostNetwork: false,
    containers: [{ name: "c", image: "c", ports: [{ name: null, containerPort: TARGET_PORT, protocol: "TCP", hostPort: null }] }],
    podIP: formatIpv4(ip),
    phase: "Running",
    ready: true,
    terminating: false,
    ownerRef: null,
  };
}

/** N policies selecting the target pod, each allowing role r<j> on TCP 8080; max(16, 2N) clients over the roles. */
export function policyCluster(policies: number): { cluster: Cluster; target: Pod; clients: Pod[] } {
  const target = pod("target", TARGET_IP, { app: "target" });
  const clients = Array.from({ length: Math.max(16, 2 * policies) }, (_, i) => pod(`client-${i}`, clientIp(i), { role: `r${i % policies}` }));
  const pols: NetworkPolicy[] = Array.from({ length: policies }, (_, j) => ({
    kind: "NetworkPolicy",
    metadata: { name: `allow-r${j}`, namespace: "bench", labels: {}, annotations: {} },
    podSelector: { matchLabels: { app: "target" }, matchExpressions: [] },
    policyTypes: ["Ingress"],
    ingress: [{ peers: [{ podSelector: { matchLabels: { role: `r${j}` }, matchExpressions: [] }, namespaceSelector: null, ipBlock: null }], ports: [{ protocol: "TCP", port: TARGET_PORT, endPort: null }] }],
    egress: [],
  }));
  const ns = { kind: "Namespace" as const, metadata: { name: "bench", namespace: "", labels: {}, annotations: {} } };
  const cluster: Cluster = { namespaces: [ns], nodes: [], pods: [target, ...clients], services: [], endpointSlices: [], networkPolicies: pols, clusterCIDR: "10.244.0.0/16", serviceCIDR: "10.96.0.0/12", seed: 1 };
  return { cluster, target, clients };
}

/** Batch g's packet k: client k % clients -> target:8080, SYN, a source port of its own. */
function writeSyn(buf: Uint8Array, off: number, clients: number, g: number, k: number): void {
  writeTcp(buf, off, { src: clientIp(k % clients), dst: TARGET_IP, sport: 1024 + ((g * BATCH + k) % 60000), dport: TARGET_PORT, flags: SYN, seq: 1 });
}

export function iptablesPolicyHop(policies: number): PolicyHop {
  const { cluster, target, clients } = policyCluster(policies);
  const save = calicoPolicySave(cluster, [{ pod: target, hostIf: "cali0" }], { dispatch: "interface" });
  const ifaces = new IfaceRegistry();
  const recent = new RecentTables();
  const rules = compileRuleset(parseIptablesRestore(save), { ifaces, recent });
  const ct = new Conntrack({ max: KP_CT_MAX, buckets: KP_CT_BUCKETS });
  const hook = new ConntrackPathHook(ct);
  const env = { randomMatch: () => false, addrType: () => AddrType.UNICAST, now: () => 0, recent, isLocal: () => false, masqueradeAddr: () => 0 };
  const path = new NetfilterPath(rules, env, hook);
  const eth0 = ifaces.index("eth0");
  const cali0 = ifaces.index("cali0");
  const p = new PacketState();
  const out = new PathResult();
  const w = Array.from({ length: BATCH }, () => new Uint8Array(CONN_FRAME));
  let g = 0;
  const prepare = (): void => {
    for (let k = 0; k < BATCH; k++) writeSyn(w[k]!, 0, clients.length, g, k);
  };
  const run = (): void => {
    for (let k = 0; k < BATCH; k++) {
      const f = w[k]!;
      hook.setPacket(f, L3);
      p.reset();
      p.fromIpv4(f, L3);
      p.iif = eth0;
      p.oif = cali0;
      if (path.receive(p, out) !== NF_ACCEPT) throw new Error(`bench: policy (iptables, ${policies}): SYN ${k} dropped`);
    }
  };
  const cleanup = (): void => {
    hook.setPacket(w[0]!, L3);
    for (let k = 0; k < BATCH; k++) {
      const node = ct.lookup(clientIp(k % clients.length), TARGET_IP, (((1024 + ((g * BATCH + k) % 60000)) << 16) | TARGET_PORT) >>> 0, 6);
      if (node < 0) throw new Error(`bench: policy (iptables): connection ${k} not in conntrack`);
      ct.kill(node >> 1);
    }
    ct.flushDying();
    g++;
  };
  prepare();
  const r0 = path.result.rulesEvaluated;
  run();
  const rulesPerNew = (path.result.rulesEvaluated - r0) / BATCH;
  cleanup();
  return { newConn: timedTask(run, prepare, cleanup), rulesPerNew, rules: rules.tables.reduce((a, t) => a + t.nRules, 0) };
}

export async function ebpfPolicyHop(policies: number): Promise<PolicyHop> {
  const { cluster, target, clients } = policyCluster(policies);
  const kernel = new BpfKernel({ seed: 2 });
  const prog = (await kernel.load("programs/policy.ts")).program("cls_main");
  kernel.ktimeNs = 100n * 1_000_000_000n;
  const maps = new PolicyMaps(kernel);
  const ids = new IdentityAllocator();
  maps.upsertIpcache("0.0.0.0/0", RESERVED_IDENTITIES.world);
  for (const q of cluster.pods) maps.upsertIpcache(`${q.podIP}/32`, ids.allocate(q.metadata.labels, q.metadata.namespace));
  writeCiliumPolicy(maps, ciliumPolicy(cluster, ids, [{ pod: target, id: 1 }]));
  const ct: BpfMap | undefined = kernel.pinned.get(CT_MAP);
  if (!ct) throw new Error(`bench: policy: map ${CT_MAP} not pinned`);
  const batch = new PacketBatch(kernel.mem);
  const blank = new Uint8Array(CONN_FRAME);
  for (let k = 0; k < BATCH; k++) batch.add(blank);
  const key = new Uint8Array(16);
  let g = 0;
  const prepare = (): void => {
    const u8 = kernel.mem.u8;
    for (let k = 0; k < BATCH; k++) writeSyn(u8, batch.packet(k).byteOffset, clients.length, g, k);
  };
  const run = (): void => {
    prog.runBatch(batch);
  };
  const cleanup = (): void => {
    const u8 = kernel.mem.u8;
    for (let k = 0; k < BATCH; k++) {
      if (batch.retval(k) !== 0) throw new Error(`bench: policy (eBPF, ${policies}): SYN ${k} verdict ${batch.retval(k)}`);
      // The TUPLE_F_OUT entry policy created: daddr, saddr, dport, sport, nexthdr, flags (the packet is unchanged).
      const o = batch.packet(k).byteOffset;
      key.set(u8.subarray(o + L3 + 16, o + L3 + 20), 0);
      key.set(u8.subarray(o + L3 + 12, o + L3 + 16), 4);
      key.set(u8.subarray(o + L3 + 22, o + L3 + 24), 8);
      key.set(u8.subarray(o + L3 + 20, o + L3 + 22), 10);
      key[12] = 6;
      key[13] = 0;
      ct.delete(key);
    }
    g++;
  };
  for (let w = 0; w < 20; w++) {
    prepare();
    run();
    cleanup();
  }
  return { newConn: timedTask(run, prepare, cleanup), rulesPerNew: 0, rules: 0 };
}
