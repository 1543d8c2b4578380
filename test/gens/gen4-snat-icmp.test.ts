// Gen 4's masquerade of ICMP (programs/snat.ts on the uplink's tc hooks) against Gen 1-3's netfilter MASQUERADE:
// a pod's ping to an internet address leaves with the node IP (valid IP and ICMP checksums) and the reply comes
// back to the pod with its echo id; two pods of one node pinging with the same id each get their own reply; a
// TTL exceeded error about a pod's UDP datagram reaches the pod with its own address and port quoted. The compare
// engine gives the same delivered/verdict/src_seen in every generation.
import { beforeAll, describe, expect, it } from "vitest";
import { loadDemoCluster } from "../../src/k8s/demo-cluster.js";
import { buildGen4, prepareGen4Programs } from "../../src/gens/gen4.js";
import { buildGeneration, nodeOf, type BuiltGeneration, type PodPlane } from "../../src/gens/index.js";
import { compare, type CompareJson } from "../../src/compare/run.js";
import { IPPROTO_ICMP, sendIcmpEcho, sendUdp, type Pkt } from "../../src/net/index.js";
import { csumFinish, csumPartial, formatIpv4, get16, get32, ipv4HeaderChecksum, parseIpv4 } from "../../src/packet/index.js";

const cluster = loadDemoCluster();
const gens: BuiltGeneration[] = [];
let cmp: CompareJson;
const INTERNET = "8.8.8.8";

beforeAll(async () => {
  await prepareGen4Programs();
  for (const n of [1, 2, 3] as const) gens.push(buildGeneration(n, cluster));
  gens.push(buildGen4(cluster));
  const from = gens[0]!.pods.find((p) => p.key.startsWith("shop/frontend"))!.key;
  cmp = await compare(cluster, [{ from, to: INTERNET, protocol: "ICMP", packets: 2, count: 2 }], [1, 2, 3, 4], 1);
}, 600_000);

/** What a receiver saw of an ICMP packet: addresses, type, id, and whether the IP and ICMP checksums hold. */
function seen(p: Pkt) {
  const b = p.buf;
  const l3 = p.off + 14;
  const ihl = (b[l3]! & 15) << 2;
  const l4 = l3 + ihl;
  const len = get16(b, l3 + 2) - ihl;
  return {
    src: formatIpv4(get32(b, l3 + 12)),
    dst: formatIpv4(get32(b, l3 + 16)),
    type: b[l4]!,
    id: get16(b, l4 + 4),
    ipCsum: ipv4HeaderChecksum(b, l3, ihl) === get16(b, l3 + 10),
    icmpCsum: csumFinish(csumPartial(b, l4, len)) === 0,
    l4,
  };
}

/** Pods of node-1 not on the host network. */
const podsOn1 = (g: BuiltGeneration): PodPlane[] => g.pods.filter((p) => p.node === "node-1" && !p.hostNetwork);

function ping(g: BuiltGeneration, pods: PodPlane[], id: number) {
  const inet: ReturnType<typeof seen>[] = [];
  const back = new Map<PodPlane, ReturnType<typeof seen>[]>();
  const srv = g.external.ns.bind(IPPROTO_ICMP, 0, 0);
  srv.onReceive = (p) => void inet.push(seen(p));
  const socks = pods.map((pod) => {
    const s = pod.ns.bind(IPPROTO_ICMP, 0, 0);
    back.set(pod, []);
    s.onReceive = (p) => void back.get(pod)!.push(seen(p));
    return s;
  });
  try {
    pods.forEach((pod, i) => expect(sendIcmpEcho(pod.ns, { dst: parseIpv4(INTERNET), id, seq: i + 1, payload: 24 })).toBeGreaterThan(0));
    g.world.run();
  } finally {
    g.external.ns.sockets.close(srv);
    pods.forEach((pod, i) => pod.ns.sockets.close(socks[i]!));
  }
  return { inet, back };
}

describe.each([1, 2, 3, 4])("Gen %i: pod pings to the internet", (gen) => {
  const g = () => gens[gen - 1]!;

  it("the echo leaves with the node IP (valid checksums) and the reply reaches the pod with its id", () => {
    const a = podsOn1(g())[0]!;
    const node = nodeOf(g(), "node-1").ip;
    const { inet, back } = ping(g(), [a], 0x2a2a);
    const req = inet.find((x) => x.type === 8)!;
    expect(req).toMatchObject({ src: node, dst: INTERNET, ipCsum: true, icmpCsum: true });
    const rep = back.get(a)!.filter((x) => x.type === 0);
    expect(rep).toEqual([expect.objectContaining({ src: INTERNET, dst: a.ip, id: 0x2a2a, ipCsum: true, icmpCsum: true })]);
  });

  it("two pods of one node pinging with the same id each get their own reply", () => {
    const [a, b] = podsOn1(g());
    expect(b, "node-1 needs two pods").toBeDefined();
    const { inet, back } = ping(g(), [a!, b!], 0x3b3b);
    const ids = inet.filter((x) => x.type === 8).map((x) => x.id);
    expect(ids).toHaveLength(2);
    expect(new Set(ids).size).toBe(2);
    for (const p of [a!, b!]) expect(back.get(p)!.filter((x) => x.type === 0).map((x) => [x.dst, x.id, x.icmpCsum])).toEqual([[p.ip, 0x3b3b, true]]);
  });

  it("a TTL exceeded about a pod's UDP datagram to the internet comes back to the pod quoting its own address and port", () => {
    const a = podsOn1(g())[0]!;
    const got: ReturnType<typeof seen>[] = [];
    const inner: { src: string; sport: number; ipCsum: boolean }[] = [];
    const s = a.ns.bind(IPPROTO_ICMP, 0, 0);
    s.onReceive = (p) => {
      const x = seen(p);
      got.push(x);
      const l3 = x.l4 + 8;
      const ihl = (p.buf[l3]! & 15) << 2;
      inner.push({ src: formatIpv4(get32(p.buf, l3 + 12)), sport: get16(p.buf, l3 + ihl), ipCsum: ipv4HeaderChecksum(p.buf, l3, ihl) === get16(p.buf, l3 + 10) });
    };
    try {
      // TTL 2: node-1 forwards with 1 left, the router cannot forward it.
      expect(sendUdp(a.ns, { dst: parseIpv4(INTERNET), sport: 41999, dport: 33434, ttl: 2, payload: 12 })).toBeGreaterThan(0);
      g().world.run();
    } finally {
      a.ns.sockets.close(s);
    }
    expect(got).toEqual([expect.objectContaining({ dst: a.ip, type: 11, ipCsum: true, icmpCsum: true })]);
    expect(inner).toEqual([{ src: a.ip, sport: 41999, ipCsum: true }]);
  });
});

describe("compare: an ICMP workload entry to an internet address", () => {
  it("is delivered in every generation, seen from the node's address, with no disagreement", () => {
    expect(cmp.summary.disagreements).toEqual([]);
    for (const f of cmp.flows) {
      const node = cluster.pods.find((p) => `${p.metadata.namespace}/${p.metadata.name}` === f.from)!.nodeName!;
      for (const g of ["1", "2", "3", "4"]) {
        const x = f.results[g]!;
        expect(x.delivered, `gen ${g}: ${x.drop_reason}`).toBe(true);
        expect(x.verdict).toBe("allowed");
        expect(x.src_seen).toBe(cmp.addresses[g]!.nodes[node]);
      }
    }
  });
});
