// kube-proxy's own packet-flow expectations (upstream proxier_test.go runPacketFlowTests), ported as data:
// manifests -> tcbox's generated ruleset (iptables-save form) -> the netfilter tracer (every statistic branch) ->
// the set of DNAT destinations, or REJECT/DROP, and whether the packet is masqueraded.
// Upstream's `output` is "" for a packet no Service rule touched, "DROP"/"REJECT" for a filter verdict, or the
// endpoints a new connection can reach, sorted and joined by ", ".
import { readdirSync, readFileSync } from "node:fs";
import { parse } from "yaml";
import { describe, expect, it } from "vitest";
import { loadCluster } from "../../src/k8s/cluster.js";
import { generateIptables, type IptablesProxierOptions } from "../../src/k8s/kube-proxy/iptables.js";
import { iptablesSave } from "../../src/k8s/kube-proxy/iptables-save.js";
import { parseIptablesRestore } from "../../src/netfilter/restore.js";
import { traceRuleset } from "../../src/netfilter/trace.js";
import { parseIpv4 } from "../../src/packet/addr.js";

interface Flow {
  name: string;
  proto?: string;
  src: string;
  dst: string;
  dport: number;
  output: string;
  masq?: boolean;
}
interface FlowFile {
  source: string;
  proxier: IptablesProxierOptions;
  manifests: string;
  flows: Flow[];
}

const dir = new URL("../fixtures/k8s/kube-proxy/flows/", import.meta.url);
/** testNodeIPs (IPv4): the node's addresses, all LOCAL to addrtype. */
const LOCAL_IPS = ["192.168.0.2", "192.168.1.2", "192.168.99.11"].map(parseIpv4);
const PROTO: Record<string, number> = { tcp: 6, udp: 17, sctp: 132 };

for (const file of readdirSync(dir).filter((f) => f.endsWith(".yaml")).sort()) {
  const spec = parse(readFileSync(new URL(file, dir), "utf8")) as FlowFile;
  describe(`${file}: ${spec.source}`, () => {
    const cluster = loadCluster(spec.manifests, file, { serviceCIDR: "172.30.0.0/16", nodePortRange: [1, 65535], kubernetesService: false });
    const rules = parseIptablesRestore(iptablesSave(generateIptables(cluster, spec.proxier)), { file });
    for (const f of spec.flows) {
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
  });
}
