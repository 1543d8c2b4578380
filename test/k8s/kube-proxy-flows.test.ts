// kube-proxy's own packet-flow expectations (upstream proxier_test.go runPacketFlowTests), ported as data:
// manifests -> tcbox's generated ruleset (iptables-save form) -> the netfilter tracer (every statistic branch) ->
// the set of DNAT destinations, or REJECT/DROP, and whether the packet is masqueraded.
// Upstream's `output` is "" for a packet no Service rule touched, "DROP"/"REJECT" for a filter verdict, or the
// endpoints a new connection can reach, sorted and joined by ", ".
import { expect, it } from "vitest";
import { loadCluster } from "../../src/k8s/cluster.js";
import { generateIptables, type IptablesProxierOptions } from "../../src/k8s/kube-proxy/iptables.js";
import { iptablesSave } from "../../src/k8s/kube-proxy/iptables-save.js";
import { parseIptablesRestore } from "../../src/netfilter/restore.js";
import { traceRuleset } from "../../src/netfilter/trace.js";
import { parseIpv4 } from "../../src/packet/addr.js";
import { describeFlowFixtures, LOCAL_IPS, PROTO, type Flow } from "./kube-proxy-flow-fixtures.js";

/** testNodeIPs (IPv4): the node's addresses, all LOCAL to addrtype. */

function runFlows(file: string, proxier: IptablesProxierOptions, manifests: string, flows: Flow[]): void {
  const cluster = loadCluster(manifests, file, { serviceCIDR: "172.30.0.0/16", nodePortRange: [1, 65535], kubernetesService: false });
  const rules = parseIptablesRestore(iptablesSave(generateIptables(cluster, proxier)), { file });
  for (const f of flows) {
    it(f.name, () => {
      const outcomes = traceRuleset(rules, {
        proto: PROTO[f.proto ?? "tcp"]!,
        src: parseIpv4(f.src),
        sport: 40000,
        dst: parseIpv4(f.dst),
        dport: f.dport,
        localIps: LOCAL_IPS,
      });
      const total = outcomes.reduce((s, o) => s + o.probability, 0);
      expect(total).toBeCloseTo(1, 9);
      const verdicts = new Set(outcomes.map((o) => o.verdict));
      let output: string;
      if (verdicts.has("DROP") || verdicts.has("REJECT")) {
        expect(verdicts.size, "a filter verdict applies to every branch").toBe(1);
        output = [...verdicts][0]!;
      } else {
        output = [...new Set(outcomes.map((o) => o.dnat).filter((d): d is string => d !== null))].sort().join(", ");
      }
      expect(output).toBe(f.output);
      if (f.output !== "DROP" && f.output !== "REJECT") {
        for (const o of outcomes) expect(o.masquerade, "masquerade").toBe(f.masq ?? false);
      }
    });
  }
}

describeFlowFixtures("", (file, spec, manifests, flows) => runFlows(file, spec.proxier, manifests, flows));
