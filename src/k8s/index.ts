// Public API of the Kubernetes layer.
export * from "./types.js";
export { ManifestError } from "./errors.js";
export { loadCluster, loadClusterFile, type ClusterOptions } from "./cluster.js";
export { DEMO_CLUSTER_YAML, DEMO_CLUSTER_FILE, loadDemoCluster } from "./demo-cluster.js";
export { selectorMatches } from "./parse-core.js";
export { findPort, selectorMatchesMap, sliceService, MAX_ENDPOINTS_PER_SLICE } from "./endpointslice-controller.js";
export { ServiceIPAllocator, NodePortAllocator, PodCIDRAllocator, HostLocalIpam } from "./allocators.js";
export * from "./kube-proxy/chain-names.js";
export { buildServicePorts, categorizeEndpoints, type ProxyServicePort, type ProxyEndpoint } from "./kube-proxy/service-ports.js";
export { generateIptables, restorePayload, probability, type IptablesProxierOptions, type KubeProxyTables, type KubeRule } from "./kube-proxy/iptables.js";
export { iptablesSave, saveRule, savedProbability, jumpRules } from "./kube-proxy/iptables-save.js";
export { generateNftables, nftTransaction, nftNameBase, type NftTable, type NftChain, type NftSet, type NftProxierOptions } from "./kube-proxy/nftables.js";
export { nftListRuleset } from "./kube-proxy/nftables-list.js";
