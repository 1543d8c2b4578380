// One cluster -> one generation's dataplane. Gen 4 (eBPF) registers its builder in BUILDERS when it exists.
import type { Cluster } from "../k8s/types.js";
import { buildGen1 } from "./gen1.js";
import { buildGen2 } from "./gen2.js";
import { buildGen3 } from "./gen3.js";
import type { BuildOptions, BuiltGeneration, GenNumber } from "./types.js";

export * from "./types.js";
export { buildGen1, flannelBridgeConf, FLANNEL_DEV, FLANNEL_VNI } from "./gen1.js";
export { buildGen2, calicoConf } from "./gen2.js";
export { buildGen3, awsConf } from "./gen3.js";
export { buildUnderlay, resolveOptions, cniAdd, hostNetworkPod, clusterView, kubeProxyPayload, finishNetfilter, installIptables, pluginContext, sandboxId, sandboxName, podKey, routerDevFor, EXTERNAL_HOSTS, UPLINK_ROUTER, UPLINK_INTERNET } from "./cluster-dataplane.js";
export { flannelRules, calicoRules, awsSnatRules, mergeSave } from "./masquerade.js";
export { nodeView, nodeText, generationText, nsView, type NodeView, type NsView } from "./topology.js";

export const BUILDERS: Partial<Record<GenNumber, (cluster: Cluster, opts?: BuildOptions) => BuiltGeneration>> = {
  1: buildGen1,
  2: buildGen2,
  3: buildGen3,
};

export function buildGeneration(gen: GenNumber, cluster: Cluster, opts: BuildOptions = {}): BuiltGeneration {
  const b = BUILDERS[gen];
  if (b === undefined) throw new Error(`generation ${gen} has no builder yet`);
  return b(cluster, opts);
}
