// Manifests in, a complete Cluster out: parse every document, expand workloads, schedule, allocate node
// podCIDRs, pod IPs, ClusterIPs and node ports, and run the EndpointSlice controller. Everything is seeded.
import { readFileSync } from "node:fs";
import { ManifestError } from "./errors.js";
import { readManifests, type Field, type ManifestDoc } from "./manifest-reader.js";
import { readNamespace, readNode, readPod } from "./parse-core.js";
import { readEndpointSlice, readService } from "./parse-service.js";
import { readWorkload, type Workload } from "./parse-workload.js";
import { readNetworkPolicy } from "./parse-netpol.js";
import { AllocationError, HostLocalIpam, NodePortAllocator, PodCIDRAllocator, ServiceIPAllocator } from "./allocators.js";
import { expandWorkload, schedulePods } from "./workloads.js";
import { sliceService } from "./endpointslice-controller.js";
import { fnv32a, randomSuffix, Rng } from "./rand.js";
import type { Cluster, EndpointSlice, Namespace, NetworkPolicy, Node, Pod, Service } from "./types.js";
import { LABEL_SERVICE_NAME } from "./types.js";

import { parseCidr } from "../packet/addr.js";

export interface ClusterOptions {
  /** Seed for every random choice (names, ClusterIPs, node ports). Default 1. */
  seed?: number;
  /** --cluster-cidr: node podCIDRs are carved from it. Default 10.244.0.0/16. */
  clusterCIDR?: string;
  /** --service-cluster-ip-range. Default 10.96.0.0/12. */
  serviceCIDR?: string;
  /** --service-node-port-range. Default [30000, 32767]. */
  nodePortRange?: [number, number];
  /** --node-cidr-mask-size. Default 24. */
  nodeCIDRMaskSize?: number;
  /** Create default/kubernetes (first ClusterIP, https 443 -> apiserver:6443) as kube-apiserver does. Default true. */
  kubernetesService?: boolean;
  maxEndpointsPerSlice?: number;
}

const BUILTIN_NAMESPACES = ["default", "kube-system", "kube-public", "kube-node-lease"];
/** Kinds that are valid in a manifest but have no dataplane meaning: accepted and ignored. */
const IGNORED_KINDS = new Set(["ConfigMap", "Secret", "ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding", "DaemonSet", "Job", "CronJob", "Ingress", "IngressClass", "PersistentVolumeClaim", "PersistentVolume", "StorageClass", "HorizontalPodAutoscaler", "PodDisruptionBudget", "CustomResourceDefinition", "Endpoints", "LimitRange", "ResourceQuota", "PriorityClass"]);

interface Parsed {
  namespaces: Namespace[];
  nodes: Node[];
  pods: Pod[];
  workloads: Workload[];
  services: Service[];
  slices: EndpointSlice[];
  policies: NetworkPolicy[];
}

function dispatch(root: Field, out: Parsed, seen: Map<string, string>): void {
  const kind = root.get("kind").str({ required: true });
  root.get("apiVersion").str({ required: true });
  if (kind === "List") {
    for (const item of root.get("items").list()) dispatch(item, out, seen);
    return;
  }
  let key: string;
  switch (kind) {
    case "Namespace": {
      const o = readNamespace(root);
      out.namespaces.push(o);
      key = `Namespace/${o.metadata.name}`;
      break;
    }
    case "Node": {
      const o = readNode(root);
      if (!o.internalIP) throw root.get("status").get("addresses").error("Required value: a Node needs an InternalIP address");
      out.nodes.push(o);
      key = `Node/${o.metadata.name}`;
      break;
    }
    case "Pod": {
      const o = readPod(root);
      out.pods.push(o);
      key = `Pod/${o.metadata.namespace}/${o.metadata.name}`;
      break;
    }
    case "Deployment":
    case "ReplicaSet":
    case "StatefulSet": {
      const o = readWorkload(root, kind);
      out.workloads.push(o);
      key = `${kind}/${o.metadata.namespace}/${o.metadata.name}`;
      break;
    }
    case "Service": {
      const o = readService(root);
      out.services.push(o);
      key = `Service/${o.metadata.namespace}/${o.metadata.name}`;
      break;
    }
    case "EndpointSlice": {
      const o = readEndpointSlice(root);
      out.slices.push(o);
      key = `EndpointSlice/${o.metadata.namespace}/${o.metadata.name}/${out.slices.length}`;
      break;
    }
    case "NetworkPolicy": {
      const o = readNetworkPolicy(root);
      out.policies.push(o);
      key = `NetworkPolicy/${o.metadata.namespace}/${o.metadata.name}`;
      break;
    }
    default:
      if (IGNORED_KINDS.has(kind)) return;
      throw root.get("kind").error(`Unsupported value: "${kind}": tcbox models Namespace, Node, Pod, Deployment, ReplicaSet, StatefulSet, Service, EndpointSlice, NetworkPolicy`);
  }
  const prev = seen.get(key);
  if (prev !== undefined) throw root.get("metadata").get("name").error(`Duplicate value: already defined in ${prev}`);
  seen.set(key, `document ${root.doc.index}`);
}

/** Parse manifest text (multi-document YAML) into a complete, allocated Cluster. */
export function loadCluster(text: string, file: string, opts: ClusterOptions = {}): Cluster {
  const docs: ManifestDoc[] = readManifests(text, file);
  const out: Parsed = { namespaces: [], nodes: [], pods: [], workloads: [], services: [], slices: [], policies: [] };
  const seen = new Map<string, string>();
  for (const d of docs) dispatch(d.root, out, seen);
  return buildCluster(out, file, opts);
}

export function loadClusterFile(path: string, opts: ClusterOptions = {}): Cluster {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new ManifestError(`cannot read manifests: ${(e as Error).message}`, path);
  }
  return loadCluster(text, path, opts);
}

function originWhere(o: { metadata: { origin?: { file: string; document: number }; namespace: string; name: string } }, kind: string, field: string): string {
  const og = o.metadata.origin;
  const obj = o.metadata.namespace ? `${kind} ${o.metadata.namespace}/${o.metadata.name}` : `${kind} ${o.metadata.name}`;
  return og ? `${og.file}: document ${og.document} (${obj}), ${field}` : `${obj}, ${field}`;
}

function buildCluster(p: Parsed, file: string, opts: ClusterOptions): Cluster {
  const seed = opts.seed ?? 1;
  const clusterCIDR = opts.clusterCIDR ?? "10.244.0.0/16";
  const serviceCIDR = opts.serviceCIDR ?? "10.96.0.0/12";
  parseCidr(clusterCIDR);
  parseCidr(serviceCIDR);

  // Namespaces: the built-in ones plus any an object refers to (as if `kubectl create namespace` ran first).
  const namespaces = new Map<string, Namespace>();
  for (const n of BUILTIN_NAMESPACES) namespaces.set(n, { kind: "Namespace", metadata: { name: n, namespace: "", labels: { "kubernetes.io/metadata.name": n }, annotations: {} } });
  for (const n of p.namespaces) {
    n.metadata.labels["kubernetes.io/metadata.name"] = n.metadata.name;
    namespaces.set(n.metadata.name, n);
  }
  const ensureNs = (ns: string) => {
    if (!namespaces.has(ns)) namespaces.set(ns, { kind: "Namespace", metadata: { name: ns, namespace: "", labels: { "kubernetes.io/metadata.name": ns }, annotations: {} } });
  };

  // Nodes: unique InternalIPs; podCIDRs allocated in manifest order after the given ones are reserved.
  const nodes = new Map<string, Node>();
  const cidrs = new PodCIDRAllocator(clusterCIDR, opts.nodeCIDRMaskSize ?? 24);
  const ipOwner = new Map<string, string>();
  for (const n of p.nodes) {
    for (const ip of n.internalIPs) {
      const other = ipOwner.get(ip);
      if (other) throw new ManifestError(`Duplicate value: "${ip}" is also the InternalIP of node ${other}`, originWhere(n, "Node", "status.addresses"));
      ipOwner.set(ip, n.metadata.name);
    }
    if (n.podCIDR) cidrs.occupy(n.podCIDR);
    nodes.set(n.metadata.name, n);
  }
  for (const n of p.nodes) if (!n.podCIDR) n.podCIDR = cidrs.next();

  // Pods: bare pods first, then workload replicas; schedule; then IPs (given ones reserved first).
  const pods: Pod[] = [...p.pods];
  for (const w of p.workloads) pods.push(...expandWorkload(w, seed));
  const podKeys = new Set<string>();
  for (const pod of pods) {
    const key = `${pod.metadata.namespace}/${pod.metadata.name}`;
    if (podKeys.has(key)) throw new ManifestError(`Duplicate value: pod ${key} already exists`, originWhere(pod, "Pod", "metadata.name"));
    podKeys.add(key);
    ensureNs(pod.metadata.namespace);
    if (pod.nodeName && !nodes.has(pod.nodeName)) throw new ManifestError(`Not found: node "${pod.nodeName}"`, originWhere(pod, "Pod", "spec.nodeName"));
  }
  schedulePods(pods, [...nodes.values()]);
  const ipam = new Map<string, HostLocalIpam>();
  for (const n of nodes.values()) ipam.set(n.metadata.name, new HostLocalIpam(n.podCIDR));
  for (const pod of pods) if (pod.podIP && !pod.hostNetwork && pod.nodeName) ipam.get(pod.nodeName)!.occupy(pod.podIP);
  for (const pod of pods) {
    if (!pod.nodeName) continue;
    const node = nodes.get(pod.nodeName)!;
    if (pod.hostNetwork) pod.podIP ||= node.internalIP;
    else if (!pod.podIP) {
      try {
        pod.podIP = ipam.get(pod.nodeName)!.next();
      } catch (e) {
        if (e instanceof AllocationError) throw new ManifestError(e.message, originWhere(pod, "Pod", "status.podIP"));
        throw e;
      }
    }
  }

  // Services: the kubernetes Service takes the first IP; then requested IPs/ports; then dynamic ones.
  const rng = new Rng((seed ^ fnv32a("allocators")) >>> 0);
  const svcIPs = new ServiceIPAllocator(serviceCIDR, rng);
  const [npMin, npMax] = opts.nodePortRange ?? [30000, 32767];
  const nodePorts = new NodePortAllocator(npMin, npMax, rng);
  const services: Service[] = [];
  const slices: EndpointSlice[] = [];
  const wantKubernetes = (opts.kubernetesService ?? true) && !p.services.some((s) => s.metadata.namespace === "default" && s.metadata.name === "kubernetes");
  if (wantKubernetes) {
    const k = kubernetesService(svcIPs.kubernetesServiceIP);
    svcIPs.allocate(k.clusterIP);
    services.push(k);
    const apiservers = [...nodes.values()].filter((n) => "node-role.kubernetes.io/control-plane" in n.metadata.labels);
    const eps = (apiservers.length > 0 ? apiservers : [...nodes.values()].slice(0, 1)).map((n) => n.internalIP);
    slices.push(kubernetesSlice(eps));
  }
  for (const s of p.services) {
    ensureNs(s.metadata.namespace);
    const guard = (field: string, fn: () => void) => {
      try {
        fn();
      } catch (e) {
        if (e instanceof AllocationError) throw new ManifestError(e.message, originWhere(s, "Service", field));
        throw e;
      }
    };
    if (s.clusterIP && s.clusterIP !== "None") guard("spec.clusterIP", () => svcIPs.allocate(s.clusterIP));
    s.ports.forEach((sp, i) => {
      if (sp.nodePort) guard(`spec.ports[${i}].nodePort`, () => nodePorts.allocate(sp.nodePort));
    });
    if (s.healthCheckNodePort) guard("spec.healthCheckNodePort", () => nodePorts.allocate(s.healthCheckNodePort));
    services.push(s);
  }
  for (const s of p.services) {
    if (s.type === "ExternalName") continue;
    if (!s.clusterIP) {
      s.clusterIP = svcIPs.next();
      s.clusterIPs = [s.clusterIP];
    }
    if (s.type === "NodePort" || s.type === "LoadBalancer") for (const sp of s.ports) if (!sp.nodePort) sp.nodePort = nodePorts.next();
    if (s.type === "LoadBalancer" && s.externalTrafficPolicy === "Local" && !s.healthCheckNodePort) s.healthCheckNodePort = nodePorts.next();
  }

  // EndpointSlices: given ones (generateName completed), then the controller's for every selector Service.
  for (const sl of p.slices) {
    ensureNs(sl.metadata.namespace);
    if (sl.metadata.name.endsWith("-") || !sl.metadata.name) {
      const r = new Rng((seed ^ fnv32a(`given/${sl.metadata.namespace}/${sl.metadata.name}/${slices.length}`)) >>> 0);
      sl.metadata.name = sl.metadata.name.slice(0, 58) + randomSuffix(r);
    }
    slices.push(sl);
  }
  for (const s of services) {
    if (s.metadata.name === "kubernetes" && s.metadata.namespace === "default" && wantKubernetes) continue;
    slices.push(...sliceService(s, pods, nodes, { seed, maxEndpointsPerSlice: opts.maxEndpointsPerSlice }));
  }
  for (const np of p.policies) ensureNs(np.metadata.namespace);

  return {
    namespaces: [...namespaces.values()],
    nodes: [...nodes.values()],
    pods,
    services,
    endpointSlices: slices,
    networkPolicies: p.policies,
    clusterCIDR,
    serviceCIDR,
    seed,
  };
}

function kubernetesService(ip: string): Service {
  return {
    kind: "Service",
    metadata: { name: "kubernetes", namespace: "default", labels: { component: "apiserver", provider: "kubernetes" }, annotations: {} },
    type: "ClusterIP",
    selector: null,
    ports: [{ name: "https", protocol: "TCP", port: 443, targetPort: 6443, nodePort: 0, appProtocol: null }],
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
  };
}

/** kube-apiserver's endpoint reconciler keeps a slice named "kubernetes" with the apiserver addresses. */
function kubernetesSlice(ips: string[]): EndpointSlice {
  return {
    kind: "EndpointSlice",
    metadata: { name: "kubernetes", namespace: "default", labels: { [LABEL_SERVICE_NAME]: "kubernetes" }, annotations: {} },
    addressType: "IPv4",
    endpoints: ips.map((ip) => ({ addresses: [ip], conditions: { ready: true, serving: true, terminating: false }, nodeName: null, zone: null, targetRef: null, hintsZones: [] })),
    ports: [{ name: "https", port: 6443, protocol: "TCP", appProtocol: null }],
    serviceName: "kubernetes",
  };
}

