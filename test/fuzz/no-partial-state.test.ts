// A bad ruleset never half-applies: iptables-restore parses and compiles the whole payload before the node's
// hooks are swapped (kernel: the table is replaced in one setsockopt, or not at all), so after a failed restore
// the previous ruleset still DNATs the Service and the node keeps the same hooks object.
import { describe, expect, it } from "vitest";
import { loadDemoCluster } from "../../src/k8s/demo-cluster.js";
import { buildGeneration } from "../../src/gens/index.js";
import { IptablesHooks } from "../../src/net/iptables.js";
import { IPPROTO_UDP, sendUdp } from "../../src/net/index.js";
import { formatIpv4, get32, parseIpv4 } from "../../src/packet/index.js";

const BAD: [string, string][] = [
  ["unknown target", "*nat\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -j NOSUCHTARGET\nCOMMIT\n"],
  ["missing COMMIT", "*nat\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -p udp -j DNAT --to-destination 1.2.3.4\n"],
  ["jump to a missing chain", "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -j KUBE-NOWHERE\nCOMMIT\n"],
  ["garbage", "\u0000\u0001 not a ruleset at all"],
];

describe("a failed iptables-restore leaves the previous ruleset", () => {
  it.each(BAD)("%s", (_n, text) => {
    const g = buildGeneration(1, loadDemoCluster());
    const client = g.pods.find((p) => p.key.startsWith("shop/frontend"))!;
    const node = g.nodes.find((n) => n.name === client.node)!;
    const before = node.ns.netfilter;
    expect(() => {
      node.ns.netfilter = new IptablesHooks(node.ns, text);
    }).toThrow();
    expect(node.ns.netfilter).toBe(before);
    // The old rules still DNAT kube-dns to a CoreDNS pod.
    const seen: string[] = [];
    for (const d of g.pods.filter((p) => p.key.startsWith("kube-system/coredns"))) {
      d.ns.bind(IPPROTO_UDP, 0, 53).onReceive = (p) => void seen.push(formatIpv4(get32(p.buf, p.off + 14 + 16)));
    }
    sendUdp(client.ns, { dst: parseIpv4("10.96.0.10"), sport: 40000, dport: 53, payload: 12 });
    g.world.run();
    expect(seen).toHaveLength(1);
    expect(g.pods.filter((p) => p.key.startsWith("kube-system/coredns")).map((p) => p.ip)).toContain(seen[0]);
  });
});
