// The compare engine's connections through every generation on the demo cluster: a TCP conversation (handshake,
// data each way, both FINs) leaves its conntrack entry in TIME_WAIT in Gen 1-3 as `conntrack -L` prints it; UDP
// datagrams and ICMP echoes both ways; a DNS name resolved by the client pod through CoreDNS with the NXDOMAIN
// answers its resolv.conf search list costs; a packet lost after the handshake named in drop_reason; errors.
import { beforeAll, describe, expect, it } from "vitest";
import { buildGen4, prepareGen4Programs } from "../../src/gens/gen4.js";
import { installCiliumPolicy } from "../../src/gens/policy-cilium.js";
import { buildWithPolicy } from "../../src/gens/policy-iptables.js";
import type { BuiltGeneration, GenNumber } from "../../src/gens/types.js";
import { loadDemoCluster } from "../../src/k8s/demo-cluster.js";
import { Ev, exec, IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP } from "../../src/net/index.js";
import { IptablesHooks } from "../../src/net/iptables.js";
import { formatList } from "../../src/netfilter/conntrack-format.js";
import { runConnection, WorkloadError, type FlowResult, type FlowSpec } from "../../src/compare/engine.js";

const cluster = loadDemoCluster();
const key = (p: { metadata: { namespace: string; name: string } }) => `${p.metadata.namespace}/${p.metadata.name}`;
const FRONTEND = key(cluster.pods.find((p) => p.metadata.name.startsWith("frontend-"))!);
const GENS: GenNumber[] = [1, 2, 3, 4];
const built: Partial<Record<GenNumber, BuiltGeneration>> = {};
let port = 40000;

beforeAll(async () => {
  await prepareGen4Programs();
  for (const gen of GENS) {
    if (gen === 4) {
      const g4 = buildGen4(cluster, { seed: 1 });
      installCiliumPolicy(g4);
      built[4] = g4;
    } else built[gen] = buildWithPolicy(gen, cluster, { seed: 1 });
  }
}, 600_000);

/** One connection, and how many packets of each protocol were sent locally (client, server, kernel replies). */
function run(gen: GenNumber, spec: FlowSpec): { r: FlowResult; sent: Record<number, number>; sport: number } {
  const g = built[gen]!;
  const start = g.world.trace.count;
  const sport = port++;
  const r = runConnection(g, spec, sport, "test");
  const sent: Record<number, number> = { [IPPROTO_TCP]: 0, [IPPROTO_UDP]: 0, [IPPROTO_ICMP]: 0 };
  for (let i = start; i < g.world.trace.count; i++) {
    const x = g.world.trace.get(i);
    if (x.ev === Ev.LOCAL_OUT) sent[x.a] = (sent[x.a] ?? 0) + 1;
  }
  return { r, sent, sport };
}

/** `conntrack -L` of every node of a Gen 1-3 build. */
function conntrackL(g: BuiltGeneration): string {
  return g.nodes.map((n) => (n.ns.netfilter instanceof IptablesHooks ? formatList(n.ns.netfilter.conntrack) : "")).join("");
}

describe("TCP: handshake, data each way, FIN from both ends", () => {
  it.each(GENS)("gen %i: 3 + 2x3 + 4 segments to the backend Service, all delivered; TIME_WAIT in conntrack (Gen 1-3)", (gen) => {
    const { r, sent, sport } = run(gen, { from: FRONTEND, to: "service/shop/backend:8080", protocol: "TCP", packets: 3 });
    expect(r.verdict, r.drop_reason ?? "").toBe("allowed");
    expect(r.drop_reason).toBeNull();
    expect(r.delivered).toBe(true);
    expect(r.dst_pod).toMatch(/^shop\/backend-/);
    expect(r.dst!.endsWith(":9090")).toBe(true);
    expect(sent[IPPROTO_TCP]).toBe(3 + 2 * 3 + 4);
    expect(r.hops.length).toBeGreaterThan(0);
    const svcIP = cluster.services.find((s) => s.metadata.name === "backend")!.clusterIP;
    if (gen === 4) {
      expect(r.rules_evaluated).toBe(0);
      expect(r.map_lookups).toBeGreaterThan(0);
    } else {
      expect(r.map_lookups).toBe(0);
      expect(r.rules_evaluated).toBeGreaterThan(0);
      const line = conntrackL(built[gen]!).split("\n").find((l) => l.includes(`dst=${svcIP} sport=${sport} dport=8080`));
      expect(line, conntrackL(built[gen]!)).toBeDefined();
      expect(line).toMatch(/^tcp\s+6 \d+ TIME_WAIT /);
      expect(line).toContain("[ASSURED]");
    }
  });

  it("a segment lost after the handshake is named (the backend pod's own iptables drops data segments)", () => {
    const g = buildWithPolicy(2, cluster, { seed: 1 });
    const db = g.pods.find((p) => p.key === "shop/db-0")!;
    db.ns.netfilter = new IptablesHooks(db.ns, "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp --tcp-flags PSH PSH -j DROP\nCOMMIT\n");
    const r = runConnection(g, { from: FRONTEND, to: "pod/shop/db-0:5432", protocol: "TCP", packets: 2 }, 41000, "test");
    expect(r.delivered).toBe(true);
    expect(r.dst_pod).toBe("shop/db-0");
    expect(r.verdict).toBe("dropped");
    expect(r.drop_reason).toBe(`handshake completed, then data segment 1/2 client->server lost: netfilter drop in ${db.ns.name}`);
  });
  it.each([
    ["the server's ACK of the client FIN", "OUTPUT", "db", "SYN,FIN,PSH,ACK ACK", "server ACK of the client FIN", "FIN_WAIT"],
    ["the server's FIN", "OUTPUT", "db", "FIN FIN", "server FIN", "CLOSE_WAIT"],
    ["the server's FIN at the client", "INPUT", "client", "FIN FIN", "server FIN", "LAST_ACK"],
  ])("the teardown stops where %s is dropped in a pod: the node's conntrack entry stays in the state it reached", (_, chain, who, flags, step, state) => {
    const g = buildWithPolicy(2, cluster, { seed: 1 });
    const pod = g.pods.find((p) => p.key === (who === "db" ? "shop/db-0" : FRONTEND))!;
    // The pod's own iptables: only a teardown segment matches (the server sends a bare ACK only for the client's FIN).
    pod.ns.netfilter = new IptablesHooks(pod.ns, `*filter\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A ${chain} -p tcp --tcp-flags ${flags} -j DROP\nCOMMIT\n`);
    const r = runConnection(g, { from: FRONTEND, to: "pod/shop/db-0:5432", protocol: "TCP", packets: 1 }, 41100, "test");
    expect(r.verdict).toBe("dropped");
    expect(r.drop_reason).toBe(`handshake completed, then ${step} lost: netfilter drop in ${pod.ns.name}`);
    const node = g.nodes.find((n) => n.name === g.pods.find((p) => p.key === FRONTEND)!.node)!;
    const line = formatList((node.ns.netfilter as IptablesHooks).conntrack).split("\n").find((l) => l.includes("sport=41100 dport=5432"));
    expect(line).toMatch(new RegExp(`^tcp\\s+6 \\d+ ${state} `));
  });
});

describe("UDP and ICMP", () => {
  it.each(GENS)("gen %i: 4 datagrams each way to kube-dns", (gen) => {
    const { r, sent } = run(gen, { from: FRONTEND, to: "service/kube-system/kube-dns:53", protocol: "UDP", packets: 4 });
    expect(r.verdict, r.drop_reason ?? "").toBe("allowed");
    expect(r.dst_pod).toMatch(/^kube-system\/coredns-/);
    expect(sent[IPPROTO_UDP]).toBe(8);
    expect(r.src_seen!.split(":")[0]).toBe(built[gen]!.pods.find((p) => p.key === FRONTEND)!.ip);
  });

  it.each(GENS)("gen %i: 3 echo requests to a pod on another node, each answered by its kernel", (gen) => {
    const { r, sent } = run(gen, { from: FRONTEND, to: "pod/shop/db-0", protocol: "ICMP", packets: 3 });
    expect(r.verdict, r.drop_reason ?? "").toBe("allowed");
    expect(r.dst_pod).toBe("shop/db-0");
    expect(r.dst).toBe(built[gen]!.pods.find((p) => p.key === "shop/db-0")!.ip);
    expect(sent[IPPROTO_ICMP]).toBe(6);
  });

  it("an echo answer with no way back says so (the internet forgets its route to the VPC)", () => {
    const g = buildWithPolicy(2, cluster, { seed: 1 });
    const ok = runConnection(g, { from: FRONTEND, to: "8.8.8.8", protocol: "ICMP", packets: 2 }, 41001, "test");
    const node = g.nodes.find((n) => n.name === g.pods.find((p) => p.key === FRONTEND)!.node)!;
    expect([ok.verdict, ok.dst, ok.src_seen]).toEqual(["allowed", "8.8.8.8", node.ip]);
    exec(g.external.ns, `ip route del ${g.options.vpcCIDR}`);
    const r = runConnection(g, { from: FRONTEND, to: "8.8.8.8", protocol: "ICMP", packets: 2 }, 41002, "test");
    expect([r.delivered, r.verdict]).toEqual([true, "dropped"]);
    expect(r.drop_reason).toBe(`echo reply 1/2 lost: internet has no route back to ${node.ip} (the source it saw)`);
  });
});

describe("DNS names: resolved by the client pod through CoreDNS (kube-dns Service), search list and ndots:5", () => {
  it.each(GENS)("gen %i: example.com:443 takes 3 NXDOMAIN (shop.svc, svc, cluster.local) and a 4th query answered upstream", (gen) => {
    const { r, sent } = run(gen, { from: FRONTEND, to: "example.com:443", protocol: "TCP" });
    expect(r.dns_queries).toBe(4);
    expect(r.dns_nxdomain).toBe(3);
    expect(r.resolved).toMatch(/^203\.0\.113\.\d+$/);
    expect(r.verdict, r.drop_reason ?? "").toBe("allowed");
    expect(r.dst).toBe(`${r.resolved}:443`);
    expect(r.dst_pod).toBeNull();
    const g = built[gen]!;
    const node = g.nodes.find((n) => n.name === g.pods.find((p) => p.key === FRONTEND)!.node)!;
    expect(r.src_seen!.split(":")[0]).toBe(node.ip);
    // 4 queries + 4 answers from the pod's view, 1 forward + 1 answer between CoreDNS and the upstream; the
    // connection's 3 + 2 + 4 segments.
    expect(sent[IPPROTO_UDP]).toBe(4 * 2 + 2);
    expect(sent[IPPROTO_TCP]).toBe(9);
  });

  it("a Service's short name is found at the first search domain; NAME.NS at the second; an FQDN skips the list", () => {
    const svcIP = cluster.services.find((s) => s.metadata.name === "backend")!.clusterIP;
    const short = run(2, { from: FRONTEND, to: "backend:8080", protocol: "TCP" }).r;
    expect([short.dns_queries, short.dns_nxdomain, short.resolved, short.verdict]).toEqual([1, 0, svcIP, "allowed"]);
    expect(short.dst_pod).toMatch(/^shop\/backend-/);
    const withNs = run(2, { from: FRONTEND, to: "backend.shop:8080", protocol: "TCP" }).r;
    expect([withNs.dns_queries, withNs.dns_nxdomain, withNs.resolved]).toEqual([2, 1, svcIP]);
    const fqdn = run(2, { from: FRONTEND, to: "backend.shop.svc.cluster.local.:8080", protocol: "TCP" }).r;
    expect([fqdn.dns_queries, fqdn.dns_nxdomain, fqdn.resolved]).toEqual([1, 0, svcIP]);
    const ext = run(2, { from: FRONTEND, to: "example.com.:443", protocol: "TCP" }).r;
    expect([ext.dns_queries, ext.dns_nxdomain]).toEqual([1, 0]);
  });

  it("a name nobody knows: every candidate NXDOMAIN, nothing sent to a destination", () => {
    const { r, sent } = run(3, { from: FRONTEND, to: "nosuch:80", protocol: "TCP" });
    expect(r).toMatchObject({ delivered: false, verdict: "dropped", dns_queries: 4, dns_nxdomain: 4, resolved: null, dst: null });
    expect(r.drop_reason).toBe("DNS: nosuch not found (4 queries, 4 NXDOMAIN)");
    expect(sent[IPPROTO_TCP]).toBe(0);
  });

  it("a hostNetwork pod resolves with the node's resolv.conf: the upstream directly, no search list, no cluster names", () => {
    const exporter = built[2]!.pods.find((p) => p.hostNetwork)!;
    const ext = run(2, { from: exporter.key, to: "example.com:443", protocol: "TCP" }).r;
    expect([ext.dns_queries, ext.dns_nxdomain, ext.verdict]).toEqual([1, 0, "allowed"]);
    expect(ext.src_seen!.split(":")[0]).toBe(exporter.ip);
    const svc = run(2, { from: exporter.key, to: "backend.shop.svc.cluster.local:8080", protocol: "TCP" }).r;
    expect(svc).toMatchObject({ dns_queries: 1, dns_nxdomain: 1, resolved: null, delivered: false });
  });

  it("without a kube-dns Service a DNS-name flow is a located error", () => {
    const c2 = loadDemoCluster();
    c2.services = c2.services.filter((s) => s.metadata.name !== "kube-dns");
    const g = buildWithPolicy(2, c2, { seed: 1 });
    expect(() => runConnection(g, { from: FRONTEND, to: "backend:8080", protocol: "TCP" }, 42000, "workload entry 3")).toThrow(
      expect.objectContaining({ where: "workload entry 3, to", message: expect.stringContaining("no kube-dns Service") }),
    );
  });
});

describe("errors name the workload entry and field", () => {
  const cases: [Partial<FlowSpec>, string, RegExp][] = [
    [{ from: "shop/nope" }, "test, from", /no running pod shop\/nope/],
    [{ to: "service/shop/backend:81" }, "test, to", /has no TCP port 81/],
    [{ to: "service/shop/nope:80" }, "test, to", /no Service shop\/nope/],
    [{ to: "pod/shop/nope:80" }, "test, to", /no running pod/],
    [{ to: "backend" }, "test, to", /has no port/],
    [{ packets: 0 }, "test, packets", /positive integer/],
  ];
  it.each(cases)("%j", (over, where, msg) => {
    const spec = { from: FRONTEND, to: "service/shop/backend:8080", protocol: "TCP", ...over } as FlowSpec;
    let err: unknown;
    try {
      runConnection(built[2]!, spec, 43000, "test");
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(WorkloadError);
    expect((err as WorkloadError).where).toBe(where);
    expect((err as Error).message).toMatch(msg);
  });
});
