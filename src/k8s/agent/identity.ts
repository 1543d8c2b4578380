// Security identities (pkg/identity): a label set -> a numeric identity shared by every endpoint with the same
// security-relevant labels; reserved identities for the host, the world and the other fixed roles. Cluster-
// local identities start at 256 (MinimalNumericIdentity) and are allocated in order, reused for equal sets.
import type { Labels } from "../types.js";

/** pkg/identity/numericidentity.go. */
export const RESERVED_IDENTITIES = {
  unknown: 0,
  host: 1,
  world: 2,
  unmanaged: 3,
  health: 4,
  init: 5,
  "remote-node": 6,
  "kube-apiserver": 7,
  ingress: 8,
} as const;
export type ReservedIdentity = keyof typeof RESERVED_IDENTITIES;
export const MINIMAL_NUMERIC_IDENTITY = 256;

/** The canonical form of a label set: "k8s:key=value" sorted, joined by ";" (Cilium's sorted label string). */
export function labelKey(labels: Labels, namespace?: string): string {
  const all: string[] = Object.entries(labels).map(([k, v]) => `k8s:${k}=${v}`);
  if (namespace !== undefined) all.push(`k8s:io.kubernetes.pod.namespace=${namespace}`);
  return all.sort().join(";");
}

export class IdentityAllocator {
  private readonly byKey = new Map<string, number>();
  private readonly byId = new Map<number, string>();
  private next = MINIMAL_NUMERIC_IDENTITY;

  /** The identity of a pod's labels in its namespace (allocated on first use). */
  allocate(labels: Labels, namespace?: string): number {
    const key = labelKey(labels, namespace);
    let id = this.byKey.get(key);
    if (id === undefined) {
      id = this.next++;
      this.byKey.set(key, id);
      this.byId.set(id, key);
    }
    return id;
  }

  reserved(name: ReservedIdentity): number {
    return RESERVED_IDENTITIES[name];
  }

  /** The label string of an identity ("reserved:world" for reserved ones), for printing flows. */
  labels(id: number): string | undefined {
    for (const [name, n] of Object.entries(RESERVED_IDENTITIES)) if (n === id) return `reserved:${name}`;
    return this.byId.get(id);
  }
}
