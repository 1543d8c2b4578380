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
interface FlowCase {
  name: string;
  manifests: string;
  flows: Flow[];
}
/** One upstream test: either one cluster (manifests + flows) or a shared Service with per-case slices. */
interface FlowFile {
  source: string;
  proxier: IptablesProxierOptions;
  manifests?: string;
  flows?: Flow[];
  service?: string;
  cases?: FlowCase[];
}

const dir = new URL("../fixtures/k8s/kube-proxy/flows/", import.meta.url);
/** testNodeIPs (IPv4): the node's addresses, all LOCAL to addrtype. */
const LOCAL_IPS = ["192.168.0.2", "192.168.1.2", "192.168.99.11"].map(parseIpv4);
const PROTO: Record<string, number> = { tcp: 6, udp: 17, sctp: 132 };

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

for (const file of readdirSync(dir).filter((f) => f.endsWith(".yaml")).sort()) {
  const spec = parse(readFileSync(new URL(file, dir), "utf8")) as FlowFile;
  describe(`${file}: ${spec.source}`, () => {
    if (spec.manifests !== undefined) runFlows(file, spec.proxier, spec.manifests, spec.flows ?? []);
    for (const c of spec.cases ?? []) {
      describe(c.name, () => runFlows(file, spec.proxier, `${spec.service ?? ""}\n---\n${c.manifests}`, c.flows));
    }
  });
}
