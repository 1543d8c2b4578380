// Small clusters the scenarios build their dataplanes from (Kubernetes manifests, as a user would write them).
import { loadCluster } from "../../k8s/cluster.js";
import type { Cluster } from "../../k8s/types.js";

export function nodeYaml(name: string, ip: string, type = "m5.large", zone = "us-east-1a"): string {
  return `apiVersion: v1
kind: Node
metadata:
  name: ${name}
  labels: {topology.kubernetes.io/zone: ${zone}, node.kubernetes.io/instance-type: ${type}}
status:
  addresses: [{type: InternalIP, address: ${ip}}]
`;
}

function hostPod(name: string, ns: string, node: string, image: string): string {
  return `apiVersion: v1
kind: Pod
metadata: {name: ${name}, namespace: ${ns}}
spec:
  nodeName: ${node}
  hostNetwork: true
  containers: [{name: c, image: ${image}}]
`;
}

/** One node of `type` with `host` hostNetwork pods (the node's DaemonSets) and `replicas` pod-network pods. */
export function packedNode(type: string, host: number, replicas: number): Cluster {
  const docs = [nodeYaml("n1", "10.0.1.10", type)];
  for (let i = 0; i < host; i++) docs.push(hostPod(`ds-${i}`, "kube-system", "n1", "agent"));
  docs.push(`apiVersion: apps/v1
kind: Deployment
metadata: {name: app, namespace: default}
spec:
  replicas: ${replicas}
  selector: {matchLabels: {app: app}}
  template:
    metadata: {labels: {app: app}}
    spec:
      nodeName: n1
      containers: [{name: c, image: c, ports: [{containerPort: 8080}]}]
`);
  return loadCluster(docs.join("---\n"), "scenario-packed-node.yaml");
}

/** Two nodes; two hostNetwork ingress pods (nginx, port 80 in their command line, no hostPort declared) on n1. */
export function hostNetworkPair(): Cluster {
  const docs = [nodeYaml("n1", "10.0.1.10"), nodeYaml("n2", "10.0.1.11"), hostPod("ingress-a", "ingress", "n1", "nginx"), hostPod("ingress-b", "ingress", "n1", "nginx")];
  return loadCluster(docs.join("---\n"), "scenario-hostnetwork.yaml");
}
