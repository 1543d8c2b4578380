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
