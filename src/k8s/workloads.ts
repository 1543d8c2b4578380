// Workload controllers and a small scheduler: Deployments, ReplicaSets and StatefulSets become Pods named as
// their controllers name them, and Pods without spec.nodeName land on a node chosen deterministically.
import { fnv32a, randomSuffix, Rng, safeEncodeString } from "./rand.js";
import type { Workload } from "./parse-workload.js";
import type { Node, Pod } from "./types.js";

/** Deployment controller: pod-template-hash = SafeEncodeString(fnv32a(template)), as ComputeHash does. */
export function podTemplateHash(w: Workload): string {
  return safeEncodeString(String(fnv32a(w.templateJson)));
}

/** Expand one workload into Pods (nodeName possibly empty, podIP empty unless hostNetwork). */
export function expandWorkload(w: Workload, seed: number): Pod[] {
  // Per-workload random source: adding a workload never renames another's pods.
  const rng = new Rng((seed ^ fnv32a(`${w.kind}/${w.metadata.namespace}/${w.metadata.name}`)) >>> 0);
  const pods: Pod[] = [];
  const hash = w.kind === "Deployment" ? podTemplateHash(w) : "";
  const used = new Set<string>();
  for (let i = 0; i < w.replicas; i++) {
    let name: string;
    const labels: Record<string, string> = { ...w.templateLabels };
    if (w.kind === "StatefulSet") {
      name = `${w.metadata.name}-${i}`;
      labels["statefulset.kubernetes.io/pod-name"] = name;
      labels["apps.kubernetes.io/pod-index"] = String(i);
    } else {
      // The ReplicaSet is named <deployment>-<hash>; its pods get generateName "<rs>-" + 5 random characters.
      const rsName = w.kind === "Deployment" ? `${w.metadata.name}-${hash}` : w.metadata.name;
      if (w.kind === "Deployment") labels["pod-template-hash"] = hash;
      do name = `${rsName.slice(0, 57)}-${randomSuffix(rng)}`;
      while (used.has(name));
    }
    used.add(name);
    pods.push({
      kind: "Pod",
      metadata: { name, namespace: w.metadata.namespace, labels, annotations: {}, origin: w.metadata.origin },
      nodeName: w.template.nodeName,
      hostNetwork: w.template.hostNetwork,
      containers: w.template.containers,
      podIP: "",
      phase: "Running",
      ready: true,
      terminating: false,
      ownerRef: `${w.kind}/${w.metadata.name}`,
    });
  }
  return pods;
}

/**
 * A deterministic stand-in for kube-scheduler's default spreading: each unscheduled pod goes to the schedulable
 * node with the fewest pods of the same owner, then the fewest pods overall, then the first in name order.
 * Pods already bound (spec.nodeName) count toward the load but are not moved.
 */
export function schedulePods(pods: Pod[], nodes: Node[]): void {
  const candidates = nodes.filter((n) => !n.unschedulable).sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0));
  const total = new Map<string, number>();
  const byOwner = new Map<string, number>();
  const ownerKey = (p: Pod, node: string) => `${p.metadata.namespace}/${p.ownerRef ?? p.metadata.name}@${node}`;
  for (const p of pods) {
    if (!p.nodeName) continue;
    total.set(p.nodeName, (total.get(p.nodeName) ?? 0) + 1);
    byOwner.set(ownerKey(p, p.nodeName), (byOwner.get(ownerKey(p, p.nodeName)) ?? 0) + 1);
  }
  for (const p of pods) {
    if (p.nodeName) continue;
    let best: Node | null = null;
    let bestScore: [number, number] = [Infinity, Infinity];
    for (const n of candidates) {
      const score: [number, number] = [byOwner.get(ownerKey(p, n.metadata.name)) ?? 0, total.get(n.metadata.name) ?? 0];
      if (score[0] < bestScore[0] || (score[0] === bestScore[0] && score[1] < bestScore[1])) {
        best = n;
        bestScore = score;
      }
    }
    if (!best) continue; // no schedulable node: the pod stays Pending with no IP
    p.nodeName = best.metadata.name;
    total.set(p.nodeName, (total.get(p.nodeName) ?? 0) + 1);
    byOwner.set(ownerKey(p, p.nodeName), (byOwner.get(ownerKey(p, p.nodeName)) ?? 0) + 1);
  }
  for (const p of pods) if (!p.nodeName) p.phase = "Pending";
}
