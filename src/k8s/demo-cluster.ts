// The built-in demo cluster every command uses when no manifests are given: 3 nodes in 2 zones (m5.large),
// CoreDNS as kube-system/kube-dns (2 replicas, UDP+TCP 53), a shop with a NodePort frontend, a LoadBalancer with
// externalTrafficPolicy Local, a ClusterIP backend with a named targetPort, a headless StatefulSet, a hostNetwork
// pod, and one NetworkPolicy. Kept as a string so `dist/` carries it.
import { loadCluster, type ClusterOptions } from "./cluster.js";
import type { Cluster } from "./types.js";

export const DEMO_CLUSTER_FILE = "demo-cluster.yaml";

export const DEMO_CLUSTER_YAML = `# tcbox demo cluster: 3 nodes in 2 zones, a few Services, one NetworkPolicy.
apiVersion: v1
kind: Node
metadata:
  name: node-1
  labels:
    kubernetes.io/hostname: node-1
    node-role.kubernetes.io/control-plane: ""
    topology.kubernetes.io/region: us-east-1
    topology.kubernetes.io/zone: us-east-1a
    node.kubernetes.io/instance-type: m5.large
status:
  addresses:
    - {type: InternalIP, address: 10.0.1.10}
    - {type: Hostname, address: node-1}
---
apiVersion: v1
kind: Node
metadata:
  name: node-2
  labels:
    kubernetes.io/hostname: node-2
    topology.kubernetes.io/region: us-east-1
    topology.kubernetes.io/zone: us-east-1a
    node.kubernetes.io/instance-type: m5.large
status:
  addresses:
    - {type: InternalIP, address: 10.0.1.11}
    - {type: Hostname, address: node-2}
---
apiVersion: v1
kind: Node
metadata:
  name: node-3
  labels:
    kubernetes.io/hostname: node-3
    topology.kubernetes.io/region: us-east-1
    topology.kubernetes.io/zone: us-east-1b
    node.kubernetes.io/instance-type: m5.large
status:
  addresses:
    - {type: InternalIP, address: 10.0.2.10}
    - {type: Hostname, address: node-3}
---
apiVersion: v1
kind: Namespace
metadata:
  name: shop
  labels: {team: shop}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: coredns, namespace: kube-system, labels: {k8s-app: kube-dns}}
spec:
  replicas: 2
  selector: {matchLabels: {k8s-app: kube-dns}}
  template:
    metadata: {labels: {k8s-app: kube-dns}}
    spec:
      containers:
        - name: coredns
          image: registry.k8s.io/coredns/coredns:v1.11.1
          ports:
            - {name: dns, containerPort: 53, protocol: UDP}
            - {name: dns-tcp, containerPort: 53, protocol: TCP}
            - {name: metrics, containerPort: 9153, protocol: TCP}
---
apiVersion: v1
kind: Service
metadata: {name: kube-dns, namespace: kube-system, labels: {k8s-app: kube-dns}}
spec:
  selector: {k8s-app: kube-dns}
  clusterIP: 10.96.0.10
  ports:
    - {name: dns, port: 53, protocol: UDP, targetPort: 53}
    - {name: dns-tcp, port: 53, protocol: TCP, targetPort: 53}
    - {name: metrics, port: 9153, protocol: TCP, targetPort: 9153}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: frontend, namespace: shop}
spec:
  replicas: 3
  selector: {matchLabels: {app: frontend}}
  template:
    metadata: {labels: {app: frontend, tier: web}}
    spec:
      containers:
        - name: web
          image: nginx:1.27
          ports: [{name: http, containerPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: frontend, namespace: shop}
spec:
  type: NodePort
  selector: {app: frontend}
  ports: [{name: http, port: 80, targetPort: http, nodePort: 30080}]
---
apiVersion: v1
kind: Service
metadata: {name: frontend-lb, namespace: shop}
spec:
  type: LoadBalancer
  externalTrafficPolicy: Local
  selector: {app: frontend}
  ports: [{name: https, port: 443, targetPort: http}]
  loadBalancerSourceRanges: [198.51.100.0/24]
status:
  loadBalancer:
    ingress: [{ip: 203.0.113.10}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: backend, namespace: shop}
spec:
  replicas: 2
  selector: {matchLabels: {app: backend}}
  template:
    metadata: {labels: {app: backend, tier: api}}
    spec:
      containers:
        - name: api
          image: ghcr.io/example/backend:2.1
          ports: [{name: api, containerPort: 9090}]
---
apiVersion: v1
kind: Service
metadata: {name: backend, namespace: shop}
spec:
  selector: {app: backend}
  sessionAffinity: ClientIP
  ports: [{name: api, port: 8080, targetPort: api}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: shop}
spec:
  replicas: 2
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers:
        - name: postgres
          image: postgres:16
          ports: [{name: postgres, containerPort: 5432}]
---
apiVersion: v1
kind: Service
metadata: {name: db, namespace: shop}
spec:
  clusterIP: None
  selector: {app: db}
  ports: [{name: postgres, port: 5432}]
---
apiVersion: v1
kind: Pod
metadata: {name: node-exporter-node-1, namespace: kube-system, labels: {app: node-exporter}}
spec:
  nodeName: node-1
  hostNetwork: true
  containers:
    - name: node-exporter
      image: quay.io/prometheus/node-exporter:v1.8.0
      ports: [{name: metrics, containerPort: 9100}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: backend-allow-frontend, namespace: shop}
spec:
  podSelector: {matchLabels: {app: backend}}
  policyTypes: [Ingress]
  ingress:
    - from: [{podSelector: {matchLabels: {app: frontend}}}]
      ports: [{protocol: TCP, port: api}]
`;

/** The demo cluster, allocated (seed 1 unless given). */
export function loadDemoCluster(opts: ClusterOptions = {}): Cluster {
  return loadCluster(DEMO_CLUSTER_YAML, DEMO_CLUSTER_FILE, opts);
}
