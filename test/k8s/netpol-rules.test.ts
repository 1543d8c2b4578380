// The rendering pieces: ipBlock except as a CIDR difference, Felix-style chain names and rule shapes.
import { describe, expect, it } from "vitest";
import { cidrMinus } from "../../src/k8s/netpol/cidr.js";
import { calicoPolicySave, policyChain } from "../../src/k8s/netpol/calico.js";
import { xyzCluster } from "../fixtures/netpol/xyz.js";

describe("cidrMinus", () => {
  it.each([
    ["10.0.0.0/24", [], ["10.0.0.0/24"]],
    ["10.0.0.0/24", ["10.0.0.0/25"], ["10.0.0.128/25"]],
    ["10.0.0.0/24", ["10.0.0.5/32"], ["10.0.0.0/30", "10.0.0.4/32", "10.0.0.6/31", "10.0.0.8/29", "10.0.0.16/28", "10.0.0.32/27", "10.0.0.64/26", "10.0.0.128/25"]],
    ["10.0.0.0/24", ["10.0.0.0/26", "10.0.0.192/26"], ["10.0.0.64/26", "10.0.0.128/26"]],
    ["10.0.0.0/24", ["10.0.0.0/24"], []],
    ["0.0.0.0/0", ["128.0.0.0/1"], ["0.0.0.0/1"]],
  ] as [string, string[], string[]][])("%s except %j", (cidr, except, want) => {
    expect(cidrMinus(cidr, except)).toEqual(want);
  });
});

describe("Felix-style rules", () => {
  const np = `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: a-very-long-policy-name-that-would-not-fit-in-a-chain, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{from: [{namespaceSelector: {matchLabels: {ns: y}}}], ports: [{port: 80, endPort: 81}, {port: serve-81-udp, protocol: UDP}]}]
`;
  const c = xyzCluster(np, { protocols: ["TCP", "UDP"] });
  const eps = c.pods.map((pod, i) => ({ pod, hostIf: `cali${i}abcdef012` }));

  it("chain names fit iptables' 28 characters; policy chains are per policy and direction", () => {
    const save = calicoPolicySave(c, eps, { dispatch: "interface" });
    for (const l of save.split("\n").filter((x) => x.startsWith(":"))) expect(l.slice(1).split(" ")[0]!.length).toBeLessThanOrEqual(28);
    const pol = c.networkPolicies[0]!;
    expect(policyChain("i", pol)).not.toBe(policyChain("o", pol));
    expect(policyChain("i", pol)).toMatch(/^cali-pi-_[0-9a-f]{16}$/);
  });

  it("one rule per member pod and port (ranges as --dport A:B, named ports with the selected pod as -d)", () => {
    const save = calicoPolicySave(c, eps, { dispatch: "interface" });
    const chain = policyChain("i", c.networkPolicies[0]!);
    const rules = save.split("\n").filter((l) => l.startsWith(`-A ${chain} `));
    const ys = c.pods.filter((p) => p.metadata.namespace === "y");
    const xa = c.pods.find((p) => p.metadata.namespace === "x" && p.metadata.name === "a")!;
    for (const y of ys) {
      expect(rules).toContain(`-A ${chain} -s ${y.podIP}/32 -p tcp -m tcp --dport 80:81 -j MARK --set-xmark 0x10000/0x10000`);
      expect(rules).toContain(`-A ${chain} -s ${y.podIP}/32 -d ${xa.podIP}/32 -p udp -m udp --dport 81 -j MARK --set-xmark 0x10000/0x10000`);
    }
    expect(rules).toHaveLength(ys.length * 2 + 1);
    expect(rules.at(-1)).toBe(`-A ${chain} -m mark --mark 0x10000/0x10000 -j RETURN`);
  });

  it("dispatch by interface (routed veths) or by address (bridge)", () => {
    const byIf = calicoPolicySave(c, eps, { dispatch: "interface" });
    const byAddr = calicoPolicySave(c, eps, { dispatch: "address" });
    expect(byIf).toContain(`-A cali-to-wl-dispatch -o ${eps[0]!.hostIf} -g cali-tw-${eps[0]!.hostIf}`);
    expect(byAddr).toContain(`-A cali-to-wl-dispatch -d ${eps[0]!.pod.podIP}/32 -g cali-tw-${eps[0]!.hostIf}`);
    expect(byAddr).toContain(`-A cali-from-wl-dispatch -s ${eps[0]!.pod.podIP}/32 -g cali-fw-${eps[0]!.hostIf}`);
  });
});
