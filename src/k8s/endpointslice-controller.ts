// The EndpointSlice controller (pkg/controller/endpointslice + endpointslice reconciler in
// k8s.io/endpointslice): for each Service with a selector, the pods it selects become endpoints, grouped by
// their resolved port mapping, at most maxEndpointsPerSlice (default 100) per slice, slices named with
// generateName "<service>-" and labelled kubernetes.io/service-name.
import { fnv32a, randomSuffix, Rng } from "./rand.js";
import type { Endpoint, EndpointPort, EndpointSlice, Node, Pod, Service } from "./types.js";
import { ENDPOINTSLICE_CONTROLLER, LABEL_MANAGED_BY, LABEL_SERVICE_NAME } from "./types.js";

export const MAX_ENDPOINTS_PER_SLICE = 100;

/** podutil.FindPort: a numeric targetPort is used as is; a name is looked up among the containers' ports. */
export function findPort(pod: Pod, targetPort: number | string, protocol: string): number | null {
  if (typeof targetPort === "number") return targetPort;
  for (const c of pod.containers) {
    for (const p of c.ports) if (p.name === targetPort && p.protocol === protocol) return p.containerPort;
  }
  return null;
}

export function selectorMatchesMap(selector: Record<string, string>, labels: Record<string, string>): boolean {
  for (const [k, v] of Object.entries(selector)) if (labels[k] !== v) return false;
  return true;
}

/** endpointutil.ShouldPodBeInEndpoints with includeTerminating=true: needs an IP and must not have finished. */
function podIsEndpoint(pod: Pod): boolean {
  return pod.podIP !== "" && pod.phase !== "Succeeded" && pod.phase !== "Failed";
}

export function podEndpoint(pod: Pod, svc: Service, nodes: Map<string, Node>): Endpoint {
  // Ready is forced true by publishNotReadyAddresses; a terminating pod is never ready unless that is set.
  let ready = svc.publishNotReadyAddresses || pod.ready;
  const serving = pod.ready;
  const terminating = pod.terminating;
  if (terminating && !svc.publishNotReadyAddresses) ready = false;
  return {
    addresses: [pod.podIP],
    conditions: { ready, serving, terminating },
    nodeName: pod.nodeName || null,
    zone: nodes.get(pod.nodeName)?.zone ?? null,
    targetRef: `Pod ${pod.metadata.namespace}/${pod.metadata.name}`,
    hintsZones: [],
  };
}

export interface SliceControllerOptions {
  seed: number;
  maxEndpointsPerSlice?: number;
}

/** Derive the EndpointSlices of one Service (none for ExternalName or selector-less Services). */
export function sliceService(svc: Service, pods: Pod[], nodes: Map<string, Node>, opts: SliceControllerOptions): EndpointSlice[] {
  if (svc.type === "ExternalName" || svc.selector === null) return [];
  const max = opts.maxEndpointsPerSlice ?? MAX_ENDPOINTS_PER_SLICE;
  const selected = pods
    .filter((p) => p.metadata.namespace === svc.metadata.namespace && selectorMatchesMap(svc.selector!, p.metadata.labels) && podIsEndpoint(p))
    .sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0));

  // Group endpoints by their port mapping (a named targetPort may resolve differently per pod).
  const groups = new Map<string, { ports: EndpointPort[]; endpoints: Endpoint[] }>();
  for (const pod of selected) {
    const ports: EndpointPort[] = [];
    for (const sp of svc.ports) {
      const port = findPort(pod, sp.targetPort, sp.protocol);
      if (port === null) continue; // the pod does not expose this named port: not an endpoint for it
      ports.push({ name: sp.name, port, protocol: sp.protocol, appProtocol: sp.appProtocol });
    }
    const key = JSON.stringify(ports);
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { ports, endpoints: [] }));
    g.endpoints.push(podEndpoint(pod, svc, nodes));
  }

  const rng = new Rng((opts.seed ^ fnv32a(`EndpointSlice/${svc.metadata.namespace}/${svc.metadata.name}`)) >>> 0);
  const prefix = `${svc.metadata.name}-`.slice(0, 58);
  const labels: Record<string, string> = { ...svc.metadata.labels, [LABEL_SERVICE_NAME]: svc.metadata.name, [LABEL_MANAGED_BY]: ENDPOINTSLICE_CONTROLLER };
  if (svc.clusterIP === "None") labels["service.kubernetes.io/headless"] = "";
  const used = new Set<string>();
  const make = (ports: EndpointPort[], endpoints: Endpoint[]): EndpointSlice => {
    let name: string;
    do name = prefix + randomSuffix(rng);
    while (used.has(name));
    used.add(name);
    return {
      kind: "EndpointSlice",
      metadata: { name, namespace: svc.metadata.namespace, labels: { ...labels }, annotations: {}, origin: svc.metadata.origin },
      addressType: "IPv4",
      endpoints,
      ports,
      serviceName: svc.metadata.name,
    };
  };

  // trafficDistribution PreferClose (PreferSameZone): every endpoint is hinted for its own zone, but only when
  // every endpoint has a zone; otherwise no hints at all (kube-proxy then uses every endpoint).
  if (svc.trafficDistribution === "PreferClose" || svc.trafficDistribution === "PreferSameZone") {
    const all = [...groups.values()].flatMap((g) => g.endpoints);
    if (all.length > 0 && all.every((e) => e.zone)) for (const e of all) e.hintsZones = [e.zone!];
  }

  const slices: EndpointSlice[] = [];
  for (const g of groups.values()) {
    for (let i = 0; i < g.endpoints.length; i += max) slices.push(make(g.ports, g.endpoints.slice(i, i + max)));
  }
  // A Service that selects nothing still gets one empty placeholder slice, as the reconciler keeps one.
  if (slices.length === 0) slices.push(make([], []));
  return slices;
}
