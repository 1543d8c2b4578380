// Synthetic clusters for `tcbox bench`: S ClusterIP Services x N ready endpoints, built as objects directly
// (parsing 10k Services of YAML would measure the parser, not the dataplane).
import type { Cluster, EndpointSlice, Node, Service } from "../k8s/types.js";

/** Service s's ClusterIP: 10.96.0.0/12 + s (10.96.x.y, up to 1M Services). */
export function serviceIp(s: number): number {
  return (0x0a600000 + s) >>> 0;
}

/** Endpoint n's pod IP, in 10.128.0.0/10 (outside the 10.244.0.0/16 cluster CIDR clients come from). */
export function endpointIp(n: number): number {
  return (0x0a800000 + n) >>> 0;
}

const dotted = (a: number) => `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`;

export function syntheticCluster(nServices: number, perService = 3): Cluster {
  const nodes: Node[] = [1, 2, 3].map((i) => ({
    kind: "Node",
    metadata: { name: `node-${i}`, namespace: "", labels: {}, annotations: {} },
    internalIP: `192.168.0.${i}`,
    internalIPs: [`192.168.0.${i}`],
    externalIP: null,
    podCIDR: `10.244.${i}.0/24`,
    zone: null,
    instanceType: null,
    unschedulable: false,
  }));
  const services: Service[] = [];
  const endpointSlices: EndpointSlice[] = [];
  for (let s = 0; s < nServices; s++) {
    const name = `svc-${s}`;
    const ip = dotted(serviceIp(s));
    services.push({
      kind: "Service",
      metadata: { name, namespace: "bench", labels: {}, annotations: {} },
      type: "ClusterIP",
      selector: null,
      ports: [{ name: "http", protocol: "TCP", port: 80, targetPort: 8080, nodePort: 0, appProtocol: null }],
      clusterIP: ip,
      clusterIPs: [ip],
      externalIPs: [],
      externalName: null,
      loadBalancerIngress: [],
      loadBalancerSourceRanges: [],
      externalTrafficPolicy: "Cluster",
      internalTrafficPolicy: "Cluster",
      healthCheckNodePort: 0,
      sessionAffinity: "None",
      sessionAffinityTimeoutSeconds: 10800,
      publishNotReadyAddresses: false,
      trafficDistribution: null,
      loadBalancerProxyIPs: [],
    });
    endpointSlices.push({
      kind: "EndpointSlice",
      metadata: { name: `${name}-abcde`, namespace: "bench", labels: { "kubernetes.io/service-name": name }, annotations: {} },
      addressType: "IPv4",
      serviceName: name,
      ports: [{ name: "http", port: 8080, protocol: "TCP", appProtocol: null }],
      endpoints: Array.from({ length: perService }, (_, e) => ({
        addresses: [dotted(endpointIp(s * perService + e))],
        conditions: { ready: true, serving: true, terminating: false },
        nodeName: `node-${1 + (e % 3)}`,
        zone: null,
        targetRef: null,
        hintsZones: [],
      })),
    });
  }
  return { namespaces: [], nodes, pods: [], services, endpointSlices, networkPolicies: [], clusterCIDR: "10.244.0.0/16", serviceCIDR: "10.96.0.0/12", seed: 1 };
}
