// The EndpointSlice controller: at most 100 endpoints per slice, conditions from pod readiness and deletion,
// named target ports resolved per pod (pods resolving differently land in different slices), placeholder slice.
import { describe, expect, it } from "vitest";
import { loadCluster } from "../../src/k8s/cluster.js";
import type { EndpointSlice } from "../../src/k8s/types.js";

const nodes = `apiVersion: v1
kind: Node
metadata: {name: n1, labels: {topology.kubernetes.io/zone: za}}
status: {addresses: [{type: InternalIP, address: 192.168.0.1}]}
---
apiVersion: v1
kind: Node
metadata: {name: n2, labels: {topology.kubernetes.io/zone: zb}}
status: {addresses: [{type: InternalIP, address: 192.168.0.2}]}
---
`;

function slicesFor(text: string, svc: string): EndpointSlice[] {
  const c = loadCluster(text, "c.yaml", { seed: 3 });
  return c.endpointSlices.filter((s) => s.serviceName === svc);
}

describe("EndpointSlice controller", () => {
  it("splits 250 endpoints into slices of 100, 100 and 50, named <svc>-xxxxx", () => {
    const text = `${nodes}apiVersion: apps/v1
kind: Deployment
metadata: {name: big}
spec:
  replicas: 250
  selector: {matchLabels: {app: big}}
  template:
    metadata: {labels: {app: big}}
    spec: {containers: [{name: c, ports: [{name: http, containerPort: 8080}]}]}
---
apiVersion: v1
kind: Service
metadata: {name: big}
spec:
  selector: {app: big}
  ports: [{name: http, port: 80, targetPort: http}]
`;
    const slices = slicesFor(text, "big");
    expect(slices.map((s) => s.endpoints.length)).toEqual([100, 100, 50]);
    for (const s of slices) {
      expect(s.metadata.name).toMatch(/^big-[bcdfghjklmnpqrstvwxz2456789]{5}$/);
      expect(s.metadata.labels["kubernetes.io/service-name"]).toBe("big");
      expect(s.metadata.labels["endpointslice.kubernetes.io/managed-by"]).toBe("endpointslice-controller.k8s.io");
      expect(s.addressType).toBe("IPv4");
      expect(s.ports).toEqual([{ name: "http", port: 8080, protocol: "TCP", appProtocol: null }]);
    }
    expect(new Set(slices.map((s) => s.metadata.name)).size).toBe(3);
    const ips = slices.flatMap((s) => s.endpoints.map((e) => e.addresses[0]));
    expect(new Set(ips).size).toBe(250);
    // Spread by the scheduler: 125 pods per node, each with its node's zone.
    const perNode = slices.flatMap((s) => s.endpoints).reduce<Record<string, number>>((m, e) => ((m[e.nodeName!] = (m[e.nodeName!] ?? 0) + 1), m), {});
    expect(perNode).toEqual({ n1: 125, n2: 125 });
    for (const e of slices.flatMap((s) => s.endpoints)) expect(e.zone).toBe(e.nodeName === "n1" ? "za" : "zb");
  });

  const pods = (extra: string) => `${nodes}apiVersion: v1
kind: Pod
metadata: {name: ready, labels: {app: a}}
spec: {nodeName: n1, containers: [{name: c, ports: [{name: web, containerPort: 8080}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: notready, labels: {app: a}}
spec: {nodeName: n2, containers: [{name: c, ports: [{name: web, containerPort: 8080}]}]}
status: {phase: Running, conditions: [{type: Ready, status: "False"}]}
---
apiVersion: v1
kind: Pod
metadata: {name: terminating, labels: {app: a}, deletionTimestamp: "2024-01-01T00:00:00Z"}
spec: {nodeName: n2, containers: [{name: c, ports: [{name: web, containerPort: 8080}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: done, labels: {app: a}}
spec: {nodeName: n2, containers: [{name: c, ports: [{name: web, containerPort: 8080}]}]}
status: {phase: Succeeded}
---
apiVersion: v1
kind: Pod
metadata: {name: other-port, labels: {app: a}}
spec: {nodeName: n1, containers: [{name: c, ports: [{name: web, containerPort: 9090}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: no-port, labels: {app: a}}
spec: {nodeName: n1, containers: [{name: c}]}
---
apiVersion: v1
kind: Service
metadata: {name: a}
spec:
  selector: {app: a}
${extra}  ports: [{name: http, port: 80, targetPort: web}]
`;

  const cases: { name: string; extra: string; expect: Record<string, [boolean, boolean, boolean]> }[] = [
    {
      name: "conditions from readiness and deletion",
      extra: "",
      expect: { ready: [true, true, false], notready: [false, false, false], terminating: [false, true, true], "other-port": [true, true, false], "no-port": [true, true, false] },
    },
    {
      name: "publishNotReadyAddresses makes every endpoint ready",
      extra: "  publishNotReadyAddresses: true\n",
      expect: { ready: [true, true, false], notready: [true, false, false], terminating: [true, true, true], "other-port": [true, true, false], "no-port": [true, true, false] },
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const slices = slicesFor(pods(c.extra), "a");
      const got: Record<string, [boolean, boolean, boolean]> = {};
      for (const s of slices) for (const e of s.endpoints) got[e.targetRef!.split("/")[1]!] = [e.conditions.ready, e.conditions.serving, e.conditions.terminating];
      expect(got).toEqual(c.expect);
    });
  }

  it("groups pods by how the named targetPort resolves", () => {
    const slices = slicesFor(pods(""), "a");
    const byPort = slices.map((s) => `${s.ports.map((p) => p.port).join(",")}: ${s.endpoints.map((e) => e.targetRef).sort().join(" ")}`).sort();
    expect(byPort).toEqual(["8080: Pod default/notready Pod default/ready Pod default/terminating", "9090: Pod default/other-port", ": Pod default/no-port"]);
  });

  it("keeps one empty placeholder slice for a Service that selects nothing", () => {
    const slices = slicesFor(`${nodes}apiVersion: v1\nkind: Service\nmetadata: {name: none}\nspec: {selector: {app: zzz}, ports: [{port: 80}]}\n`, "none");
    expect(slices).toHaveLength(1);
    expect(slices[0]!.endpoints).toEqual([]);
  });

  it("derives no slice for ExternalName or selector-less Services", () => {
    const text = `apiVersion: v1\nkind: Service\nmetadata: {name: ext}\nspec: {type: ExternalName, externalName: example.com}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: manual}\nspec: {ports: [{port: 80}]}\n`;
    expect(slicesFor(text, "ext")).toEqual([]);
    expect(slicesFor(text, "manual")).toEqual([]);
  });
});
