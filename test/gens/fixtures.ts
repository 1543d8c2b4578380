// Clusters for the generation tests: the demo cluster (3 nodes, 2 subnets) and a 3-node cluster on one subnet.
import { loadCluster } from "../../src/k8s/cluster.js";

const node = (name: string, ip: string, type = "m5.large", zone = "us-east-1a") => `apiVersion: v1
kind: Node
metadata:
  name: ${name}
  labels: {topology.kubernetes.io/zone: ${zone}, node.kubernetes.io/instance-type: ${type}}
status:
  addresses: [{type: InternalIP, address: ${ip}}]
`;

/** a, b, c on 192.168.1.0/24; web x3 spread over them, one hostNetwork pod on a, a ClusterIP Service. */
export const THREE_NODES_YAML = [
  node("a", "192.168.1.10"),
  node("b", "192.168.1.11"),
  node("c", "192.168.1.12", "t3.small", "us-east-1b"),
  `apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: nginx, ports: [{containerPort: 80}]}]
`,
  `apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  selector: {app: web}
  ports: [{port: 80}]
`,
  `apiVersion: v1
kind: Pod
metadata: {name: agent, namespace: kube-system}
spec:
  nodeName: a
  hostNetwork: true
  containers: [{name: agent, image: agent}]
`,
].join("---\n");

export function threeNodes() {
  return loadCluster(THREE_NODES_YAML, "three-nodes.yaml");
}

/** One node of `type` with `host` hostNetwork pods and `replicas` pods of a Deployment pinned to it. */
export function packedNode(type: string, host: number, replicas: number) {
  const docs = [node("n1", "10.0.1.10", type)];
  for (let i = 0; i < host; i++) {
    docs.push(`apiVersion: v1
kind: Pod
metadata: {name: host-${i}, namespace: kube-system}
spec:
  nodeName: n1
  hostNetwork: true
  containers: [{name: c, image: c}]
`);
  }
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
  return loadCluster(docs.join("---\n"), "packed.yaml");
}
