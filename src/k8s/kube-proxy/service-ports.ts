// kube-proxy's view of the cluster (pkg/proxy: ServicePortMap, EndpointsMap, CategorizeEndpoints): one entry
// per Service port with an IPv4 ClusterIP, and its endpoints taken from EndpointSlices, sorted by "ip:port".
import type { Cluster, Node } from "../types.js";
import { LABEL_ZONE } from "../types.js";
import { extChain, fwChain, sepChain, servicePortNameString, svcChain, svlChain } from "./chain-names.js";

export interface ProxyEndpoint {
  ip: string;
  port: number;
  /** "ip:port", BaseEndpointInfo.String(). */
  str: string;
  isLocal: boolean;
  ready: boolean;
  serving: boolean;
  terminating: boolean;
  zoneHints: string[];
  chain: string;
}

export interface ProxyServicePort {
  namespace: string;
  name: string;
  portName: string;
  /** "ns/name:port" (ServicePortName.String()). */
  spn: string;
  /** Upper case, as in the API ("TCP"). */
  protocol: string;
  /** Lower case, as kube-proxy writes it in rules ("tcp"). */
  proto: string;
  clusterIP: string;
  port: number;
  nodePort: number;
  externalIPs: string[];
  loadBalancerVIPs: string[];
  loadBalancerSourceRanges: string[];
  externalPolicyLocal: boolean;
  internalPolicyLocal: boolean;
  healthCheckNodePort: number;
  sessionAffinityClientIP: boolean;
  stickyMaxAgeSeconds: number;
  clusterPolicyChain: string;
  localPolicyChain: string;
  firewallChain: string;
  externalChain: string;
  endpoints: ProxyEndpoint[];
}

/** BaseServicePortInfo.ExternallyAccessible(). */
export function externallyAccessible(s: ProxyServicePort): boolean {
  return s.nodePort !== 0 || s.loadBalancerVIPs.length > 0 || s.externalIPs.length > 0;
}
/** UsesClusterEndpoints: internal policy Cluster, or external traffic with policy Cluster. */
export function usesClusterEndpoints(s: ProxyServicePort): boolean {
  return !s.internalPolicyLocal || (externallyAccessible(s) && !s.externalPolicyLocal);
}
export function usesLocalEndpoints(s: ProxyServicePort): boolean {
  return s.internalPolicyLocal || (externallyAccessible(s) && s.externalPolicyLocal);
}

const isIPv4 = (ip: string) => /^\d+\.\d+\.\d+\.\d+$/.test(ip);

/** Build the ServicePortMap + EndpointsMap kube-proxy on `nodeName` would hold, ordered by "ns/name:port" then protocol. */
export function buildServicePorts(cluster: Cluster, nodeName: string): ProxyServicePort[] {
  const out: ProxyServicePort[] = [];
  const byKey = new Map<string, ProxyServicePort>();
  for (const svc of cluster.services) {
    // ServiceChangeTracker skips Services without a ClusterIP (headless, ExternalName).
    if (svc.type === "ExternalName" || !svc.clusterIP || svc.clusterIP === "None" || !isIPv4(svc.clusterIP)) continue;
    const externallyAccessibleSvc = svc.type === "LoadBalancer" || svc.type === "NodePort" || (svc.type === "ClusterIP" && svc.externalIPs.length > 0);
    const externalPolicyLocal = externallyAccessibleSvc && svc.externalTrafficPolicy === "Local";
    for (const p of svc.ports) {
      const spn = servicePortNameString(svc.metadata.namespace, svc.metadata.name, p.name);
      const proto = p.protocol.toLowerCase();
      const sp: ProxyServicePort = {
        namespace: svc.metadata.namespace,
        name: svc.metadata.name,
        portName: p.name,
        spn,
        protocol: p.protocol,
        proto,
        clusterIP: svc.clusterIP,
        port: p.port,
        nodePort: p.nodePort,
        externalIPs: svc.externalIPs.filter(isIPv4),
        loadBalancerVIPs: svc.type === "LoadBalancer" ? svc.loadBalancerIngress.filter(isIPv4) : [],
        loadBalancerSourceRanges: svc.loadBalancerSourceRanges.map((r) => r.trim()).filter((r) => isIPv4(r.split("/")[0]!)),
        externalPolicyLocal,
        internalPolicyLocal: svc.internalTrafficPolicy === "Local",
        healthCheckNodePort: svc.type === "LoadBalancer" && externalPolicyLocal ? svc.healthCheckNodePort : 0,
        sessionAffinityClientIP: svc.sessionAffinity === "ClientIP",
        stickyMaxAgeSeconds: svc.sessionAffinityTimeoutSeconds,
        clusterPolicyChain: svcChain(spn, proto),
        localPolicyChain: svlChain(spn, proto),
        firewallChain: fwChain(spn, proto),
        externalChain: extChain(spn, proto),
        endpoints: [],
      };
      out.push(sp);
      byKey.set(`${spn}/${p.protocol}`, sp);
    }
  }

  // EndpointSliceCache: endpoints per (service, port name, protocol), deduplicated by "ip:port" (a ready copy
  // wins over a not-ready one), then sorted by that string.
  const sets = new Map<ProxyServicePort, Map<string, ProxyEndpoint>>();
  for (const slice of cluster.endpointSlices) {
    if (slice.addressType !== "IPv4" || !slice.serviceName) continue;
    for (const port of slice.ports) {
      if (!port.port) continue;
      const spn = servicePortNameString(slice.metadata.namespace, slice.serviceName, port.name);
      const sp = byKey.get(`${spn}/${port.protocol}`);
      if (!sp) continue;
      let set = sets.get(sp);
      if (!set) sets.set(sp, (set = new Map()));
      for (const ep of slice.endpoints) {
        const ip = ep.addresses[0];
        if (!ip) continue;
        const str = `${ip}:${port.port}`;
        const info: ProxyEndpoint = {
          ip,
          port: port.port,
          str,
          isLocal: ep.nodeName === nodeName,
          ready: ep.conditions.ready,
          serving: ep.conditions.serving,
          terminating: ep.conditions.terminating,
          zoneHints: ep.hintsZones,
          chain: sepChain(sp.spn, sp.proto, str),
        };
        if (!set.has(str) || info.ready) set.set(str, info);
      }
    }
  }
  for (const [sp, set] of sets) sp.endpoints = [...set.values()].sort((a, b) => (a.str < b.str ? -1 : a.str > b.str ? 1 : 0));
  out.sort((a, b) => (a.spn < b.spn ? -1 : a.spn > b.spn ? 1 : a.protocol < b.protocol ? -1 : a.protocol > b.protocol ? 1 : 0));
  return out;
}

export interface Categorized {
  clusterEndpoints: ProxyEndpoint[];
  localEndpoints: ProxyEndpoint[];
  allReachableEndpoints: ProxyEndpoint[];
  hasAnyEndpoints: boolean;
}

/**
 * pkg/proxy/topology.go CategorizeEndpoints: Ready endpoints by default, falling back (independently for Cluster
 * and Local) to serving+terminating ones when none is ready; zone hints honoured when every ready endpoint has
 * one and one is for this node's zone.
 */
export function categorizeEndpoints(sp: ProxyServicePort, node: Node | undefined, nodeName: string): Categorized {
  const eps = sp.endpoints;
  const zone = node?.metadata.labels[LABEL_ZONE] ?? "";
  let clusterEndpoints: ProxyEndpoint[] = [];
  let localEndpoints: ProxyEndpoint[] = [];
  let hasAnyEndpoints = false;
  let topologyMode = "";
  let useServingTerminating = false;

  if (usesClusterEndpoints(sp)) {
    let allHaveZoneHints = true;
    let hasForZone = false;
    for (const ep of eps) {
      if (!ep.ready) continue;
      if (ep.zoneHints.length === 0) allHaveZoneHints = false;
      else if (ep.zoneHints.includes(zone)) hasForZone = true;
    }
    if (allHaveZoneHints && hasForZone) topologyMode = "PreferSameZone";
    clusterEndpoints = eps.filter((ep) => ep.ready && (topologyMode === "" || ep.zoneHints.includes(zone)));
    if (clusterEndpoints.length === 0) clusterEndpoints = eps.filter((ep) => ep.serving && ep.terminating);
    if (clusterEndpoints.length > 0) hasAnyEndpoints = true;
  }
  if (!usesLocalEndpoints(sp)) return { clusterEndpoints, localEndpoints, allReachableEndpoints: clusterEndpoints, hasAnyEndpoints };

  let hasLocalReady = false;
  let hasLocalServingTerminating = false;
  for (const ep of eps) {
    if (ep.ready) {
      hasAnyEndpoints = true;
      if (ep.isLocal) hasLocalReady = true;
    } else if (ep.serving && ep.terminating) {
      hasAnyEndpoints = true;
      if (ep.isLocal) hasLocalServingTerminating = true;
    }
  }
  if (hasLocalReady) localEndpoints = eps.filter((ep) => ep.isLocal && ep.ready);
  else if (hasLocalServingTerminating) {
    useServingTerminating = true;
    localEndpoints = eps.filter((ep) => ep.isLocal && ep.serving && ep.terminating);
  }
  if (!usesClusterEndpoints(sp)) return { clusterEndpoints, localEndpoints, allReachableEndpoints: localEndpoints, hasAnyEndpoints };
  if (topologyMode === "" && !useServingTerminating) return { clusterEndpoints, localEndpoints, allReachableEndpoints: clusterEndpoints, hasAnyEndpoints };
  // Union of both lists (upstream iterates a Go map here, so its order is unspecified; we keep "ip:port" order).
  const merged = new Map<string, ProxyEndpoint>();
  for (const ep of clusterEndpoints) merged.set(ep.str, ep);
  for (const ep of localEndpoints) merged.set(ep.str, ep);
  const all = [...merged.values()].sort((a, b) => (a.str < b.str ? -1 : a.str > b.str ? 1 : 0));
  return { clusterEndpoints, localEndpoints, allReachableEndpoints: all, hasAnyEndpoints };
}
