// Where a compare connection goes: the address and port the client sends to, and every namespace that may receive
// it (a Service's ready backends, the named pod, a pod by its IP, or the internet namespace for anything else).
import type { BuiltGeneration, PodPlane } from "../gens/types.js";
import type { NetNamespace } from "../net/index.js";
import type { Cluster, Service } from "../k8s/types.js";
import { WorkloadError, type Destination, type FlowProtocol } from "./workload.js";

export interface Receiver {
  ns: NetNamespace;
  /** The port it listens on (the Service's target port for a backend). */
  port: number;
  /** The pod key it stands for; null: a host outside the cluster. */
  pod: string | null;
}

export interface Target {
  /** Address and port the client sends to. */
  addr: string;
  port: number;
  receivers: Receiver[];
}

function podByKey(g: BuiltGeneration, key: string | undefined): PodPlane | undefined {
  return key === undefined ? undefined : g.pods.find((x) => x.key === key);
}

/** The Service's backends for one of its ports, as the EndpointSlices name them (ICMP: every backend, port 0). */
function serviceTarget(g: BuiltGeneration, svc: Service, port: number, protocol: FlowProtocol, at: string): Target {
  const c: Cluster = g.cluster;
  const ns = svc.metadata.namespace;
  const name = svc.metadata.name;
  const receivers: Receiver[] = [];
  const sp = protocol === "ICMP" ? null : svc.ports.find((x) => x.port === port && x.protocol === protocol);
  if (protocol !== "ICMP" && sp === undefined) throw new WorkloadError(`Service ${ns}/${name} has no ${protocol} port ${port}`, at);
  const seen = new Set<string>();
  for (const sl of c.endpointSlices) {
    if (sl.metadata.namespace !== ns || sl.serviceName !== name) continue;
    const ep = sp === null ? { port: 0 } : sl.ports.find((x) => x.name === sp!.name && x.protocol === sp!.protocol);
    if (ep === undefined) continue;
    for (const e of sl.endpoints) {
      if (e.targetRef === null) {
        // An endpoint that is no pod (the apiserver's, on its node's address): the node that holds it receives.
        const n = g.nodes.find((x) => e.addresses.includes(x.ip));
        if (n !== undefined && !seen.has(n.name)) {
          seen.add(n.name);
          receivers.push({ ns: n.ns, port: ep.port, pod: null });
        }
        continue;
      }
      const p = podByKey(g, e.targetRef.replace(/^Pod /, ""));
      if (p === undefined || seen.has(p.key)) continue;
      seen.add(p.key);
      receivers.push({ ns: p.ns, port: ep.port, pod: p.key });
    }
  }
  return { addr: svc.clusterIP, port, receivers };
}

/** An address: a Service's ClusterIP (its backends receive), a pod's IP, or a host on the internet. */
export function targetForAddress(g: BuiltGeneration, addr: string, port: number, protocol: FlowProtocol, at: string): Target {
  const svc = g.cluster.services.find((s) => s.clusterIP === addr);
  if (svc !== undefined && (protocol === "ICMP" || svc.ports.some((x) => x.port === port && x.protocol === protocol))) return serviceTarget(g, svc, port, protocol, at);
  const pod = g.pods.find((p) => p.ip === addr && !p.hostNetwork);
  if (pod !== undefined) return { addr, port, receivers: [{ ns: pod.ns, port, pod: pod.key }] };
  return { addr, port, receivers: [{ ns: g.external.ns, port, pod: null }] };
}

/** A destination other than a DNS name (names are resolved first, see dns.ts). */
export function resolveTarget(g: BuiltGeneration, d: Destination, protocol: FlowProtocol, at: string): Target {
  if (d.kind === "pod") {
    const p = podByKey(g, `${d.namespace}/${d.name}`);
    if (p === undefined) throw new WorkloadError(`no running pod ${d.namespace}/${d.name}`, at);
    return { addr: p.ip, port: d.port, receivers: [{ ns: p.ns, port: d.port, pod: p.key }] };
  }
  if (d.kind === "service") {
    const svc = g.cluster.services.find((s) => s.metadata.namespace === d.namespace && s.metadata.name === d.name);
    if (svc === undefined) throw new WorkloadError(`no Service ${d.namespace}/${d.name}`, at);
    if (svc.clusterIP === "None" || svc.clusterIP === "") throw new WorkloadError(`Service ${d.namespace}/${d.name} has no ClusterIP (${svc.clusterIP === "" ? "ExternalName" : "headless"}): use its DNS name or a pod`, at);
    return serviceTarget(g, svc, d.port, protocol, at);
  }
  if (d.kind === "ip") return targetForAddress(g, d.addr, d.port, protocol, at);
  throw new WorkloadError(`"${d.name}" is a DNS name: resolve it first`, at);
}
