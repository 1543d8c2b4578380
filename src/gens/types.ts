// A built generation, described the same way for every generation (Gen 1-3 here, Gen 4 by the eBPF builder):
// the kernel model world, the node and pod namespaces with their addresses, the underlay and the outside world,
// which netfilter rulesets and tc programs each node carries, and the events of pods that could not start.
// The compare engine, the CLI and the walks read only these types.
import type { NetNamespace, World } from "../net/index.js";
import type { Cluster } from "../k8s/types.js";
import type { CniResult } from "../k8s/cni/types.js";

export type GenNumber = 1 | 2 | 3 | 4;

export interface BuildOptions {
  /** Seeds the world's MACs and the sandbox ids; the same seed builds the same dataplane. Default: cluster.seed. */
  seed?: number;
  /** Prefix length of each node's underlay subnet (the node IP's /N is one L2 segment). Default 24. */
  underlayPrefix?: number;
  /** The VPC CIDR (AWS SNAT exclusion, the internet's route back). Default: the /16 of the first node's IP. */
  vpcCIDR?: string;
  /** Gen 1: VXLAN UDP port. Default 4789 (issue 5; Flannel's own default on Linux is 8472). */
  vxlanPort?: number;
  /** Gen 3: kube-proxy mode. Only "iptables" is built; "ipvs" is refused until the IPVS proxier exists. */
  proxyMode?: "iptables" | "ipvs";
  /**
   * The seam to the netfilter layer: called once per node with the iptables-restore payloads the node carries, to
   * install tables and conntrack in `node.ns.netfilter`. Default (undefined): installIptables, the payloads merged
   * and compiled into src/net/iptables.ts's IptablesHooks. Null leaves every hook accepting (a dataplane without
   * iptables); `node.netfilter.installed` says which.
   */
  installNetfilter?: ((node: NodePlane, gen: BuiltGeneration) => void) | null;
}

/** A Kubernetes-style event: why a pod did not start (FailedCreatePodSandBox, OutOfpods). */
export interface ClusterEvent {
  type: "Normal" | "Warning";
  reason: string;
  /** `Pod/NAMESPACE/NAME` */
  object: string;
  message: string;
}

export interface NodeNetfilter {
  /** iptables-restore payloads installed on the node, in order (kube-proxy first, then the CNI's own rules). */
  payloads: { owner: string; text: string }[];
  /** True when installNetfilter put real tables in the namespace. */
  installed: boolean;
}

export interface NodePlane {
  name: string;
  ns: NetNamespace;
  /** The node's primary address (eth0). */
  ip: string;
  /** Its underlay subnet (CIDR) and that subnet's router address. */
  subnet: string;
  gateway: string;
  zone: string | null;
  instanceType: string | null;
  /** Uplink device name in the node namespace. */
  uplink: string;
  /** Address ranges this generation gives the node's pods (Gen 1 podCIDR, Gen 2 calico blocks, Gen 3 ENI IPs). */
  podRanges: string[];
  /** Routes the node learned from the cluster's control plane (flanneld, BIRD), as `ip route` prints them. */
  learnedRoutes: string[];
  netfilter: NodeNetfilter;
  /** tc programs attached per device: `{ "eth0": ["ingress:lb4"] }` (Gen 4). */
  tc: Record<string, string[]>;
}

export interface PodPlane {
  /** `NAMESPACE/NAME` */
  key: string;
  namespace: string;
  name: string;
  node: string;
  hostNetwork: boolean;
  /** The pod's network namespace (the node's for hostNetwork pods). */
  ns: NetNamespace;
  ip: string;
  /** Sandbox (pause container) id, and the netns path kubelet passes as CNI_NETNS. */
  containerId: string;
  netnsPath: string;
  /** Host-side interface (veth) name, null for hostNetwork pods. */
  hostIf: string | null;
  cniResult: CniResult | null;
}

/** The outside world: a namespace behind the underlay router holding addresses of external hosts. */
export interface ExternalPlane {
  ns: NetNamespace;
  /** Addresses of hosts on the internet (each answers as its own host). */
  hosts: string[];
}

export interface BuiltGeneration {
  gen: GenNumber;
  /** "bridge+vxlan+iptables", ... */
  title: string;
  world: World;
  /** The cluster as this generation numbered it: pod IPs and EndpointSlice addresses are the generation's. */
  cluster: Cluster;
  nodes: NodePlane[];
  /** Pods that started (sandbox wired), in cluster order. */
  pods: PodPlane[];
  /** Pods that did not start, with their events. */
  failed: { key: string; node: string; events: ClusterEvent[] }[];
  events: ClusterEvent[];
  /** The underlay router (the VPC router / the ToR) joining the node subnets and the internet. */
  router: NetNamespace;
  external: ExternalPlane;
  /** Encapsulation between nodes: "vxlan" (+50 bytes) or "none". */
  encapsulation: "vxlan" | "none";
  options: Required<Omit<BuildOptions, "installNetfilter" | "vpcCIDR">> & { vpcCIDR: string };
}

export function nodeOf(g: BuiltGeneration, name: string): NodePlane {
  const n = g.nodes.find((x) => x.name === name);
  if (n === undefined) throw new Error(`gen ${g.gen}: no node ${name}`);
  return n;
}

export function podOf(g: BuiltGeneration, key: string): PodPlane {
  const p = g.pods.find((x) => x.key === key);
  if (p === undefined) throw new Error(`gen ${g.gen}: no running pod ${key}`);
  return p;
}

/** The `addresses` block of the compare JSON for one generation: `{"pods": {"NS/POD": ip}, "nodes": {NAME: ip}}`. */
export function addressesOf(g: BuiltGeneration): { pods: Record<string, string>; nodes: Record<string, string> } {
  const pods: Record<string, string> = {};
  for (const p of g.pods) pods[p.key] = p.ip;
  const nodes: Record<string, string> = {};
  for (const n of g.nodes) nodes[n.name] = n.ip;
  return { pods, nodes };
}
