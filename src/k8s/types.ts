// The cluster as typed objects: what the manifests said after validation and defaulting, plus what the control
// plane filled in (allocated IPs and ports, expanded workloads, derived EndpointSlices). Field names follow the
// Kubernetes API so a reader can map each one to its `kubectl explain` entry. Setup and printing only.

export type Protocol = "TCP" | "UDP" | "SCTP";
export type Labels = Record<string, string>;

/** Where an object came from: file and 1-based document index, for errors raised after parsing. */
export interface Origin {
  file: string;
  document: number;
}

export interface ObjectMeta {
  name: string;
  namespace: string; // "" for cluster-scoped objects (Namespace, Node)
  labels: Labels;
  annotations: Labels;
  origin?: Origin;
}

export interface Namespace {
  kind: "Namespace";
  metadata: ObjectMeta;
}

export const LABEL_ZONE = "topology.kubernetes.io/zone";
export const LABEL_REGION = "topology.kubernetes.io/region";
export const LABEL_INSTANCE_TYPE = "node.kubernetes.io/instance-type";
export const LABEL_HOSTNAME = "kubernetes.io/hostname";
export const LABEL_SERVICE_NAME = "kubernetes.io/service-name";
export const LABEL_MANAGED_BY = "endpointslice.kubernetes.io/managed-by";
export const ENDPOINTSLICE_CONTROLLER = "endpointslice-controller.k8s.io";

export interface Node {
  kind: "Node";
  metadata: ObjectMeta;
  /** status.addresses type InternalIP, first one (IPv4). */
  internalIP: string;
  /** Every InternalIP the node reported. */
  internalIPs: string[];
  externalIP: string | null;
  /** spec.podCIDR: given, or allocated from the cluster CIDR (node-ipam-controller). */
  podCIDR: string;
  zone: string | null;
  instanceType: string | null;
  unschedulable: boolean;
}

export interface ContainerPort {
  name: string | null;
  containerPort: number;
  protocol: Protocol;
  hostPort: number | null;
}

export interface Container {
  name: string;
  image: string;
  ports: ContainerPort[];
}

export interface Pod {
  kind: "Pod";
  metadata: ObjectMeta;
  nodeName: string;
  hostNetwork: boolean;
  containers: Container[];
  /** status.podIP: given, the node's IP for hostNetwork pods, or allocated from the node's podCIDR. */
  podIP: string;
  phase: "Pending" | "Running" | "Succeeded" | "Failed" | "Unknown";
  /** status.conditions[type=Ready] (defaults to true for a Running pod). */
  ready: boolean;
  /** metadata.deletionTimestamp is set. */
  terminating: boolean;
  /** The workload that created it ("Deployment/web"), or null for a bare Pod. */
  ownerRef: string | null;
}

export type ServiceType = "ClusterIP" | "NodePort" | "LoadBalancer" | "ExternalName";

export interface ServicePort {
  name: string; // "" allowed only when the Service has a single port
  protocol: Protocol;
  port: number;
  /** A number, or the name of a container port. Defaults to `port`. */
  targetPort: number | string;
  /** 0 when not a NodePort/LoadBalancer service. */
  nodePort: number;
  appProtocol: string | null;
}

export interface Service {
  kind: "Service";
  metadata: ObjectMeta;
  type: ServiceType;
  /** null: no selector (endpoints managed by hand). */
  selector: Labels | null;
  ports: ServicePort[];
  /** "None" for a headless service, "" for ExternalName. */
  clusterIP: string;
  clusterIPs: string[];
  externalIPs: string[];
  externalName: string | null;
  loadBalancerIngress: string[];
  loadBalancerSourceRanges: string[];
  externalTrafficPolicy: "Cluster" | "Local";
  internalTrafficPolicy: "Cluster" | "Local";
  /** 0 unless type LoadBalancer with externalTrafficPolicy Local (allocated like a NodePort when not given). */
  healthCheckNodePort: number;
  sessionAffinity: "None" | "ClientIP";
  /** sessionAffinityConfig.clientIP.timeoutSeconds, default 10800. */
  sessionAffinityTimeoutSeconds: number;
  publishNotReadyAddresses: boolean;
  /** spec.trafficDistribution: "PreferClose"/"PreferSameZone" make the EndpointSlice controller add zone hints. */
  trafficDistribution: string | null;
  /** status.loadBalancer.ingress IPs with ipMode Proxy: kube-proxy does not capture them (KEP-1860). */
  loadBalancerProxyIPs: string[];
}

export interface EndpointConditions {
  ready: boolean;
  serving: boolean;
  terminating: boolean;
}

export interface Endpoint {
  addresses: string[];
  conditions: EndpointConditions;
  nodeName: string | null;
  zone: string | null;
  /** "Pod ns/name" when derived from a pod. */
  targetRef: string | null;
  hintsZones: string[];
}

export interface EndpointPort {
  name: string;
  port: number;
  protocol: Protocol;
  appProtocol: string | null;
}

export interface EndpointSlice {
  kind: "EndpointSlice";
  metadata: ObjectMeta;
  addressType: "IPv4" | "IPv6" | "FQDN";
  endpoints: Endpoint[];
  ports: EndpointPort[];
  /** Value of the kubernetes.io/service-name label. */
  serviceName: string;
}

export interface LabelSelectorRequirement {
  key: string;
  operator: "In" | "NotIn" | "Exists" | "DoesNotExist";
  values: string[];
}

export interface LabelSelector {
  matchLabels: Labels;
  matchExpressions: LabelSelectorRequirement[];
}

export interface NetworkPolicyPort {
  protocol: Protocol;
  /** null: all ports. A name refers to a named container port. */
  port: number | string | null;
  endPort: number | null;
}

export interface NetworkPolicyPeer {
  podSelector: LabelSelector | null;
  namespaceSelector: LabelSelector | null;
  ipBlock: { cidr: string; except: string[] } | null;
}

export interface NetworkPolicyRule {
  ports: NetworkPolicyPort[];
  /** from (ingress) or to (egress); empty = all peers. */
  peers: NetworkPolicyPeer[];
}

export interface NetworkPolicy {
  kind: "NetworkPolicy";
  metadata: ObjectMeta;
  podSelector: LabelSelector;
  policyTypes: ("Ingress" | "Egress")[];
  ingress: NetworkPolicyRule[];
  egress: NetworkPolicyRule[];
}

export interface Cluster {
  namespaces: Namespace[];
  nodes: Node[];
  pods: Pod[];
  services: Service[];
  endpointSlices: EndpointSlice[];
  networkPolicies: NetworkPolicy[];
  /** --cluster-cidr: where node podCIDRs come from. */
  clusterCIDR: string;
  /** --service-cluster-ip-range. */
  serviceCIDR: string;
  seed: number;
}
