// Gen 4: the eBPF dataplane (Cilium as GKE Dataplane V2 runs it):
//  - each pod gets a veth pair, the host side named lxc + 11 hex digits of its sandbox id (Cilium's lxcXXXX),
//    the pod side eth0 with its /32 and a default route via the gateway 169.254.1.1 that the host side answers
//    by proxy ARP (Cilium answers that ARP from bpf_lxc; proxy_arp is the kernel model's equivalent), and a
//    /32 route to the pod on the host side (Cilium's endpoint routes);
//  - native routing by default (GKE's VPC routes each node's alias pod range): every node routes the other nodes'
//    pod CIDRs via the node (same subnet) or the subnet router, and the router routes each pod CIDR to its node;
//  - or, with `{ tunnel: "vxlan" }` (Cilium's tunnel mode, `--tunnel=vxlan` / `routingMode: tunnel`), an overlay:
//    each node gets a cilium_vxlan device (UDP 8472, Cilium's default tunnel port for VXLAN; `tunnelPort` sets
//    it), routes the other nodes' pod CIDRs through it and knows each peer's VTEP (static neighbour + FDB entry,
//    what the agent learns from the CiliumNode objects), so cross-node pod traffic carries 50 bytes of outer
//    Ethernet/IPv4/UDP/VXLAN and the underlay (the router) never sees a pod address; same-node traffic is not
//    encapsulated. The ipcache's remote pod entries carry their node as tunnel endpoint, as cilium-agent writes
//    them. Pod interfaces get MTU 1450 (1500 - 50), as Cilium sets in tunnel mode. Model difference: tcbox's
//    kernel has no collect-metadata (external) VXLAN device, so cilium_vxlan is a classic one with one VNI
//    (GEN4_VXLAN_VNI) and encapsulation is the kernel's, after routing; Cilium's bpf_lxc encapsulates with
//    bpf_skb_set_tunnel_key and puts the source security identity in the VNI;
//  - NO kube-proxy and no iptables rules: the node namespaces carry no netfilter tables;
//  - one BpfKernel per node (each node is its own kernel, its own pinned maps): tc programs on each pod's
//    host-side veth (ingress: from-container, lb4 + policy + flowlog; egress: to-container, lb4 reverse NAT +
//    policy + flowlog) and on the uplink (egress: snat masquerade; ingress: reverse SNAT), see gen4-programs.ts;
//  - the agent fills the maps as cilium-agent does: lb4 services/backends/rev-NAT from Services and
//    EndpointSlices (src/k8s/agent/lb.ts), identities and the ipcache, the local endpoints (lxc map), the SNAT
//    configuration. NetworkPolicy -> cilium_policy_v2 entries is another part's job (PolicyMaps is exposed on
//    each node's Gen4Node for it); until then no endpoint enforces policy (ENDPOINT_F_POLICY_* clear).
import type { Cluster } from "../k8s/types.js";
import { formatIpv4, parseCidr } from "../packet/addr.js";
import { BpfKernel, type BpfObject } from "../ebpf/kernel.js";
import { EbpfTc } from "../net/ebpf-tc.js";
import { createVethPair, macToString } from "../net/index.js";
import { Lb4Maps } from "../k8s/agent/lb-maps.js";
import { ServiceManager } from "../k8s/agent/lb.js";
import { IdentityAllocator } from "../k8s/agent/identity.js";
import { PolicyMaps } from "../k8s/agent/policy-maps.js";
import { configureSnat } from "../k8s/agent/snat-maps.js";
import { buildUnderlay, clusterView, genTitle, hostNetworkPod, podKey, resolveOptions, routerDevFor, run, sandboxId, sandboxName } from "./cluster-dataplane.js";
import { CHAIN_OBS, CHAIN_ORDER, loadChain, type ChainName } from "./gen4-programs.js";
import type { BuildOptions, BuiltGeneration, NodePlane, PodPlane } from "./types.js";

export { prepareGen4Programs } from "./gen4-programs.js";

/** The pod's gateway (answered by proxy ARP on the lxc device). */
export const GEN4_GATEWAY = "169.254.1.1";
/** Tunnel mode: the overlay device, its VNI, Cilium's default VXLAN port and the overhead it costs. */
export const GEN4_VXLAN_DEV = "cilium_vxlan";
export const GEN4_VXLAN_VNI = 1;
export const GEN4_VXLAN_PORT = 8472;
const VXLAN_OVERHEAD = 50;

export type Gen4Tunnel = "disabled" | "vxlan";
export const GEN4_TUNNELS: readonly Gen4Tunnel[] = ["disabled", "vxlan"];

export interface Gen4BuildOptions extends BuildOptions {
  /** Cilium's `tunnel`: "disabled" = native routing (default, as GKE Dataplane V2), "vxlan" = overlay. */
  tunnel?: Gen4Tunnel;
  /** Tunnel mode: the VXLAN UDP port (Cilium's `tunnel-port`). Default 8472. */
  tunnelPort?: number;
}

/** Per node: its kernel, the loaded chains, the agent's map writers. */
export interface Gen4Node {
  name: string;
  kernel: BpfKernel;
  chains: Record<ChainName, BpfObject>;
  lb: ServiceManager;
  policy: PolicyMaps;
  /** Each tc runner per namespace (one: the node's). */
  tc: EbpfTc;
  /** Local endpoints: pod key -> endpoint id. */
  endpoints: Map<string, number>;
}

export interface BuiltGen4 extends BuiltGeneration {
  ebpf: Gen4Node[];
  identities: IdentityAllocator;
}

export const lxcName = (containerId: string) => `lxc${containerId.slice(0, 11)}`;

/** Build Gen 4. The program chains must be compiled first: `await prepareGen4Programs()`. */
export function buildGen4(cluster: Cluster, opts: Gen4BuildOptions = {}): BuiltGen4 {
  const tunnel = opts.tunnel ?? "disabled";
  if (!GEN4_TUNNELS.includes(tunnel)) throw new Error(`gen 4: unknown tunnel mode "${String(tunnel)}" (have ${GEN4_TUNNELS.join(", ")})`);
  const tunnelPort = opts.tunnelPort ?? GEN4_VXLAN_PORT;
  const overlay = tunnel === "vxlan";
  const mtu = overlay ? 1500 - VXLAN_OVERHEAD : 1500;
  const o = resolveOptions(cluster, opts);
  const u = buildUnderlay(cluster, o);
  const { world } = u;
  const pods: PodPlane[] = [];
  for (const p of cluster.pods) {
    const n = u.nodes.find((x) => x.name === p.nodeName);
    if (n === undefined || p.podIP === "") continue;
    if (p.hostNetwork) {
      pods.push(hostNetworkPod(n, p));
      continue;
    }
    const name = sandboxName(p);
    const ns = world.addNamespace(name);
    const containerId = sandboxId(o.seed, p);
    const lxc = lxcName(containerId);
    createVethPair(n.ns, lxc, ns, "eth0");
    run(ns, "ip link set lo up", `ip link set eth0 mtu ${mtu}`, "ip link set eth0 up", `ip addr add ${p.podIP}/32 dev eth0`, `ip route add ${GEN4_GATEWAY} dev eth0 scope link`, `ip route add default via ${GEN4_GATEWAY} dev eth0`);
    run(n.ns, `ip link set ${lxc} mtu ${mtu}`, `ip link set ${lxc} up`, `sysctl -w net.ipv4.conf.${lxc}.proxy_arp=1`, `ip route add ${p.podIP} dev ${lxc} scope link`);
    pods.push({ key: podKey(p), namespace: p.metadata.namespace, name: p.metadata.name, node: n.name, hostNetwork: false, ns, ip: p.podIP, containerId, netnsPath: `/var/run/netns/${name}`, hostIf: lxc, cniResult: null });
  }
  for (const n of u.nodes) {
    const cn = cluster.nodes.find((x) => x.metadata.name === n.name)!;
    n.podRanges = [cn.podCIDR];
  }
  if (overlay) tunnelRoutes(u.nodes, tunnelPort);
  else nativeRoutes(u);
  const view = clusterView(cluster, pods, new Set());
  const identities = new IdentityAllocator();
  const ebpf = u.nodes.map((n) => attachNode(n, view, pods, identities, o.seed, overlay));
  return {
    gen: 4,
    title: genTitle(4),
    world,
    cluster: view,
    nodes: u.nodes,
    pods,
    failed: [],
    events: [],
    router: u.router,
    external: u.external,
    encapsulation: overlay ? "vxlan" : "none",
    options: o,
    ebpf,
    identities,
  };
}

/** Native routing: each node's pod CIDR, as the VPC routes alias ranges (the router knows them too). */
function nativeRoutes(u: ReturnType<typeof buildUnderlay>): void {
  for (const n of u.nodes) {
    for (const peer of u.nodes) {
      if (peer === n) continue;
      const via = peer.subnet === n.subnet ? peer.ip : n.gateway;
      for (const r of peer.podRanges) {
        const route = `${r} via ${via} dev eth0`;
        run(n.ns, `ip route add ${route}`);
        n.learnedRoutes.push(route);
      }
    }
    for (const r of n.podRanges) run(u.router, `ip route add ${r} via ${n.ip} dev ${routerDevFor(u, n)}`);
  }
}

/**
 * Tunnel mode: cilium_vxlan on every node holding its pod CIDR's network address, and per peer node a route to its
 * pod CIDR through the tunnel, the peer device's MAC for that address and the peer's VTEP (its node IP) in the FDB.
 */
function tunnelRoutes(nodes: NodePlane[], port: number): void {
  const net = (cidr: string) => formatIpv4(parseCidr(cidr).addr);
  for (const n of nodes) {
    run(
      n.ns,
      `ip link add ${GEN4_VXLAN_DEV} type vxlan id ${GEN4_VXLAN_VNI} local ${n.ip} dev eth0 dstport ${port} nolearning`,
      `ip link set ${GEN4_VXLAN_DEV} mtu ${1500 - VXLAN_OVERHEAD}`,
      `ip link set ${GEN4_VXLAN_DEV} up`,
      `ip addr add ${net(n.podRanges[0]!)}/32 dev ${GEN4_VXLAN_DEV}`,
    );
  }
  for (const n of nodes) {
    for (const peer of nodes) {
      if (peer === n) continue;
      const mac = macToString(peer.ns.dev(GEN4_VXLAN_DEV).mac);
      for (const r of peer.podRanges) {
        const gw = net(r);
        const route = `${r} via ${gw} dev ${GEN4_VXLAN_DEV} onlink`;
        run(n.ns, `ip route add ${route}`, `ip neigh add ${gw} lladdr ${mac} dev ${GEN4_VXLAN_DEV} nud permanent`);
        n.learnedRoutes.push(route);
      }
      run(n.ns, `bridge fdb append ${mac} dev ${GEN4_VXLAN_DEV} dst ${peer.ip}`);
    }
  }
}

function attachNode(n: NodePlane, view: Cluster, pods: PodPlane[], ids: IdentityAllocator, seed: number, overlay: boolean): Gen4Node {
  const kernel = new BpfKernel({ seed: seed * 31 + n.ns.id });
  kernel.ktimeNs = 1000n * 1_000_000_000n;
  const chains = {} as Record<ChainName, BpfObject>;
  for (const c of CHAIN_ORDER) {
    chains[c] = loadChain(kernel, c);
    const cfg = new Uint8Array(4);
    new DataView(cfg.buffer).setUint32(0, CHAIN_OBS[c], true);
    chains[c].map("tcbox_flowlog_config").update(new Uint8Array(4), cfg);
  }
  const lb = new ServiceManager(new Lb4Maps(kernel));
  lb.sync(view);
  const policy = new PolicyMaps(kernel);
  // ipcache: every pod's identity cluster-wide, the world for everything else.
  policy.upsertIpcache("0.0.0.0/0", ids.reserved("world"));
  const endpoints = new Map<string, number>();
  let nextId = 1;
  for (const p of pods) {
    if (p.hostNetwork) continue;
    const pod = view.pods.find((x) => podKey(x) === p.key)!;
    const identity = ids.allocate(pod.metadata.labels ?? {}, pod.metadata.namespace);
    // Tunnel mode: a remote pod's entry names its node as the tunnel endpoint (Cilium's ipcache).
    const host = overlay && p.node !== n.name ? view.nodes.find((x) => x.metadata.name === p.node)?.internalIP : undefined;
    policy.upsertIpcache(`${p.ip}/32`, identity, host);
    if (p.node === n.name) {
      const id = nextId++;
      endpoints.set(p.key, id);
      policy.upsertEndpoint({ ip: p.ip, id, identity, ifindex: n.ns.dev(p.hostIf!).ifindex });
    }
  }
  for (const other of view.nodes) policy.upsertIpcache(`${other.internalIP}/32`, ids.reserved(other.metadata.name === n.name ? "host" : "remote-node"));
  configureSnat(kernel, { clusterCidr: view.clusterCIDR, nodeIp: n.ip });
  const tc = new EbpfTc(n.ns, kernel.mem);
  for (const p of pods) {
    if (p.node !== n.name || p.hostIf === null) continue;
    const dev = n.ns.dev(p.hostIf);
    tc.attach(dev, "ingress", chains.lxc.program("cls_main"));
    tc.attach(dev, "egress", chains.lxc.program("cls_main"));
    n.tc[p.hostIf] = ["ingress:lb4,policy,flowlog", "egress:lb4,policy,flowlog"];
  }
  const up = n.ns.dev(n.uplink);
  tc.attach(up, "ingress", chains.netdev.program("cls_main"));
  tc.attach(up, "egress", chains.netdev.program("cls_main"));
  n.tc[n.uplink] = ["ingress:snat,flowlog", "egress:snat,flowlog"];
  return { name: n.name, kernel, chains, lb, policy, tc, endpoints };
}
