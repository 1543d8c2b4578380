// ENI limits: kubelet's max pods (ENIs x (IPs - 1) + 2) and the CNI's address pool, with Kubernetes-style events.
import { describe, expect, it } from "vitest";
import { buildGen1, buildGen3 } from "../../src/gens/index.js";
import { maxPods } from "../../src/k8s/cni/index.js";
import { packedNode } from "./fixtures.js";

describe("Gen 3 ENI limits", () => {
  const cases: [string, string, number, number, number, string, string][] = [
    // type, hostNetwork pods, replicas, pods running, failing reason, message fragment
    ["30th pod on an m5.large (2 hostNetwork + 28)", "m5.large", 2, 28, 29, "OutOfpods", "Node didn't have enough resource: pods, requested: 1, used: 29, capacity: 29"],
    ["28 pod-network pods on an m5.large: the 28th gets no address", "m5.large", 0, 28, 27, "FailedCreatePodSandBox", 'plugin type="aws-cni" name="aws-cni" failed (add): add cmd: failed to assign an IP address to container'],
    ["t3.small: 3 x (4 - 1) + 2 = 11", "t3.small", 2, 10, 11, "OutOfpods", "used: 11, capacity: 11"],
  ];
  it.each(cases)("%s", (_n, type, host, replicas, running, reason, fragment) => {
    const g = buildGen3(packedNode(type, host, replicas));
    expect(g.pods).toHaveLength(running);
    expect(g.failed).toHaveLength(host + replicas - running);
    expect(g.events).toHaveLength(1);
    expect(g.events[0]).toMatchObject({ type: "Warning", reason, object: `Pod/${g.failed[0]!.key}` });
    expect(g.events[0]!.message).toContain(fragment);
    // The failed pod is no endpoint and has no address in the generation's view.
    const failedPod = g.cluster.pods.find((p) => `${p.metadata.namespace}/${p.metadata.name}` === g.failed[0]!.key)!;
    expect(failedPod.podIP).toBe("");
    expect(g.cluster.endpointSlices.flatMap((s) => s.endpoints).some((e) => e.targetRef === `Pod ${g.failed[0]!.key}`)).toBe(false);
  });

  it("max pods per instance type", () => {
    expect([maxPods("m5.large"), maxPods("t3.medium"), maxPods("m5.xlarge")]).toEqual([29, 17, 58]);
  });

  it("the same 30 pods all start in Gen 1 (a /24 per node has 253 addresses)", () => {
    expect(buildGen1(packedNode("m5.large", 2, 28)).failed).toEqual([]);
  });
});
