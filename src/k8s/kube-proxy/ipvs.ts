// kube-proxy IPVS mode (pkg/proxy/ipvs/proxier.go syncProxyRules): per Service port a virtual server on the
// ClusterIP, each externalIP, each load-balancer ingress IP and, for NodePorts, each node IP; real servers are the
// categorized endpoints (Local policies: the node's own), weight 1; sessionAffinity ClientIP makes the virtual
// server persistent with the affinity timeout. The Service IPs are bound to the dummy interface kube-ipvs0.
// The ipsets kube-proxy keeps (ipset.go ipsetInfo) are filled, and the iptables rules are in ipvs-rules.ts.
//
//   const state = generateIpvs(cluster, { nodeName, nodeIPs, clusterCIDR });
//   state.ipvs (netfilter/ipvs.ts) · state.ipsets · state.kubeIpvs0 (addresses) · ipvsIptablesRestore(state)
//
// loadBalancerSourceRanges: each LB ingress ip,proto:port of such a Service goes into KUBE-LOAD-BALANCER-FW and,
// per range, ip,proto:port,cidr into KUBE-LOAD-BALANCER-SOURCE-CIDR (hash:ip,port,net); when a range holds the
// node's (first) IP, ip,proto:port,ip into KUBE-LOAD-BALANCER-SOURCE-IP (the node reaches its own LB address with
// that address as source). A 0.0.0.0/0 range passes kube-proxy's validation but the kernel refuses a /0 in a
// hash:ip,port,net set, so it adds no member (it still counts for the node). Ranges that leave the node out make
// kube-proxy add a `-m ipvs` DROP to KUBE-IPVS-OUT-FILTER (kubernetes#119656): listed in state.lbNoNodeAccess,
// not written (tcbox's iptables has no ipvs match).
// Real servers removed by a later sync drain first (graceful termination, syncIpvs below).
// Not modelled: SCTP NodePorts, --nodeport-addresses, IPv6.
import { formatIpv4, parseIpv4 } from "../../packet/addr.js";
import { Ipvs, type IpvsScheduler } from "../../netfilter/ipvs.js";
import { IpSetRegistry, type IpSetType } from "../../netfilter/ipset.js";
import type { Cluster } from "../types.js";
import { buildServicePorts, categorizeEndpoints, type ProxyEndpoint } from "./service-ports.js";

export interface IpvsProxierOptions {
  nodeName: string;
  nodeIPs: string[];
  clusterCIDR: string;
  /** --ipvs-scheduler (default rr). */
  scheduler?: IpvsScheduler;
  masqueradeBit?: number;
  masqueradeAll?: boolean;
  randomFully?: boolean;
}

/** ipset.go: name, type and comment of every set kube-proxy ensures, in its order. */
export const IPVS_IPSETS: [string, IpSetType, string][] = [
  ["KUBE-LOOP-BACK", "hash:ip,port,ip", "Kubernetes endpoints dst ip:port, source ip for solving hairpin purpose"],
  ["KUBE-CLUSTER-IP", "hash:ip,port", "Kubernetes service cluster ip + port for masquerade purpose"],
  ["KUBE-EXTERNAL-IP", "hash:ip,port", "Kubernetes service external ip + port for masquerade and filter purpose"],
  ["KUBE-EXTERNAL-IP-LOCAL", "hash:ip,port", "Kubernetes service external ip + port with externalTrafficPolicy=local"],
  ["KUBE-LOAD-BALANCER", "hash:ip,port", "Kubernetes service lb portal"],
  ["KUBE-LOAD-BALANCER-FW", "hash:ip,port", "Kubernetes service load balancer ip + port for load balancer with sourceRange"],
  ["KUBE-LOAD-BALANCER-LOCAL", "hash:ip,port", "Kubernetes service load balancer ip + port with externalTrafficPolicy=local"],
  ["KUBE-LOAD-BALANCER-SOURCE-IP", "hash:ip,port,ip", "Kubernetes service load balancer ip + port + source IP for packet filter purpose"],
  ["KUBE-LOAD-BALANCER-SOURCE-CIDR", "hash:ip,port,net", "Kubernetes service load balancer ip + port + source cidr for packet filter purpose"],
  ["KUBE-NODE-PORT-TCP", "bitmap:port", "Kubernetes nodeport TCP port for masquerade purpose"],
  ["KUBE-NODE-PORT-LOCAL-TCP", "bitmap:port", "Kubernetes nodeport TCP port with externalTrafficPolicy=local"],
  ["KUBE-NODE-PORT-UDP", "bitmap:port", "Kubernetes nodeport UDP port for masquerade purpose"],
  ["KUBE-NODE-PORT-LOCAL-UDP", "bitmap:port", "Kubernetes nodeport UDP port with externalTrafficPolicy=local"],
  ["KUBE-HEALTH-CHECK-NODE-PORT", "bitmap:port", "Kubernetes health check node port"],
  ["KUBE-IPVS-IPS", "hash:ip", "Addresses on the ipvs interface"],
];

export interface IpvsState {
  ipvs: Ipvs;
  ipsets: IpSetRegistry;
  /** Addresses bound to kube-ipvs0 (ClusterIPs, externalIPs, LB IPs), sorted, as `ip addr show kube-ipvs0` lists /32s. */
  kubeIpvs0: string[];
  opts: IpvsProxierOptions;
  /** LB ip, protocol and port whose source ranges leave the node out (kube-proxy's lbNoNodeAccessIPPortProtocolEntries). */
  lbNoNodeAccess: { ip: string; proto: string; port: number }[];
  stats: { services: number; virtualServers: number; realServers: number };
}

const PROTO_NUM: Record<string, number> = { tcp: 6, udp: 17, sctp: 132 };

const maskOf = (bits: number) => (bits === 0 ? 0 : (~0 << (32 - bits)) | 0);

/** "a.b.c.d/n" (or a bare address, /32) → network with host bits cleared and prefix length (Go's net.ParseCIDR + String). */
function parseCidr(text: string): [number, number] {
  const [addr, len] = text.split("/");
  const bits = len === undefined ? 32 : Number(len);
  return [(parseIpv4(addr!) & maskOf(bits)) >>> 0, bits];
}

export function generateIpvs(cluster: Cluster, opts: IpvsProxierOptions): IpvsState {
  const ipvs = new Ipvs();
  const ipsets = new IpSetRegistry();
  for (const [name, type, comment] of IPVS_IPSETS) ipsets.create(name, type, comment);
  const set = (name: string) => ipsets.get(name)!;
  const bound = new Set<string>();
  const node = cluster.nodes.find((n) => n.metadata.name === opts.nodeName);
  const sched = opts.scheduler ?? "rr";
  const ports = buildServicePorts(cluster, opts.nodeName);
  let realServers = 0;
  const lbNoNodeAccess: IpvsState["lbNoNodeAccess"] = [];
  const nodeIP = opts.nodeIPs[0] !== undefined ? parseIpv4(opts.nodeIPs[0]) : -1;

  for (const sp of ports) {
    const proto = PROTO_NUM[sp.proto];
    if (proto === undefined) continue;
    const cat = categorizeEndpoints(sp, node, opts.nodeName);
    const internal = sp.internalPolicyLocal ? cat.localEndpoints : cat.clusterEndpoints;
    const external = sp.externalPolicyLocal ? cat.localEndpoints : cat.clusterEndpoints;
    const entry = (ip: string) => `${ip},${sp.proto}:${sp.port}`;
    // Hairpin: a local endpoint talking to its own Service is masqueraded (KUBE-LOOP-BACK dst,dst,src).
    for (const ep of cat.allReachableEndpoints) if (ep.isLocal) set("KUBE-LOOP-BACK").add(`${ep.ip},${sp.proto}:${ep.port},${ep.ip}`);
    const addVs = (ip: string, port: number, eps: ProxyEndpoint[]) => {
      const svc = ipvs.addService({
        proto, addr: parseIpv4(ip), port, scheduler: sched,
        persistent: sp.sessionAffinityClientIP, timeout: sp.sessionAffinityClientIP ? sp.stickyMaxAgeSeconds : 0,
      });
      for (const ep of eps) {
        ipvs.addDest(svc, { addr: parseIpv4(ep.ip), port: ep.port, weight: 1 });
        realServers++;
      }
    };
    set("KUBE-CLUSTER-IP").add(entry(sp.clusterIP));
    bound.add(sp.clusterIP);
    addVs(sp.clusterIP, sp.port, internal);
    for (const ip of sp.externalIPs) {
      set(sp.externalPolicyLocal ? "KUBE-EXTERNAL-IP-LOCAL" : "KUBE-EXTERNAL-IP").add(entry(ip));
      bound.add(ip);
      addVs(ip, sp.port, external);
    }
    for (const ip of sp.loadBalancerVIPs) {
      set("KUBE-LOAD-BALANCER").add(entry(ip));
      if (sp.externalPolicyLocal) set("KUBE-LOAD-BALANCER-LOCAL").add(entry(ip));
      if (sp.loadBalancerSourceRanges.length > 0) {
        set("KUBE-LOAD-BALANCER-FW").add(entry(ip));
        let allowFromNode = false;
        for (const range of sp.loadBalancerSourceRanges) {
          const [net, bits] = parseCidr(range);
          if (nodeIP >= 0 && ((nodeIP ^ net) & maskOf(bits)) === 0) allowFromNode = true;
          if (bits > 0) set("KUBE-LOAD-BALANCER-SOURCE-CIDR").add(`${entry(ip)},${formatIpv4(net)}/${bits}`);
        }
        if (allowFromNode) set("KUBE-LOAD-BALANCER-SOURCE-IP").add(`${entry(ip)},${ip}`);
        else lbNoNodeAccess.push({ ip, proto: sp.proto, port: sp.port });
      }
      bound.add(ip);
      addVs(ip, sp.port, external);
    }
    if (sp.nodePort !== 0 && (sp.proto === "tcp" || sp.proto === "udp")) {
      const up = sp.proto.toUpperCase();
      set(`KUBE-NODE-PORT-${up}`).add(String(sp.nodePort));
      if (sp.externalPolicyLocal) set(`KUBE-NODE-PORT-LOCAL-${up}`).add(String(sp.nodePort));
      for (const ip of opts.nodeIPs) addVs(ip, sp.nodePort, external);
    }
    if (sp.healthCheckNodePort !== 0) set("KUBE-HEALTH-CHECK-NODE-PORT").add(String(sp.healthCheckNodePort));
  }
  const kubeIpvs0 = [...bound].sort((a, b) => parseIpv4(a) - parseIpv4(b));
  for (const ip of kubeIpvs0) set("KUBE-IPVS-IPS").add(ip);
  return {
    ipvs, ipsets, kubeIpvs0, opts, lbNoNodeAccess,
    stats: { services: new Set(ports.map((p) => `${p.namespace}/${p.name}`)).size, virtualServers: ipvs.services.length, realServers },
  };
}
