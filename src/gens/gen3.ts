// Gen 3: VPC-native pod addresses (AWS VPC CNI) + kube-proxy iptables.
//  - each node's ENIs are planned from its subnet (instance type limits, aws-vpc.ts); pods get ENI secondary IPs
//    through the aws-cni plugin (eni veth, /32, static ARP for 169.254.1.1);
//  - kubelet's --max-pods is ENIs x (IPs - 1) + 2: a pod beyond it is rejected at admission (OutOfpods), a pod
//    the plugin cannot give an address fails its sandbox (FailedCreatePodSandBox);
//  - the VPC fabric knows every pod address: the router holds a /32 per pod towards its node (the secondary
//    IP's ENI attachment), and inside a subnet the node answers ARP for its pods (proxy_arp on eth0 stands in
//    for the VPC resolving an address to the ENI holding it);
//  - kube-proxy iptables (IPVS is refused until the IPVS proxier exists) and AWS-SNAT-CHAIN-0 per node.
import type { Cluster } from "../k8s/types.js";
import { maxPods, planEnis, type AwsIpamdState } from "../k8s/cni/aws-vpc.js";
import { emptyPluginState } from "../k8s/cni/plugin.js";
import type { NetConf } from "../k8s/cni/types.js";
import { NetError } from "../net/error.js";
import { buildUnderlay, cniAdd, clusterView, finishNetfilter, genTitle, hostNetworkPod, kubeProxyPayload, pluginContext, podKey, resolveOptions, routerDevFor, run, warning } from "./cluster-dataplane.js";
import { awsSnatRules } from "./masquerade.js";
import type { BuildOptions, BuiltGeneration, ClusterEvent, PodPlane } from "./types.js";

export const DEFAULT_INSTANCE_TYPE = "m5.large";

export function awsConf(instanceType: string, nodeIP: string, subnet: string, enis: NonNullable<AwsIpamdState["nodes"][string]>["enis"]): NetConf {
  return { cniVersion: "1.0.0", name: "aws-cni", type: "aws-cni", vethPrefix: "eni", instanceType, nodeIP, subnet, enis };
}

export function buildGen3(cluster: Cluster, opts: BuildOptions = {}): BuiltGeneration {
  const o = resolveOptions(cluster, opts);
  if (o.proxyMode === "ipvs") throw new NetError("kube-proxy IPVS mode is not built yet (use iptables)", "gen3: --proxy-mode ipvs");
  const u = buildUnderlay(cluster, o);
  const { world } = u;
  // EC2 attaches ENIs with addresses from the subnet; plan them per subnet so nodes never share one.
  const taken = new Map<string, Set<string>>();
  for (const n of u.nodes) {
    const ex = taken.get(n.subnet) ?? new Set([...u.nodes.map((x) => x.ip), n.gateway]);
    taken.set(n.subnet, ex);
  }
  const plans = new Map(
    u.nodes.map((n) => {
      const type = n.instanceType ?? DEFAULT_INSTANCE_TYPE;
      const enis = planEnis(type, n.ip, n.subnet, taken.get(n.subnet)!);
      n.podRanges = enis.flatMap((e) => e.secondaryIPs.map((ip) => `${ip}/32`));
      // The VPC resolves any address of the subnet to the ENI holding it.
      run(n.ns, "sysctl -w net.ipv4.conf.eth0.proxy_arp=1");
      return [n.name, { type, enis }];
    }),
  );
  const ctxs = new Map(u.nodes.map((n) => [n.name, pluginContext(world, n, emptyPluginState())]));
  const count = new Map<string, number>();
  const pods: PodPlane[] = [];
  const failed: BuiltGeneration["failed"] = [];
  const events: ClusterEvent[] = [];
  const fail = (key: string, node: string, reason: string, msg: string) => {
    const ev = warning(reason, key, msg);
    failed.push({ key, node, events: [ev] });
    events.push(ev);
  };
  for (const p of cluster.pods) {
    const key = podKey(p);
    const n = u.nodes.find((x) => x.name === p.nodeName);
    if (n === undefined) {
      fail(key, p.nodeName, "FailedScheduling", "pod has no node (the model does not schedule)");
      continue;
    }
    const plan = plans.get(n.name)!;
    const used = count.get(n.name) ?? 0;
    const capacity = maxPods(plan.type);
    if (used >= capacity) {
      // kubelet admission (the scheduler would not place it; a pod bound by nodeName is rejected by kubelet).
      fail(key, n.name, "OutOfpods", `Node didn't have enough resource: pods, requested: 1, used: ${used}, capacity: ${capacity}`);
      continue;
    }
    count.set(n.name, used + 1);
    if (p.hostNetwork) {
      pods.push(hostNetworkPod(n, p));
      continue;
    }
    const r = cniAdd(ctxs.get(n.name)!, o.seed, p, awsConf(plan.type, n.ip, n.subnet, plan.enis));
    if (r.error !== null) {
      fail(key, n.name, "FailedCreatePodSandBox", r.error);
      continue;
    }
    const ip = r.result!.ips[0]!.address.split("/")[0]!;
    pods.push({ ...r.plane, ip, hostIf: r.result!.interfaces![0]!.name, cniResult: r.result });
    // The VPC route table: the secondary IP goes to the instance whose ENI holds it.
    run(u.router, `ip route add ${ip} via ${n.ip} dev ${routerDevFor(u, n)}`);
  }
  const view = clusterView(cluster, pods, new Set(failed.map((f) => f.key)));
  for (const n of u.nodes) {
    n.netfilter.payloads.push({ owner: "kube-proxy", text: kubeProxyPayload(view, n, o.vpcCIDR) });
    n.netfilter.payloads.push({ owner: "aws-node", text: awsSnatRules(o.vpcCIDR, n.ip) });
  }
  const g: BuiltGeneration = {
    gen: 3,
    title: genTitle(3),
    world,
    cluster: view,
    nodes: u.nodes,
    pods,
    failed,
    events,
    router: u.router,
    external: u.external,
    encapsulation: "none",
    options: o,
  };
  finishNetfilter(g, opts);
  return g;
}
