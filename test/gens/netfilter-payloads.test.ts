// Each node's rulesets (kube-proxy + the CNI agent's) are valid iptables-restore input for the netfilter layer,
// and carry the generation's masquerade rule.
import { describe, expect, it } from "vitest";
import { loadDemoCluster } from "../../src/k8s/demo-cluster.js";
import { buildGeneration, mergeSave } from "../../src/gens/index.js";
import { parseIptablesRestore } from "../../src/netfilter/restore.js";
import { compileRuleset } from "../../src/netfilter/compile.js";

describe.each([1, 2, 3] as const)("Gen %i node rulesets", (n) => {
  const g = buildGeneration(n, loadDemoCluster());
  it("parse and compile, alone and merged into one ruleset", () => {
    for (const node of g.nodes) {
      expect(node.netfilter.payloads.map((p) => p.owner)).toEqual(["kube-proxy", n === 1 ? "flanneld" : n === 2 ? "calico-felix" : "aws-node"]);
      expect(node.netfilter.installed).toBe(true);
      for (const p of node.netfilter.payloads) compileRuleset(parseIptablesRestore(p.text, { file: `${node.name}/${p.owner}` }));
      const merged = mergeSave(node.netfilter.payloads[0]!.text, node.netfilter.payloads[1]!.text);
      const rs = parseIptablesRestore(merged, { file: `${node.name}/merged` });
      compileRuleset(rs);
      const post = rs.tables.find((t) => t.name === "nat")!.chains.get("POSTROUTING")!.rules.length;
      expect(post).toBe(2); // KUBE-POSTROUTING then the agent's chain
    }
  });
  it("the masquerade rule names the right addresses", () => {
    const text = g.nodes[0]!.netfilter.payloads[1]!.text;
    if (n === 1) expect(text).toContain("-A FLANNEL-POSTRTG -s 10.244.0.0/16 ! -d 224.0.0.0/4 -m comment --comment \"flanneld masq\" -j MASQUERADE --random-fully");
    if (n === 2) expect(text).toContain("-s 10.244.0.0/16 ! -d 10.244.0.0/16");
    if (n === 3) expect(text).toContain("-A AWS-SNAT-CHAIN-0 -d 10.0.0.0/16 -m comment --comment \"AWS SNAT CHAIN VPC CIDR EXCLUSION\" -j RETURN");
  });
});
