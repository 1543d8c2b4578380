// What every generation builds the same way: the underlay (one L2 segment per node subnet, a router joining the
// subnets as a VPC router or ToR does, an uplink to an "internet" namespace holding external hosts), a namespace
// per node with eth0 on its subnet, a sandbox namespace per pod (the pause container's netns) that the
// generation's CNI wires, hostNetwork pods in the node namespace, the CNI invoked exactly as kubelet's runtime
// invokes it, the per-generation view of the cluster (pod IPs and EndpointSlice addresses as the generation
// numbered them) and kube-proxy's rules for each node.
import { createHash } from "node:crypto";
import { formatCidr, formatIpv4, parseCidr, parseIpv4 } from "../packet/addr.js";
import { Segment, World, createEther, createVethPair, exec, type NetNamespace } from "../net/index.js";
import type { Cluster, Pod } from "../k8s/types.js";
import { generateIptables } from "../k8s/kube-proxy/iptables.js";
import { iptablesSave } from "../k8s/kube-proxy/iptables-save.js";
import { invoke } from "../k8s/cni/exec.js";
import { IptablesHooks } from "../net/iptables.js";
import { mergeSave } from "./masquerade.js";
import type { PluginContext, PluginState } from "../k8s/cni/plugin.js";
import { commandLog, emptyPluginState } from "../k8s/cni/plugin.js";
import type { CniResult, NetConf } from "../k8s/cni/types.js";
import type { BuildOptions, BuiltGeneration, ClusterEvent, ExternalPlane, GenNumber, NodePlane, PodPlane } from "./types.js";

/** The internet side of the uplink: the router's and the internet namespace's addresses (TEST-NET-1 /30). */
export const UPLINK_ROUTER = "192.0.2.1";
export const UPLINK_INTERNET = "192.0.2.2";
/** External hosts: public resolvers and a client in the demo LoadBalancer's allowed source range. */
export const EXTERNAL_HOSTS = ["8.8.8.8", "1.1.1.1", "198.51.100.7"];

export function run(ns: NetNamespace, ...cmds: string[]): void {
  for (const c of cmds) {
    commandLog.on?.(ns.name, c);
    exec(ns, c);
  }
}

export function resolveOptions(cluster: Cluster, opts: BuildOptions): BuiltGeneration["options"] {
  const first = cluster.nodes[0]?.internalIP ?? "10.0.0.1";
  const vpc = opts.vpcCIDR ?? formatCidr({ addr: (parseIpv4(first) & 0xffff0000) >>> 0, len: 16 });
  return {
    seed: opts.seed ?? cluster.seed,
    underlayPrefix: opts.underlayPrefix ?? 24,
    vpcCIDR: formatCidr(parseCidr(vpc)),
    vxlanPort: opts.vxlanPort ?? 4789,
    proxyMode: opts.proxyMode ?? "iptables",
  };
}

export interface Underlay {
  world: World;
  router: NetNamespace;
  external: ExternalPlane;
  nodes: NodePlane[];
}

/** Build the nodes, their subnets, the router and the internet. Node namespaces are named after the nodes. */
export function buildUnderlay(cluster: Cluster, o: BuiltGeneration["options"]): Underlay {
  const world = new World(o.seed);
  const router = world.addNamespace("vpc-router");
  run(router, "ip link set lo up", "sysctl -w net.ipv4.ip_forward=1");
  const subnets = new Map<string, { seg: Segment; gw: string; dev: string }>();
  const nodeIPs = new Set(cluster.nodes.map((n) => n.internalIP));
  for (const n of cluster.nodes) {
    const c = parseCidr(`${n.internalIP}/${o.underlayPrefix}`);
    const key = formatCidr(c);
    if (subnets.has(key)) continue;
    // The subnet's router takes .1 (as the VPC router does), or the first address no node holds.
    let gw = c.addr + 1;
    while (nodeIPs.has(formatIpv4(gw))) gw++;
    const dev = `eth${subnets.size}`;
    const seg = new Segment(`subnet ${key}`);
    createEther(router, dev, seg);
    run(router, `ip link set ${dev} up`, `ip addr add ${formatIpv4(gw)}/${c.len} brd + dev ${dev}`);
    subnets.set(key, { seg, gw: formatIpv4(gw), dev });
  }
  const internet = world.addNamespace("internet");
  createVethPair(router, "uplink", internet, "eth0");
  run(router, "ip link set uplink up", `ip addr add ${UPLINK_ROUTER}/30 dev uplink`, `ip route add default via ${UPLINK_INTERNET} dev uplink`);
  run(internet, "ip link set lo up", "ip link set eth0 up", `ip addr add ${UPLINK_INTERNET}/30 dev eth0`, `ip route add ${o.vpcCIDR} via ${UPLINK_ROUTER} dev eth0`);
  for (const h of EXTERNAL_HOSTS) run(internet, `ip addr add ${h}/32 dev lo`);
  const nodes: NodePlane[] = cluster.nodes.map((n) => {
    const c = parseCidr(`${n.internalIP}/${o.underlayPrefix}`);
    const sub = subnets.get(formatCidr(c))!;
    const ns = world.addNamespace(n.metadata.name);
    createEther(ns, "eth0", sub.seg);
    run(
      ns,
      "ip link set lo up",
      "ip link set eth0 up",
      `ip addr add ${n.internalIP}/${c.len} brd + dev eth0`,
      `ip route add default via ${sub.gw} dev eth0`,
      // kubeadm's preflight requirements and kube-proxy's own settings on every node.
      "sysctl -w net.ipv4.ip_forward=1",
      "sysctl -w net.bridge.bridge-nf-call-iptables=1",
      "sysctl -w net.ipv4.conf.all.route_localnet=1",
    );
    return {
      name: n.metadata.name,
      ns,
      ip: n.internalIP,
      subnet: formatCidr(c),
      gateway: sub.gw,
      zone: n.zone,
      instanceType: n.instanceType,
      uplink: "eth0",
      podRanges: [],
      learnedRoutes: [],
      netfilter: { payloads: [], installed: false },
      tc: {},
    };
  });
  return { world, router, external: { ns: internet, hosts: [...EXTERNAL_HOSTS] }, nodes };
}

/** The router's device on a node's subnet. */
export function routerDevFor(u: { router: NetNamespace }, node: NodePlane): string {
  const a = u.router.addrs.find((x) => formatCidr(parseCidr(`${formatIpv4(x.addr)}/${x.len}`)) === node.subnet);
  return a!.dev.name;
}

export const podKey = (p: Pod) => `${p.metadata.namespace}/${p.metadata.name}`;

/** The pause container's id (64 hex digits as containerd's sandbox ids), seeded so builds repeat. */
export function sandboxId(seed: number, p: Pod): string {
  return createHash("sha256").update(`${seed}/${podKey(p)}`).digest("hex");
}

/** netns name: NAMESPACE_NAME ('_' never appears in Kubernetes names, so it is unambiguous). */
export const sandboxName = (p: Pod) => `${p.metadata.namespace}_${p.metadata.name}`;

/** One CNI ADD for a pod, as kubelet's runtime makes it: the sandbox netns exists, env + config on stdin. */
export function cniAdd(ctx: PluginContext, seed: number, pod: Pod, conf: NetConf): { plane: Omit<PodPlane, "ip" | "hostIf" | "cniResult">; result: CniResult | null; error: string | null } {
  const name = sandboxName(pod);
  const ns = ctx.world.addNamespace(name);
  run(ns, "ip link set lo up");
  const containerId = sandboxId(seed, pod);
  const netnsPath = `/var/run/netns/${name}`;
  const env = {
    CNI_COMMAND: "ADD",
    CNI_CONTAINERID: containerId,
    CNI_NETNS: netnsPath,
    CNI_IFNAME: "eth0",
    CNI_PATH: "/opt/cni/bin",
    CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=${pod.metadata.namespace};K8S_POD_NAME=${pod.metadata.name};K8S_POD_INFRA_CONTAINER_ID=${containerId}`,
  };
  const out = invoke(ctx, env, JSON.stringify(conf));
  const plane = { key: podKey(pod), namespace: pod.metadata.namespace, name: pod.metadata.name, node: pod.nodeName, hostNetwork: false, ns, containerId, netnsPath };
  if (out.exitCode !== 0) {
    const e = out.error!;
    const msg = `Failed to create pod sandbox: rpc error: code = Unknown desc = failed to setup network for sandbox "${containerId}": plugin type="${conf.type}" name="${conf.name}" failed (add): ${e.message}`;
    return { plane, result: null, error: e.details !== "" ? `${msg} (${e.details})` : msg };
  }
  return { plane, result: out.result!, error: null };
}

/** hostNetwork pods live in the node namespace with the node's address. */
export function hostNetworkPod(node: NodePlane, pod: Pod): PodPlane {
  return { key: podKey(pod), namespace: pod.metadata.namespace, name: pod.metadata.name, node: node.name, hostNetwork: true, ns: node.ns, ip: node.ip, containerId: "", netnsPath: "", hostIf: null, cniResult: null };
}

export function pluginContext(world: World, node: NodePlane, state: PluginState = emptyPluginState()): PluginContext {
  return { world, host: node.ns, state };
}

export function warning(reason: string, key: string, message: string): ClusterEvent {
  return { type: "Warning", reason, object: `Pod/${key}`, message };
}

export interface WiredPods {
  pods: PodPlane[];
  failed: BuiltGeneration["failed"];
  events: ClusterEvent[];
}

/**
 * Kubelet's side of pod startup, the same in every CNI generation: an unscheduled pod fails (FailedScheduling), a
 * hostNetwork pod joins its node's namespace, any other gets a sandbox and one CNI ADD with the generation's config
 * (FailedCreatePodSandBox when the plugin fails). `hostIf` picks the host-side veth among the result's interfaces.
 */
export function wirePods(
  cluster: Cluster,
  nodes: NodePlane[],
  seed: number,
  ctxs: Map<string, PluginContext>,
  confFor: (pod: Pod, node: NodePlane) => NetConf,
  hostIf: number,
): WiredPods {
  const out: WiredPods = { pods: [], failed: [], events: [] };
  const fail = (key: string, node: string, reason: string, message: string) => {
    const ev = warning(reason, key, message);
    out.failed.push({ key, node, events: [ev] });
    out.events.push(ev);
  };
  for (const p of cluster.pods) {
    const key = podKey(p);
    const n = nodes.find((x) => x.name === p.nodeName);
    if (n === undefined) {
      fail(key, p.nodeName, "FailedScheduling", "pod has no node (the model does not schedule)");
      continue;
    }
    if (p.hostNetwork) {
      out.pods.push(hostNetworkPod(n, p));
      continue;
    }
    const r = cniAdd(ctxs.get(n.name)!, seed, p, confFor(p, n));
    if (r.error !== null) {
      fail(key, n.name, "FailedCreatePodSandBox", r.error);
      continue;
    }
    out.pods.push({ ...r.plane, ip: r.result!.ips[0]!.address.split("/")[0]!, hostIf: r.result!.interfaces![hostIf]!.name, cniResult: r.result });
  }
  return out;
}

/**
 * The cluster as a generation numbered it: each running pod's IP, failed pods not ready and without an IP, and
 * EndpointSlice addresses following their pods (targetRef "Pod NS/NAME").
 */
export function clusterView(cluster: Cluster, pods: PodPlane[], failed: Set<string>): Cluster {
  const c = structuredClone(cluster);
  const ipOf = new Map(pods.map((p) => [p.key, p.ip]));
  for (const p of c.pods) {
    const k = podKey(p);
    if (failed.has(k)) {
      p.podIP = "";
      p.phase = "Pending";
      p.ready = false;
    } else if (ipOf.has(k)) p.podIP = ipOf.get(k)!;
  }
  for (const s of c.endpointSlices) {
    s.endpoints = s.endpoints.filter((e) => !(e.targetRef !== null && failed.has(e.targetRef.replace(/^Pod /, ""))));
    for (const e of s.endpoints) {
      const k = e.targetRef?.replace(/^Pod /, "");
      if (k !== undefined && ipOf.has(k)) e.addresses = [ipOf.get(k)!];
    }
  }
  return c;
}

/** kube-proxy (iptables mode) on each node, from the generation's view of the cluster, as iptables-save prints it. */
export function kubeProxyPayload(view: Cluster, node: NodePlane, clusterCIDR: string): string {
  return iptablesSave(generateIptables(view, { nodeName: node.name, nodeIPs: [node.ip], clusterCIDR }));
}

/**
 * The default installer: the node's payloads merged as `iptables-restore --noflush` would leave them, compiled
 * into the namespace's netfilter hooks with its own conntrack (src/net/iptables.ts).
 */
export function installIptables(node: NodePlane): void {
  const [first, ...rest] = node.netfilter.payloads;
  if (first === undefined) return;
  const text = rest.reduce((acc, p) => mergeSave(acc, p.text), first.text);
  node.ns.netfilter = new IptablesHooks(node.ns, text);
}

/** Install netfilter through the seam (default: installIptables; null: none, every hook accepts). */
export function finishNetfilter(g: BuiltGeneration, opts: BuildOptions): void {
  const install = opts.installNetfilter === undefined ? installIptables : opts.installNetfilter;
  if (install === null) return;
  for (const n of g.nodes) {
    install(n, g);
    n.netfilter.installed = true;
  }
}

export function genTitle(gen: GenNumber): string {
  return ["", "bridge + VXLAN (Flannel) + kube-proxy iptables", "veth /32 routes + BGP (Calico) + kube-proxy iptables", "VPC-native (AWS VPC CNI) + kube-proxy iptables", "eBPF (tc programs, no kube-proxy)"][gen]!;
}
