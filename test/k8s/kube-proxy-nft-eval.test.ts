// kube-proxy nftables mode, evaluated: for every packet-flow fixture (upstream runPacketFlowTests, ported in
// test/fixtures/k8s/kube-proxy/flows/), the nftables table tcbox generates, compiled by nftables-eval.ts and walked
// for every numgen choice, reaches the same endpoints with the same probabilities, masquerades the same, and
// drops/rejects the same as the iptables ruleset through the netfilter tracer - except where the two proxiers
// differ upstream (listed in NFT_DIFFERS, each as upstream's nftables proxier_test.go expects it).
import { describe, expect, it } from "vitest";
import { loadCluster } from "../../src/k8s/cluster.js";
import { generateIptables, type IptablesProxierOptions } from "../../src/k8s/kube-proxy/iptables.js";
import { iptablesSave } from "../../src/k8s/kube-proxy/iptables-save.js";
import { generateNftables } from "../../src/k8s/kube-proxy/nftables.js";
import { compileNft, NftPath } from "../../src/k8s/kube-proxy/nftables-eval.js";
import { NatKind } from "../../src/netfilter/compiled.js";
import { PathResult } from "../../src/netfilter/hooks.js";
import { PacketState } from "../../src/netfilter/packet-state.js";
import { parseIptablesRestore } from "../../src/netfilter/restore.js";
import { traceRuleset } from "../../src/netfilter/trace.js";
import { formatIpv4, parseIpv4 } from "../../src/packet/addr.js";
import { serviceIp, syntheticCluster } from "../../src/perf/cluster.js";
import { PROXY_OPTS } from "../../src/perf/iptables.js";
import { describeFlowFixtures, LOCAL_IPS, PROTO, type Flow } from "./kube-proxy-flow-fixtures.js";

const isLocal = (a: number) => a >>> 24 === 127 || LOCAL_IPS.includes(a);

const NODE_IP = parseIpv4("192.168.0.2");
const UNTOUCHED = "- p=1.000000";
/**
 * Where the two proxiers differ upstream, nftables mode's outcome for a flow the iptables trace left untouched
 * (upstream's nftables proxier_test.go expects the same): a packet to a ClusterIP on a port no Service uses is
 * rejected (cluster-ips-check; iptables mode lets it through); NodePorts answer only on --nodeport-addresses
 * (primary: the node IP 192.168.0.2), never on 127.0.0.0/8 (no route_localnet) or the node's other addresses.
 */
function nftExpected(f: Flow, ipt: string, clusterIps: Set<number>, serviceAddrs: Set<number>): string {
  const dst = parseIpv4(f.dst);
  if (ipt === UNTOUCHED && clusterIps.has(dst)) return "REJECT";
  if (isLocal(dst) && dst !== NODE_IP && !serviceAddrs.has(dst)) return UNTOUCHED;
  return ipt;
}

interface Outcome {
  verdict: string;
  dnat: string | null;
  masq: boolean;
  probability: number;
}

/** Summarise: "REJECT" / "DROP" / sorted "dnat p=prob masq" lines. */
function summary(os: Outcome[]): string {
  const v = new Set(os.map((o) => o.verdict));
  if (v.has("DROP") || v.has("REJECT")) {
    expect(v.size, "a filter verdict applies to every branch").toBe(1);
    return [...v][0]!;
  }
  const by = new Map<string, number>();
  for (const o of os) {
    const k = `${o.dnat ?? "-"}${o.masq ? " masq" : ""}`;
    by.set(k, (by.get(k) ?? 0) + o.probability);
  }
  return [...by].map(([k, p]) => `${k} p=${p.toFixed(6)}`).sort().join("; ");
}

/** Every numgen branch of the nftables path for one first packet (an odometer over the choices). */
function nftOutcomes(path: NftPath, f: Flow): Outcome[] {
  const choice: number[] = [];
  const mods: number[] = [];
  let depth = 0;
  path.env.numgen = (mod: number) => {
    if (depth === choice.length) choice.push(0);
    mods[depth] = mod;
    return choice[depth++]!;
  };
  const outs: Outcome[] = [];
  const p = new PacketState();
  const out = new PathResult();
  for (;;) {
    depth = 0;
    p.reset();
    p.proto = PROTO[f.proto ?? "tcp"]!;
    p.src = parseIpv4(f.src);
    p.dst = parseIpv4(f.dst);
    p.sport = 40000;
    p.dport = f.dport;
    const v = isLocal(p.src) ? path.output(p, out) : path.receive(p, out);
    choice.length = mods.length = depth;
    const probability = mods.reduce((a, m) => a / m, 1);
    outs.push({
      verdict: v === 1 ? "ACCEPT" : out.rejectWith >= 0 ? "REJECT" : "DROP",
      dnat: out.dnat ? `${formatIpv4(out.dnatIp)}:${out.dnatPort}` : null,
      masq: out.snatKind === NatKind.MASQUERADE,
      probability,
    });
    let i = choice.length - 1;
    while (i >= 0 && choice[i]! + 1 >= mods[i]!) i--;
    if (i < 0) break;
    choice[i]!++;
    choice.length = mods.length = i + 1;
  }
  return outs;
}

function runFlows(file: string, proxier: IptablesProxierOptions, manifests: string, flows: Flow[]): void {
  const cluster = loadCluster(manifests, file, { serviceCIDR: "172.30.0.0/16", nodePortRange: [1, 65535], kubernetesService: false });
  const rules = parseIptablesRestore(iptablesSave(generateIptables(cluster, proxier)), { file });
  const table = generateNftables(cluster, { nodeName: proxier.nodeName, nodeIPs: proxier.nodeIPs, clusterCIDR: proxier.clusterCIDR, masqueradeAll: proxier.masqueradeAll });
  const keys = (set: string) => table.sets.find((s) => s.name === set)!.elements.map((e) => parseIpv4(e.key.split(" . ")[0]!));
  const clusterIps = new Set(keys("cluster-ips"));
  const serviceAddrs = new Set([...keys("service-ips"), ...keys("no-endpoint-services")]);
  const nft = compileNft(table);
  const path = new NftPath(nft, { isLocal, masqueradeAddr: () => LOCAL_IPS[0]!, numgen: () => 0, now: () => 0 });
  for (const f of flows) {
    it(f.name, () => {
      const ipt = traceRuleset(rules, { proto: PROTO[f.proto ?? "tcp"]!, src: parseIpv4(f.src), sport: 40000, dst: parseIpv4(f.dst), dport: f.dport, localIps: LOCAL_IPS });
      const want = summary(ipt.map((o) => ({ verdict: o.verdict, dnat: o.dnat, masq: o.masquerade, probability: o.probability })));
      const got = nftOutcomes(path, f);
      expect(got.reduce((s, o) => s + o.probability, 0)).toBeCloseTo(1, 9);
      expect(summary(got)).toBe(nftExpected(f, want, clusterIps, serviceAddrs));
    });
  }
}

describeFlowFixtures("", (file, spec, manifests, flows) => runFlows(file, spec.proxier, manifests, flows));

describe("nftables evaluator", () => {
  const first = (n: number) => {
    const c = syntheticCluster(n, 3);
    const path = new NftPath(compileNft(generateNftables(c, PROXY_OPTS)), { isLocal: (a) => a === parseIpv4(PROXY_OPTS.nodeIPs[0]!), masqueradeAddr: () => 1, numgen: (m) => m - 1, now: () => 0 });
    const p = new PacketState();
    const out = new PathResult();
    const r0 = path.rules;
    const l0 = path.lookups;
    p.reset();
    p.proto = 6;
    p.src = parseIpv4("10.244.1.5");
    p.dst = serviceIp(n - 1);
    p.sport = 40000;
    p.dport = 80;
    expect(path.receive(p, out)).toBe(1);
    return { rules: path.rules - r0, lookups: path.lookups - l0, dnat: formatIpv4(out.dnatIp), dst: p.dst };
  };
  it("walks the same rules and lookups for a Service whatever the number of Services (map dispatch)", () => {
    const a = first(10);
    const b = first(2000);
    expect(b.rules).toBe(a.rules);
    expect(b.lookups).toBe(a.lookups);
    // filter-prerouting-pre-dnat 1, firewall-check 1, nat-prerouting 1, services 1 (the vmap hit goes to the
    // service chain), service chain 2 (masquerade check, numgen), endpoint chain 2 (ip saddr, dnat),
    // filter-forward 2, service-endpoints-check 1, cluster-ips-check 2, nat-postrouting 1, masquerading 1.
    expect(a.rules).toBe(15);
    // @firewall-ips, @service-ips, numgen's vmap, @no-endpoint-services, @cluster-ips, { service CIDR }.
    expect(a.lookups).toBe(6);
    expect(b.dnat).toBe(formatIpv4(b.dst));
  });
  it("refuses a rule form it does not know, naming chain and rule", () => {
    const t = generateNftables(syntheticCluster(1, 1), PROXY_OPTS);
    t.chains.find((c) => c.name === "services")!.rules.push({ rule: "meta nfproto ipv4 counter" });
    expect(() => compileNft(t)).toThrow(/unsupported rule text "meta nfproto ipv4 counter"/);
    try {
      compileNft(t);
    } catch (e) {
      expect((e as { where?: string }).where).toBe("chain services rule 3");
    }
  });
});
