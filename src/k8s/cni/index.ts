// CNI: the spec's contract (types, exec), the plugins of the three CNI-driven generations and their IPAM.
export * from "./types.js";
export { HostLocal, emptyLeaseStore, type LeaseStore, type Lease } from "./host-local.js";
export { calicoAssign, calicoRelease, nodeBlocks, type CalicoIpamState, type CalicoBlock } from "./calico-ipam.js";
export { bridgePlugin, cniChainName } from "./bridge.js";
export { calicoPlugin, CALICO_GATEWAY, CALICO_HOST_MAC } from "./calico.js";
export { awsVpcPlugin, AWS_GATEWAY, ENI_LIMITS, maxPods, planEnis, limitsOf, type Eni, type AwsIpamdState } from "./aws-vpc.js";
export { commandLog, emptyPluginState, workloadVethName, randomVethName, type PluginContext, type PluginState, type CniPlugin } from "./plugin.js";
export { invoke, parseEnv, parseConf, PLUGINS, type CniOutcome } from "./exec.js";
export { openSession, parseStateFile, emptyStateFile, ensureSandbox, type CniSession, type CniStateFile, type JournalEntry } from "./state.js";
