// kube-proxy IPVS mode (pkg/proxy/ipvs/proxier.go syncProxyRules): per Service port a virtual server on the
// ClusterIP, each externalIP, each load-balancer ingress IP and, for NodePorts, each node IP; real servers are the
// categorized endpoints (Local policies: the node's own, or the cluster's when the node has none), weight 1;
// sessionAffinity ClientIP makes the virtual server persistent with the affinity timeout. The Service IPs are bound
// to the dummy interface kube-ipvs0 (not an external/LB address the node already holds). The ipsets kube-proxy
// keeps (ipset.go ipsetInfo) are filled, and the iptables rules are in ipvs-rules.ts.
//
//   let state = generateIpvs(cluster, { nodeName, nodeIPs, clusterCIDR });
//   state.ipvs (netfilter/ipvs.ts) · state.ipsets · state.kubeIpvs0 (addresses) · ipvsIptablesSave(state)
//   const path = new IpvsPath(state.ipvs); state.graceful.conns = path.conns;   // the node's packet path
//   state = syncIpvs(state, laterCluster, now);  state.graceful.tick(now)        // later syncs, the 1-min retries
//
// loadBalancerSourceRanges: each LB ingress ip,proto:port of such a Service goes into KUBE-LOAD-BALANCER-FW and,
// per range, ip,proto:port,cidr into KUBE-LOAD-BALANCER-SOURCE-CIDR (hash:ip,port,net); when a range holds the
// node's (first) IP, ip,proto:port,ip into KUBE-LOAD-BALANCER-SOURCE-IP (the node reaches its own LB address with
// that address as source). A 0.0.0.0/0 range passes kube-proxy's validation but the kernel refuses a /0 in a
// hash:ip,port,net set, so it adds no member (it still counts for the node). Ranges that leave the node out make
// kube-proxy add a `-m ipvs` DROP to KUBE-IPVS-OUT-FILTER (kubernetes#119656): listed in state.lbNoNodeAccess,
// not written (tcbox's iptables has no ipvs match).
// A later sync (syncIpvs) reconciles the node's IPVS table with the cluster as syncService / syncEndpoint /
// cleanLegacyService do: new virtual and real servers added, changed ones edited, vanished virtual servers
// deleted, and vanished real servers handed to the graceful termination manager (graceful_termination.go): a UDP
// or SCTP one, or one without connections (ActiveConn + InActConn = 0), is deleted at once; any other gets weight 0
// (no new connections; established ones keep it) and is retried every minute (rsCheckDeleteInterval) until its
// connections are gone. An endpoint that comes back while draining is deleted and added anew (weight 1, its old
// connections then meet expire_nodest_conn). Real servers are added in endpoint order (upstream: Go map order).
// Not modelled: --nodeport-addresses, IPv6.
import { formatIpv4, parseIpv4 } from "../../packet/addr.js";
import { Ipvs, type IpvsDest, type IpvsScheduler, type IpvsService } from "../../netfilter/ipvs.js";
import type { IpvsConnTable } from "../../netfilter/ipvs-conn.js";
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
  ["KUBE-NODE-PORT-SCTP-HASH", "hash:ip,port", "Kubernetes nodeport SCTP port for masquerade purpose with type 'hash ip:port'"],
  ["KUBE-NODE-PORT-LOCAL-SCTP-HASH", "hash:ip,port", "Kubernetes nodeport SCTP port with externalTrafficPolicy=local with type 'hash ip:port'"],
  ["KUBE-HEALTH-CHECK-NODE-PORT", "bitmap:port", "Kubernetes health check node port"],
  ["KUBE-IPVS-IPS", "hash:ip", "Addresses on the ipvs interface"],
];

export interface IpvsState {
  ipvs: Ipvs;
  ipsets: IpSetRegistry;
  /** Addresses bound to kube-ipvs0 (ClusterIPs, externalIPs, LB IPs), sorted, as `ip addr show kube-ipvs0` lists /32s. */
  kubeIpvs0: string[];
  opts: IpvsProxierOptions;
  /** Real servers draining before deletion (kube-proxy's GracefulTerminationManager). */
  graceful: GracefulTermination;
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
    // syncEndpoint: a Local policy takes the node's endpoints, or the cluster's when it has none
    // (kubernetes#97081: local pods still reach the Service; external clients' replies get lost).
    const pick = (local: boolean) => (local && cat.localEndpoints.length > 0 ? cat.localEndpoints : cat.clusterEndpoints);
    const internal = pick(sp.internalPolicyLocal);
    const external = pick(sp.externalPolicyLocal);
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
    // syncService: an external or LB address the node already holds is not bound to kube-ipvs0 again.
    const bind = (ip: string) => {
      if (!opts.nodeIPs.includes(ip)) bound.add(ip);
    };
    for (const ip of sp.externalIPs) {
      set(sp.externalPolicyLocal ? "KUBE-EXTERNAL-IP-LOCAL" : "KUBE-EXTERNAL-IP").add(entry(ip));
      bind(ip);
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
      bind(ip);
      addVs(ip, sp.port, external);
    }
    if (sp.nodePort !== 0) {
      if (sp.proto === "sctp") {
        // SCTP node ports are hash:ip,port sets with one member per node IP.
        for (const ip of opts.nodeIPs) {
          set("KUBE-NODE-PORT-SCTP-HASH").add(`${ip},sctp:${sp.nodePort}`);
          if (sp.externalPolicyLocal) set("KUBE-NODE-PORT-LOCAL-SCTP-HASH").add(`${ip},sctp:${sp.nodePort}`);
        }
      } else {
        const up = sp.proto.toUpperCase();
        set(`KUBE-NODE-PORT-${up}`).add(String(sp.nodePort));
        if (sp.externalPolicyLocal) set(`KUBE-NODE-PORT-LOCAL-${up}`).add(String(sp.nodePort));
      }
      for (const ip of opts.nodeIPs) addVs(ip, sp.nodePort, external);
    }
    if (sp.healthCheckNodePort !== 0) set("KUBE-HEALTH-CHECK-NODE-PORT").add(String(sp.healthCheckNodePort));
  }
  const kubeIpvs0 = [...bound].sort((a, b) => parseIpv4(a) - parseIpv4(b));
  for (const ip of kubeIpvs0) set("KUBE-IPVS-IPS").add(ip);
  return {
    ipvs, ipsets, kubeIpvs0, opts, lbNoNodeAccess, graceful: new GracefulTermination(ipvs),
    stats: { services: new Set(ports.map((p) => `${p.namespace}/${p.name}`)).size, virtualServers: ipvs.services.length, realServers },
  };
}

/** rsCheckDeleteInterval: how often the manager retries the real servers it holds (seconds). */
export const RS_CHECK_DELETE_INTERVAL = 60;

/** GetUniqueRSName: "vaddr:vport/PROTO/raddr:rport" (numbers here: the key only has to be unique). */
const rsKey = (svc: IpvsService, d: { addr: number; port: number }) => `${svc.proto}:${svc.addr}:${svc.port}/${d.addr}:${d.port}`;

/**
 * kube-proxy's GracefulTerminationManager over one IPVS table. `conns` (the node's connection table) is swept
 * before connection counts are read, so expired connections no longer count, as the kernel's timers would have it.
 */
export class GracefulTermination {
  /** Real servers waiting for their connections to end, by unique name. */
  readonly list = new Map<string, { svc: IpvsService; dest: IpvsDest }>();
  /** When tick() runs the next retry (wait.Until: at start, then every interval). */
  nextRun = 0;
  conns: IpvsConnTable | null = null;
  constructor(readonly ipvs: Ipvs) {}

  inList(svc: IpvsService, d: { addr: number; port: number }): boolean {
    return this.list.has(rsKey(svc, d));
  }

  /** GracefulDeleteRS: delete now when possible, else weight 0 and onto the list. */
  gracefulDelete(svc: IpvsService, dest: IpvsDest, now: number): void {
    if (this.tryDelete(svc, dest, now)) return;
    this.ipvs.editDest(svc, dest.addr, dest.port, 0);
    this.list.set(rsKey(svc, dest), { svc, dest });
  }

  /** deleteRsFunc: UDP and SCTP real servers go at once (expire_nodest_conn ends their flows); others when idle. */
  private tryDelete(svc: IpvsService, dest: IpvsDest, now: number): boolean {
    if (svc.deleted || !dest.available) return true;
    this.conns?.sweep(now);
    if (svc.proto === 6 && dest.activeConns + dest.inactConns !== 0) return false;
    this.ipvs.delDest(svc, dest.addr, dest.port);
    return true;
  }

  /** MoveRSOutofGracefulDeleteList: the endpoint is wanted again; delete it now (it is then added anew). */
  moveOut(svc: IpvsService, d: { addr: number; port: number }): void {
    const key = rsKey(svc, d);
    const item = this.list.get(key);
    if (!item) return;
    if (item.dest.available) this.ipvs.delDest(svc, d.addr, d.port);
    this.list.delete(key);
  }

  /** tryDeleteRs, run at every interval boundary up to `now` (each retry sees the table as of its own time). */
  tick(now: number): void {
    while (this.nextRun <= now) {
      for (const [key, { svc, dest }] of this.list) if (this.tryDelete(svc, dest, this.nextRun)) this.list.delete(key);
      this.nextRun += RS_CHECK_DELETE_INTERVAL;
    }
  }
}

/**
 * A later syncProxyRules on the same node at time `now`: the state's IPVS table (and its connections) is kept and
 * brought to what `cluster` asks for; ipsets, kube-ipvs0 addresses and iptables rules are recomputed. Returns the
 * new state (sharing the IPVS table and the graceful termination manager).
 */
export function syncIpvs(state: IpvsState, cluster: Cluster, now: number): IpvsState {
  const want = generateIpvs(cluster, state.opts);
  const ipvs = state.ipvs;
  const g = state.graceful;
  g.tick(now);
  const active = new Set<IpvsService>();
  for (const w of want.ipvs.services) {
    let svc = ipvs.services[ipvs.lookup(w.proto, w.addr, w.port)];
    if (!svc) svc = ipvs.addService({ proto: w.proto, addr: w.addr, port: w.port, scheduler: w.scheduler, persistent: w.persistent, timeout: w.timeout });
    else if (svc.scheduler !== w.scheduler || svc.persistent !== w.persistent || svc.timeout !== w.timeout) ipvs.editService(svc, w);
    active.add(svc);
    // syncEndpoint: the kernel list is newest first; add in endpoint order (the reverse of want's list).
    const wanted = [...w.dests].reverse();
    for (const d of wanted) {
      if (ipvs.findDest(svc, d.addr, d.port)) {
        if (!g.inList(svc, d)) continue;
        g.moveOut(svc, d);
      }
      ipvs.addDest(svc, { addr: d.addr, port: d.port, weight: 1 });
    }
    for (const cur of [...svc.dests]) {
      if (wanted.some((d) => d.addr === cur.addr && d.port === cur.port) || g.inList(svc, cur)) continue;
      g.gracefulDelete(svc, cur, now);
    }
  }
  // cleanLegacyService: virtual servers nobody wants any more.
  for (const svc of ipvs.live()) {
    if (active.has(svc)) continue;
    for (const d of svc.dests) g.list.delete(rsKey(svc, d));
    ipvs.delService(svc);
  }
  let realServers = 0;
  for (const svc of ipvs.live()) realServers += svc.dests.length;
  return { ...want, ipvs, graceful: g, stats: { ...want.stats, virtualServers: ipvs.live().length, realServers } };
}
