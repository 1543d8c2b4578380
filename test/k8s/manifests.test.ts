// Manifest parsing: what kube-apiserver would reject is rejected with file, document, object and field path.
import { describe, expect, it } from "vitest";
import { loadCluster } from "../../src/k8s/cluster.js";
import { ManifestError } from "../../src/k8s/errors.js";

const svc = (spec: string, meta = "{name: web, namespace: default}") => `apiVersion: v1\nkind: Service\nmetadata: ${meta}\nspec:\n${spec}`;
const NODE = `apiVersion: v1\nkind: Node\nmetadata: {name: n1}\nstatus: {addresses: [{type: InternalIP, address: 192.168.0.2}]}\n---\n`;

function errorOf(text: string): ManifestError {
  try {
    loadCluster(text, "cluster.yaml");
  } catch (e) {
    if (e instanceof ManifestError) return e;
    throw e;
  }
  throw new Error("expected a ManifestError");
}

describe("manifest errors name file, document, object and field", () => {
  const cases: { name: string; text: string; where: string; message: string; line?: number }[] = [
    {
      name: "port out of range",
      text: NODE + NODE.replace(/n1/g, "n2").replace("0.2", "0.3") + svc("  ports: [{name: http, port: 70000}]"),
      where: "cluster.yaml: document 3 (Service default/web), spec.ports[0].port",
      message: "must be 1-65535",
      line: 15,
    },
    { name: "port zero", text: svc("  ports: [{port: 0}]"), where: "cluster.yaml: document 1 (Service default/web), spec.ports[0].port", message: "must be 1-65535" },
    { name: "port missing", text: svc("  ports: [{name: a}]"), where: "cluster.yaml: document 1 (Service default/web), spec.ports[0].port", message: "Required value" },
    { name: "port not a number", text: svc('  ports: [{port: "80"}]'), where: "cluster.yaml: document 1 (Service default/web), spec.ports[0].port", message: 'must be an integer, got "80"' },
    { name: "no ports", text: svc("  selector: {app: web}"), where: "cluster.yaml: document 1 (Service default/web), spec.ports", message: "Required value" },
    {
      name: "unnamed port among several",
      text: svc("  ports: [{name: a, port: 80}, {port: 81}]"),
      where: "cluster.yaml: document 1 (Service default/web), spec.ports[1].name",
      message: "Required value",
    },
    {
      name: "duplicate port names",
      text: svc("  ports: [{name: a, port: 80}, {name: a, port: 81}]"),
      where: "cluster.yaml: document 1 (Service default/web), spec.ports[1].name",
      message: 'Duplicate value: "a"',
    },
    {
      name: "duplicate port and protocol",
      text: svc("  ports: [{name: a, port: 80}, {name: b, port: 80}]"),
      where: "cluster.yaml: document 1 (Service default/web), spec.ports[1]",
      message: 'Duplicate value: {"port":80,"protocol":"TCP"}',
    },
    {
      name: "bad protocol",
      text: svc("  ports: [{port: 80, protocol: ICMP}]"),
      where: "cluster.yaml: document 1 (Service default/web), spec.ports[0].protocol",
      message: 'Unsupported value: "ICMP": supported values: "TCP", "UDP", "SCTP"',
    },
    {
      name: "selector with matchLabels",
      text: svc("  selector: {matchLabels: {app: web}}\n  ports: [{port: 80}]"),
      where: "cluster.yaml: document 1 (Service default/web), spec.selector",
      message: "Invalid value: a Service selector is a plain map of labels (matchLabels/matchExpressions belong to workloads)",
    },
    {
      name: "nodePort on ClusterIP",
      text: svc("  ports: [{port: 80, nodePort: 30001}]"),
      where: "cluster.yaml: document 1 (Service default/web), spec.ports[0].nodePort",
      message: "Forbidden: may not be used when `type` is 'ClusterIP'",
    },
    {
      name: "nodePort out of the node port range",
      text: svc("  type: NodePort\n  ports: [{port: 80, nodePort: 8080}]"),
      where: "cluster.yaml: document 1 (Service default/web), spec.ports[0].nodePort",
      message: "Invalid value: 8080: provided port is not in the valid range. The range of valid ports is 30000-32767",
    },
    {
      name: "nodePort allocated twice",
      text: svc("  type: NodePort\n  ports: [{port: 80, nodePort: 30080}]") + "\n---\n" + svc("  type: NodePort\n  ports: [{port: 80, nodePort: 30080}]", "{name: other}"),
      where: "cluster.yaml: document 2 (Service default/other), spec.ports[0].nodePort",
      message: "Invalid value: 30080: provided port is already allocated",
    },
    {
      name: "clusterIP outside the service range",
      text: svc("  clusterIP: 192.168.1.1\n  ports: [{port: 80}]"),
      where: "cluster.yaml: document 1 (Service default/web), spec.clusterIP",
      message: 'Invalid value: "192.168.1.1": provided IP is not in the valid range. The range of valid IPs is 10.96.0.0/12',
    },
    {
      name: "clusterIP of the kubernetes Service",
      text: svc("  clusterIP: 10.96.0.1\n  ports: [{port: 80}]"),
      where: "cluster.yaml: document 1 (Service default/web), spec.clusterIP",
      message: 'Invalid value: "10.96.0.1": provided IP is already allocated',
    },
    {
      name: "bad clusterIP",
      text: svc("  clusterIP: 10.96.0.300\n  ports: [{port: 80}]"),
      where: "cluster.yaml: document 1 (Service default/web), spec.clusterIP",
      message: 'Invalid value: "10.96.0.300": must be a valid IPv4 address',
    },
    {
      name: "bad source range",
      text: svc("  type: LoadBalancer\n  loadBalancerSourceRanges: [10.0.0.0/33]\n  ports: [{port: 80}]"),
      where: "cluster.yaml: document 1 (Service default/web), spec.loadBalancerSourceRanges[0]",
      message: 'Invalid value: "10.0.0.0/33": must be a valid CIDR value, (e.g. 10.9.8.0/24)',
    },
    {
      name: "healthCheckNodePort without Local",
      text: svc("  type: LoadBalancer\n  healthCheckNodePort: 30000\n  ports: [{port: 80}]"),
      where: "cluster.yaml: document 1 (Service default/web), spec.healthCheckNodePort",
      message: "Invalid value: may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'",
    },
    {
      name: "bad target port name",
      text: svc("  ports: [{port: 80, targetPort: Http_Port}]"),
      where: "cluster.yaml: document 1 (Service default/web), spec.ports[0].targetPort",
      message: `Invalid value: "Http_Port": must be no more than 15 characters, contain only lowercase alphanumerics or '-', contain at least one letter, and not start, end or contain '--'`,
    },
    {
      name: "session affinity timeout",
      text: svc("  sessionAffinity: ClientIP\n  sessionAffinityConfig: {clientIP: {timeoutSeconds: 0}}\n  ports: [{port: 80}]"),
      where: "cluster.yaml: document 1 (Service default/web), spec.sessionAffinityConfig.clientIP.timeoutSeconds",
      message: "must be 1-86400",
    },
    {
      name: "bad object name",
      text: svc("  ports: [{port: 80}]", "{name: Web_1}"),
      where: "cluster.yaml: document 1 (Service default/Web_1), metadata.name",
      message: `Invalid value: "Web_1": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character`,
    },
    {
      name: "missing name",
      text: "apiVersion: v1\nkind: Service\nmetadata: {namespace: x}\nspec: {ports: [{port: 80}]}",
      where: "cluster.yaml: document 1 (Service x/), metadata.name",
      message: "Required value",
    },
    {
      name: "duplicate object",
      text: svc("  ports: [{port: 80}]") + "\n---\n" + svc("  ports: [{port: 81}]"),
      where: "cluster.yaml: document 2 (Service default/web), metadata.name",
      message: "Duplicate value: already defined in document 1",
    },
    { name: "unknown kind", text: "apiVersion: v1\nkind: Gadget\nmetadata: {name: g}", where: "cluster.yaml: document 1, kind", message: 'Unsupported value: "Gadget": tcbox models Namespace, Node, Pod, Deployment, ReplicaSet, StatefulSet, Service, EndpointSlice, NetworkPolicy' },
    { name: "missing kind", text: "apiVersion: v1\nmetadata: {name: g}", where: "cluster.yaml: document 1, kind", message: "Required value" },
    {
      name: "deployment selector does not match template",
      text: "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  selector: {matchLabels: {app: a}}\n  template:\n    metadata: {labels: {app: b}}\n    spec: {containers: [{name: c, image: x}]}",
      where: "cluster.yaml: document 1 (Deployment default/d), spec.template.metadata.labels",
      message: "Invalid value: `selector` does not match template `labels`",
    },
    {
      name: "deployment selector as a plain map",
      text: "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  selector: {app: a}\n  template:\n    metadata: {labels: {app: a}}\n    spec: {containers: [{name: c, image: x}]}",
      where: "cluster.yaml: document 1 (Deployment default/d), spec.selector.app",
      message: 'unknown field "app" in a label selector (did you mean matchLabels?)',
    },
    {
      name: "pod without containers",
      text: "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: []}",
      where: "cluster.yaml: document 1 (Pod default/p), spec.containers",
      message: "Required value",
    },
    {
      name: "duplicate container port names",
      text: "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: a, ports: [{name: http, containerPort: 80}]}, {name: b, ports: [{name: http, containerPort: 81}]}]}",
      where: "cluster.yaml: document 1 (Pod default/p), spec.containers[1].ports[0].name",
      message: 'Duplicate value: "http"',
    },
    {
      name: "pod on an unknown node",
      text: NODE + "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {nodeName: n9, containers: [{name: a}]}",
      where: "cluster.yaml: document 2 (Pod default/p), spec.nodeName",
      message: 'Not found: node "n9"',
    },
    {
      name: "node without an InternalIP",
      text: "apiVersion: v1\nkind: Node\nmetadata: {name: n1}",
      where: "cluster.yaml: document 1 (Node n1), status.addresses",
      message: "Required value: a Node needs an InternalIP address",
    },
    {
      name: "endpointslice without addresses",
      text: "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: s}\naddressType: IPv4\nendpoints: [{addresses: []}]",
      where: "cluster.yaml: document 1 (EndpointSlice default/s), endpoints[0].addresses",
      message: "Required value",
    },
    {
      name: "networkpolicy except outside cidr",
      text: "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: np}\nspec:\n  podSelector: {}\n  ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/8, except: [192.168.0.0/16]}}]}]",
      where: "cluster.yaml: document 1 (NetworkPolicy default/np), spec.ingress[0].from[0].ipBlock.except[0]",
      message: 'Invalid value: "192.168.0.0/16": must be a strict subset of `cidr`',
    },
    {
      name: "networkpolicy endPort below port",
      text: "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: np}\nspec:\n  podSelector: {}\n  egress: [{ports: [{port: 90, endPort: 80}]}]",
      where: "cluster.yaml: document 1 (NetworkPolicy default/np), spec.egress[0].ports[0].endPort",
      message: "Invalid value: must be greater than or equal to `port`",
    },
    { name: "YAML syntax", text: "apiVersion: v1\nkind: Service\nmetadata: {name: [}\n", where: "cluster.yaml:3: document 1", message: "" },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const e = errorOf(c.text);
      expect(e.where).toBe(c.where);
      if (c.message) expect(e.message).toBe(c.message);
      if (c.line !== undefined) expect(e.line).toBe(c.line);
    });
  }
});

describe("manifests parse into typed objects", () => {
  const text = `${NODE}apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop, labels: {tier: web}}
spec:
  type: LoadBalancer
  externalTrafficPolicy: Local
  selector: {app: web}
  ports:
    - {name: http, port: 80, targetPort: http}
    - {name: dns, port: 53, protocol: UDP}
  externalIPs: [192.168.99.1]
  loadBalancerSourceRanges: [203.0.113.0/24]
  sessionAffinity: ClientIP
status: {loadBalancer: {ingress: [{ip: 1.2.3.4}, {hostname: lb.example.com}, {ip: 5.6.7.8, ipMode: Proxy}]}}
`;
  it("fills defaults and allocates as the apiserver does", () => {
    const c = loadCluster(text, "c.yaml", { seed: 7 });
    const s = c.services.find((x) => x.metadata.name === "web")!;
    expect(s.ports.map((p) => [p.name, p.protocol, p.port, p.targetPort])).toEqual([
      ["http", "TCP", 80, "http"],
      ["dns", "UDP", 53, 53],
    ]);
    // ipMode Proxy: the load balancer proxies, so kube-proxy must not capture that IP (KEP-1860).
    expect(s.loadBalancerIngress).toEqual(["1.2.3.4"]);
    expect(s.loadBalancerProxyIPs).toEqual(["5.6.7.8"]);
    expect(s.sessionAffinityTimeoutSeconds).toBe(10800);
    for (const p of s.ports) expect(p.nodePort).toBeGreaterThanOrEqual(30000);
    expect(s.healthCheckNodePort).toBeGreaterThanOrEqual(30000);
    expect(new Set([...s.ports.map((p) => p.nodePort), s.healthCheckNodePort]).size).toBe(3);
    expect(s.clusterIP).toMatch(/^10\.(9[6-9]|10[0-9]|11[01])\./);
    const k = c.services.find((x) => x.metadata.name === "kubernetes")!;
    expect(k.clusterIP).toBe("10.96.0.1");
    expect(c.namespaces.map((n) => n.metadata.name)).toContain("shop");
  });
  it("is deterministic for a seed and differs across seeds", () => {
    const a = loadCluster(text, "c.yaml", { seed: 7 });
    const b = loadCluster(text, "c.yaml", { seed: 7 });
    const d = loadCluster(text, "c.yaml", { seed: 8 });
    expect(JSON.stringify(a)).toBe(JSON.stringify(b));
    expect(a.services[1]!.clusterIP).not.toBe(d.services[1]!.clusterIP);
  });
});
