// The control-plane cost kube-proxy pays on every full sync: categorize endpoints, generate the iptables ruleset
// (or the nftables transaction) and print it, at 10, 100, 1k and 10k Services (3 endpoints each, one port, a
// NodePort on every 10th).
// Items are Services, so the per-item figure is the cost per Service per sync.
import { runGroup, type BenchOptions } from "./harness.js";
import { generateIptables, restorePayload } from "../src/k8s/kube-proxy/iptables.js";
import { iptablesSave } from "../src/k8s/kube-proxy/iptables-save.js";
import { generateNftables, nftTransaction } from "../src/k8s/kube-proxy/nftables.js";
import type { Cluster, EndpointSlice, Node, Service } from "../src/k8s/types.js";

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
    const ip = `10.96.${(s >> 8) & 255}.${s & 255}`;
    services.push({
      kind: "Service",
      metadata: { name, namespace: "bench", labels: {}, annotations: {} },
      type: s % 10 === 0 ? "NodePort" : "ClusterIP",
      selector: null,
      ports: [{ name: "http", protocol: "TCP", port: 80, targetPort: 8080, nodePort: s % 10 === 0 ? 30000 + (s % 2768) : 0, appProtocol: null }],
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
      endpoints: Array.from({ length: perService }, (_, e) => {
        const n = s * perService + e;
        return {
          addresses: [`10.${128 + ((n >> 16) & 63)}.${(n >> 8) & 255}.${n & 255}`],
          conditions: { ready: true, serving: true, terminating: false },
          nodeName: `node-${1 + (e % 3)}`,
          zone: null,
          targetRef: null,
          hintsZones: [],
        };
      }),
    });
  }
  return { namespaces: [], nodes, pods: [], services, endpointSlices, networkPolicies: [], clusterCIDR: "10.244.0.0/16", serviceCIDR: "10.96.0.0/12", seed: 1 };
}

const OPTS = { nodeName: "node-1", nodeIPs: ["192.168.0.1"], clusterCIDR: "10.244.0.0/16" };

export default async function (opts: BenchOptions): Promise<void> {
  const sizes = opts.quick ? [10, 100, 1000] : [10, 100, 1000, 10000];
  const clusters = new Map(sizes.map((n) => [n, syntheticCluster(n)]));
  for (const n of sizes) {
    const t = generateIptables(clusters.get(n)!, OPTS);
    const text = iptablesSave(t);
    process.stdout.write(`${n} Services: ${t.natRules.length + t.filterRules.length} rules, ${t.natChains.length} nat chains, ${(text.length / 1024).toFixed(0)} KiB of iptables-save text${t.stats.largeClusterMode ? " (large cluster mode: no per-endpoint comments)" : ""}\n`);
  }
  await runGroup(
    "kube-proxy iptables full sync: generate + print restore payload (per Service)",
    sizes.map((n) => ({ name: `${n} Services`, items: n, fn: () => void restorePayload(generateIptables(clusters.get(n)!, OPTS)) })),
    opts,
  );
  await runGroup(
    "kube-proxy iptables full sync: generate + print as iptables-save (per Service)",
    sizes.map((n) => ({ name: `${n} Services`, items: n, fn: () => void iptablesSave(generateIptables(clusters.get(n)!, OPTS)) })),
    opts,
  );
  await runGroup(
    "kube-proxy nftables full sync: generate + print the nft -f transaction (per Service)",
    sizes.map((n) => ({ name: `${n} Services`, items: n, fn: () => void nftTransaction(generateNftables(clusters.get(n)!, OPTS)) })),
    opts,
  );
}
