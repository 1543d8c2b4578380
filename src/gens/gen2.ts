// Gen 2: point-to-point veths + /32 routes + BGP (Calico) + kube-proxy iptables.
//  - the calico CNI plugin per pod (cali veth, /32, proxy_arp, 169.254.1.1) with calico-ipam: /26 blocks of the
//    IP pool (the cluster CIDR), claimed per node (first inside the node's podCIDR, see calico-ipam.ts);
//  - BIRD on each node: a blackhole route for each block it holds (`blackhole BLOCK proto bird`) and, for each
//    block of another node, `BLOCK via NEXTHOP dev eth0 proto bird`. The next hop is the other node when it is on
//    the same subnet (full-mesh iBGP); across subnets Calico's BIRD resolves the next hop recursively (`gateway
//    recursive`), which gives the subnet router, and the router must know the blocks: the model peers the
//    underlay router with every node (Calico's "peer with the ToR" design) so it learns them too. No IPIP/VXLAN.
//  - Felix's static ARP: for each local workload a PERMANENT neighbour entry on the host, the pod's IP with the
//    pod's eth0 MAC on its cali veth (`ip neigh` shows `POD_IP dev caliXXXX lladdr POD_MAC PERMANENT`), so the
//    host never ARPs towards a workload; the pod reaches its gateway 169.254.1.1 through proxy_arp on the cali;
//  - kube-proxy iptables rules and felix's natOutgoing masquerade per node.
import type { Cluster } from "../k8s/types.js";
import { nodeBlocks, type CalicoIpamState } from "../k8s/cni/calico-ipam.js";
import { emptyPluginState } from "../k8s/cni/plugin.js";
import type { NetConf } from "../k8s/cni/types.js";
import { macToString } from "../net/index.js";
import { buildUnderlay, clusterView, finishNetfilter, genTitle, kubeProxyPayload, pluginContext, resolveOptions, routerDevFor, run, wirePods } from "./cluster-dataplane.js";
import { calicoRules } from "./masquerade.js";
import type { BuildOptions, BuiltGeneration } from "./types.js";

export const CALICO_BLOCK_SIZE = 26;

export function calicoConf(nodename: string, pool: string, hint: string): NetConf {
  return {
    cniVersion: "1.0.0",
    name: "k8s-pod-network",
    type: "calico",
    nodename,
    mtu: 1500,
    ipam: { type: "calico-ipam", pool, blockSize: CALICO_BLOCK_SIZE, hint },
  };
}

export function buildGen2(cluster: Cluster, opts: BuildOptions = {}): BuiltGeneration {
  const o = resolveOptions(cluster, opts);
  const u = buildUnderlay(cluster, o);
  const { world } = u;
  // calico-ipam's blocks live in the cluster datastore: one state shared by every node's plugin.
  const ipam: CalicoIpamState = { blocks: [] };
  const ctxs = new Map(u.nodes.map((n) => [n.name, pluginContext(world, n, { ...emptyPluginState(), calico: ipam })]));
  const { pods, failed, events } = wirePods(cluster, u.nodes, o.seed, ctxs, (_p, n) => {
    const node = cluster.nodes.find((x) => x.metadata.name === n.name)!;
    return calicoConf(n.name, cluster.clusterCIDR, node.podCIDR);
  }, 0);
  // Felix: a permanent neighbour entry per local workload (its route table's static ARP for the workload's MAC).
  for (const p of pods) {
    if (p.hostNetwork || p.hostIf === null) continue;
    const n = u.nodes.find((x) => x.name === p.node)!;
    run(n.ns, `ip neigh replace ${p.ip} lladdr ${macToString(p.ns.dev("eth0").mac)} dev ${p.hostIf} nud permanent`);
  }
  // BIRD: own blocks blackholed, every other node's blocks learned.
  for (const n of u.nodes) {
    n.podRanges = nodeBlocks(ipam, n.name);
    for (const b of n.podRanges) run(n.ns, `ip route add blackhole ${b} proto bird`);
  }
  for (const n of u.nodes) {
    for (const peer of u.nodes) {
      if (peer === n) continue;
      const nexthop = peer.subnet === n.subnet ? peer.ip : n.gateway;
      for (const b of peer.podRanges) {
        const route = `${b} via ${nexthop} dev eth0 proto bird`;
        run(n.ns, `ip route add ${route}`);
        n.learnedRoutes.push(route);
      }
    }
    for (const b of n.podRanges) run(u.router, `ip route add ${b} via ${n.ip} dev ${routerDevFor(u, n)} proto bird`);
  }
  const view = clusterView(cluster, pods, new Set(failed.map((f) => f.key)));
  for (const n of u.nodes) {
    n.netfilter.payloads.push({ owner: "kube-proxy", text: kubeProxyPayload(view, n, cluster.clusterCIDR) });
    n.netfilter.payloads.push({ owner: "calico-felix", text: calicoRules(cluster.clusterCIDR) });
  }
  const g: BuiltGeneration = {
    gen: 2,
    title: genTitle(2),
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
