// Gen 1: bridge + overlay (Flannel VXLAN backend) + kube-proxy iptables.
//  - flanneld on each node: the node's podCIDR (a /24 of 10.244.0.0/16) is its flannel subnet; flannel.1 is a
//    VXLAN device (VNI 1, local = node IP, dev eth0, nolearning; MTU 1450 = 1500 - 50) holding the subnet's .0/32;
//    for every other node it programs a route `SUBNET via SUBNET.0 dev flannel.1 onlink`, a permanent ARP entry
//    SUBNET.0 -> that node's flannel.1 MAC, and an FDB entry MAC -> node IP (the VTEP) - exactly the three
//    things flanneld's vxlan backend writes on a lease event (no multicast, no learning).
//    UDP port: 4789 (issue 5; the IANA port). Flannel's own Linux default is 8472; BuildOptions.vxlanPort sets it.
//  - the bridge CNI plugin, delegated to with the config flanneld writes (cbr0, bridge cni0, mtu 1450,
//    hairpinMode, isDefaultGateway, ipMasq off, host-local over the node's subnet, a route to the cluster CIDR).
//  - kube-proxy iptables rules and flanneld's masquerade/forward rules per node.
import { formatIpv4, parseCidr } from "../packet/addr.js";
import { macToString } from "../net/index.js";
import type { Cluster } from "../k8s/types.js";
import { emptyPluginState } from "../k8s/cni/plugin.js";
import type { NetConf } from "../k8s/cni/types.js";
import { buildUnderlay, clusterView, finishNetfilter, genTitle, kubeProxyPayload, pluginContext, resolveOptions, run, wirePods } from "./cluster-dataplane.js";
import { flannelRules } from "./masquerade.js";
import type { BuildOptions, BuiltGeneration } from "./types.js";

export const FLANNEL_VNI = 1;
export const FLANNEL_DEV = "flannel.1";

/** The CNI config flanneld's CNI plugin hands to `bridge` for a node (flannel's delegate defaults). */
export function flannelBridgeConf(clusterCIDR: string, podCIDR: string, mtu: number): NetConf {
  return {
    cniVersion: "1.0.0",
    name: "cbr0",
    type: "bridge",
    bridge: "cni0",
    mtu,
    hairpinMode: true,
    isGateway: true,
    isDefaultGateway: true,
    ipMasq: false,
    ipam: { type: "host-local", ranges: [[{ subnet: podCIDR }]], routes: [{ dst: clusterCIDR }] },
  };
}

export function buildGen1(cluster: Cluster, opts: BuildOptions = {}): BuiltGeneration {
  const o = resolveOptions(cluster, opts);
  const u = buildUnderlay(cluster, o);
  const { world } = u;
  // flanneld: subnet lease and VTEP per node.
  for (const n of u.nodes) {
    const node = cluster.nodes.find((x) => x.metadata.name === n.name)!;
    const subnet = parseCidr(node.podCIDR);
    n.podRanges = [node.podCIDR];
    run(
      n.ns,
      `ip link add ${FLANNEL_DEV} type vxlan id ${FLANNEL_VNI} local ${n.ip} dev eth0 dstport ${o.vxlanPort} nolearning`,
      `ip link set ${FLANNEL_DEV} up`,
      `ip addr add ${formatIpv4(subnet.addr)}/32 dev ${FLANNEL_DEV}`,
    );
  }
  // flanneld's lease events: every node learns every other node's subnet, VTEP MAC and address.
  for (const n of u.nodes) {
    for (const peer of u.nodes) {
      if (peer === n) continue;
      const peerNode = cluster.nodes.find((x) => x.metadata.name === peer.name)!;
      const s = parseCidr(peerNode.podCIDR);
      const gw = formatIpv4(s.addr);
      const mac = macToString(peer.ns.dev(FLANNEL_DEV).mac);
      const route = `${peerNode.podCIDR} via ${gw} dev ${FLANNEL_DEV} onlink`;
      run(n.ns, `ip route add ${route}`, `ip neigh add ${gw} lladdr ${mac} dev ${FLANNEL_DEV} nud permanent`, `bridge fdb append ${mac} dev ${FLANNEL_DEV} dst ${peer.ip}`);
      n.learnedRoutes.push(route);
    }
  }
  const mtu = 1500 - 50;
  const ctxs = new Map(u.nodes.map((n) => [n.name, pluginContext(world, n, emptyPluginState())]));
  const { pods, failed, events } = wirePods(cluster, u.nodes, o.seed, ctxs, (p, n) => {
    const node = cluster.nodes.find((x) => x.metadata.name === n.name)!;
    const conf = flannelBridgeConf(cluster.clusterCIDR, node.podCIDR, mtu);
    // The cluster's allocation is kept: the runtime passes it through the `ips` capability.
    if (p.podIP !== "") conf.runtimeConfig = { ips: [`${p.podIP}/${parseCidr(node.podCIDR).len}`] };
    return conf;
  }, 1);
  const view = clusterView(cluster, pods, new Set(failed.map((f) => f.key)));
  for (const n of u.nodes) {
    n.netfilter.payloads.push({ owner: "kube-proxy", text: kubeProxyPayload(view, n, cluster.clusterCIDR) });
    n.netfilter.payloads.push({ owner: "flanneld", text: flannelRules(cluster.clusterCIDR, n.podRanges[0]!) });
  }
  const g: BuiltGeneration = {
    gen: 1,
    title: genTitle(1),
    world,
    cluster: view,
    nodes: u.nodes,
    pods,
    failed,
    events,
    router: u.router,
    external: u.external,
    encapsulation: "vxlan",
    options: o,
  };
  finishNetfilter(g, opts);
  return g;
}
