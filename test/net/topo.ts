// Small topologies built with the same iproute2 commands a CNI plugin runs, shared by the kernel-model tests.
import { parseIpv4 } from "../../src/packet/addr.js";
import { World, exec, type NetNamespace } from "../../src/net/index.js";

export const ip = parseIpv4;

export function run(ns: NetNamespace, ...cmds: string[]): void {
  for (const c of cmds) exec(ns, c);
}

/** A node namespace with a cni0 bridge (gateway `gw/len`), forwarding on, br_netfilter on. */
export function bridgeNode(w: World, name: string, gwCidr: string): NetNamespace {
  const ns = w.addNamespace(name);
  run(ns, "ip link set lo up", "ip link add cni0 type bridge", "ip link set cni0 up", `ip addr add ${gwCidr} brd + dev cni0`, "sysctl -w net.ipv4.ip_forward=1");
  return ns;
}

/** A pod namespace plugged into the node's bridge through a veth pair, as the bridge CNI plugin does. */
export function bridgePod(w: World, node: NetNamespace, name: string, cidr: string, gw: string, hostVeth: string): NetNamespace {
  const pod = w.addNamespace(name);
  run(node, `ip link add ${hostVeth} type veth peer name eth0 netns ${name}`, `ip link set ${hostVeth} master cni0`, `ip link set ${hostVeth} up`);
  run(pod, "ip link set lo up", "ip link set eth0 up", `ip addr add ${cidr} dev eth0`, `ip route add default via ${gw} dev eth0`);
  return pod;
}

/** client 10.0.1.2 -- (r1 10.0.1.1 | router | r2 10.0.2.1) -- server 10.0.2.2, forwarding on in the router. */
export function routedPair(w: World, forward = true) {
  const client = w.addNamespace("client");
  const router = w.addNamespace("router");
  const server = w.addNamespace("server");
  run(router, "ip link set lo up", "ip link add r1 type veth peer name eth0 netns client", "ip link add r2 type veth peer name eth0 netns server");
  run(router, "ip link set r1 up", "ip link set r2 up", "ip addr add 10.0.1.1/24 dev r1", "ip addr add 10.0.2.1/24 dev r2", `sysctl -w net.ipv4.ip_forward=${forward ? 1 : 0}`);
  run(client, "ip link set lo up", "ip link set eth0 up", "ip addr add 10.0.1.2/24 dev eth0", "ip route add default via 10.0.1.1");
  run(server, "ip link set lo up", "ip link set eth0 up", "ip addr add 10.0.2.2/24 dev eth0", "ip route add default via 10.0.2.1");
  return { client, router, server };
}

import { createEther, macToString, Segment } from "../../src/net/index.js";

/**
 * Two Flannel-style nodes (cni0 bridge + flannel.1 VXLAN, a /24 each) on one L2 segment, one pod each, and an
 * "internet" router at 192.168.1.1 holding 8.8.8.8.
 */
export function flannelCluster(w: World, dstport = 4789) {
  const seg = new Segment("underlay");
  const nodes = [1, 2].map((i) => {
    const node = bridgeNode(w, `node${i}`, `10.244.${i - 1}.1/24`);
    createEther(node, "eth0", seg);
    run(node, "ip link set eth0 up", `ip addr add 192.168.1.1${i}/24 brd + dev eth0`, "ip route add default via 192.168.1.1", "sysctl -w net.bridge.bridge-nf-call-iptables=1");
    run(node, `ip link add flannel.1 type vxlan id 1 local 192.168.1.1${i} dev eth0 dstport ${dstport} nolearning`, "ip link set flannel.1 up", `ip addr add 10.244.${i - 1}.0/32 dev flannel.1`);
    const pod = bridgePod(w, node, `pod${i}`, `10.244.${i - 1}.2/24`, `10.244.${i - 1}.1`, `veth${i}`);
    return { node, pod };
  });
  // What flanneld programs for each remote node: route, permanent neighbour, FDB entry.
  for (const [i, j] of [
    [0, 1],
    [1, 0],
  ] as const) {
    const me = nodes[i]!.node;
    const peer = nodes[j]!.node;
    const peerMac = macToString(peer.dev("flannel.1").mac);
    run(
      me,
      `ip route add 10.244.${j}.0/24 via 10.244.${j}.0 dev flannel.1 onlink`,
      `ip neigh add 10.244.${j}.0 lladdr ${peerMac} dev flannel.1 nud permanent`,
      `bridge fdb append ${peerMac} dev flannel.1 dst 192.168.1.1${j + 1}`,
    );
  }
  const internet = w.addNamespace("internet");
  createEther(internet, "eth0", seg);
  run(internet, "ip link set lo up", "ip link set eth0 up", "ip addr add 192.168.1.1/24 dev eth0", "ip addr add 8.8.8.8/32 dev lo");
  return { seg, nodes, internet };
}
