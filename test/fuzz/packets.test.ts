// Hostile packets through every generation's full path. Each packet is received on a node device (a pod's
// host-side veth, so a hostile pod; or the node's uplink, so the outside) and must end delivered, dropped with a
// reason, or answered (ICMP error / RST); nothing may throw out of the model. Seeded. TCBOX_FUZZ_LONG=1 runs
// 1,000,000 packets per generation (see the report for the figures); the default runs a few thousand.
import { describe, expect, it } from "vitest";
import { loadDemoCluster } from "../../src/k8s/demo-cluster.js";
import { BUILDERS, buildGeneration, type BuiltGeneration, type GenNumber } from "../../src/gens/index.js";
import { parseIpv4 } from "../../src/packet/index.js";
import { getMac, sendUdp, type NetDevice } from "../../src/net/index.js";
import { DROP_NAMES } from "../../src/net/index.js";
import { hostilePacket, inject, MUTATIONS, newTally, rng, type FuzzTally } from "./hostile.js";

const LONG = process.env.TCBOX_FUZZ_LONG === "1";
const N = Number(process.env.TCBOX_FUZZ_N ?? (LONG ? 1_000_000 : 3_000));
const SEED = Number(process.env.TCBOX_FUZZ_SEED ?? 8);

interface Entry {
  dev: NetDevice;
  dstMac: number;
  srcMac: number;
  src: number;
}

/** The destination MAC each pod really uses towards its gateway: one valid packet out, seen at the host side. */
function learnGatewayMacs(g: BuiltGeneration): Map<NetDevice, number> {
  const macs = new Map<NetDevice, number>();
  g.world.tap = (dev, pkt, dir) => {
    if (dir === 0 && !macs.has(dev) && pkt.buf[pkt.off + 12] === 8 && pkt.buf[pkt.off + 13] === 0) macs.set(dev, getMac(pkt.buf, pkt.off));
  };
  for (const p of g.pods) if (p.hostIf !== null) sendUdp(p.ns, { dst: parseIpv4("8.8.8.8"), sport: 1, dport: 53, payload: 4 });
  g.world.run();
  g.world.tap = null;
  return macs;
}

function entries(g: BuiltGeneration): Entry[] {
  const out: Entry[] = [];
  const macs = learnGatewayMacs(g);
  for (const p of g.pods) {
    if (p.hostIf === null) continue;
    const node = g.nodes.find((n) => n.name === p.node)!;
    const dev = node.ns.dev(p.hostIf);
    out.push({ dev, dstMac: macs.get(dev) ?? dev.mac, srcMac: p.ns.dev("eth0").mac, src: parseIpv4(p.ip) });
  }
  for (const n of g.nodes) out.push({ dev: n.ns.dev(n.uplink), dstMac: n.ns.dev(n.uplink).mac, srcMac: 0x020000000001, src: parseIpv4("203.0.113.7") });
  return out;
}

export function fuzzGeneration(gen: GenNumber, n: number, seed: number): { tally: FuzzTally; ms: number } {
  const g = buildGeneration(gen, loadDemoCluster());
  const dsts = [
    ...g.pods.map((p) => parseIpv4(p.ip)),
    ...g.cluster.services.flatMap((s) => (s.clusterIP && s.clusterIP !== "None" ? [parseIpv4(s.clusterIP)] : [])),
    ...g.nodes.map((x) => parseIpv4(x.ip)),
    parseIpv4("8.8.8.8"),
    parseIpv4("10.255.255.255"),
  ];
  const ents = entries(g);
  const r = rng(seed * 31 + gen);
  const tally = newTally();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const e = ents[Math.floor(r() * ents.length)]!;
    const { ip, mutation } = hostilePacket(r, { dsts, src: e.src });
    inject(g.world, e.dev, e.srcMac, ip, tally, mutation, e.dstMac);
    if ((i & 1023) === 1023) g.world.advance(0.5); // conntrack and neighbour timers move on
  }
  return { tally, ms: performance.now() - t0 };
}

describe.each(Object.keys(BUILDERS).map(Number) as GenNumber[])("fuzz: hostile packets through Gen %i", (gen) => {
  it(`${N} packets: no crash; every packet delivered, dropped with a reason, or answered`, () => {
    const { tally, ms } = fuzzGeneration(gen, N, SEED);
    if (LONG || process.env.TCBOX_FUZZ_N) {
      const reasons = Object.entries(tally.dropReasons).map(([k, v]) => `${DROP_NAMES[Number(k)] ?? k}=${v}`).join(" ");
      process.stderr.write(`fuzz gen ${gen}: ${tally.packets} packets in ${(ms / 1000).toFixed(1)} s, crashes ${tally.crashes}, ${JSON.stringify(tally.outcomes)} drops: ${reasons}\n`);
      if (process.env.TCBOX_FUZZ_DETAIL) process.stderr.write(JSON.stringify(tally.byMutation) + "\n");
    }
    expect(tally.firstCrash).toBeUndefined();
    expect(tally.crashes).toBe(0);
    expect(tally.packets).toBe(N);
    expect(tally.outcomes.unaccounted).toBe(0);
    // Every drop carries a named reason.
    for (const k of Object.keys(tally.dropReasons)) expect(DROP_NAMES[Number(k)], `drop reason ${k}`).toBeDefined();
    // The mix really was hostile: most packets were dropped, some valid ones still got through.
    expect(tally.outcomes.dropped).toBeGreaterThan(N / 3);
    expect(tally.outcomes.delivered + tally.outcomes.icmp).toBeGreaterThan(0);
  }, LONG ? 3_600_000 : 60_000);
});

it("the generator covers every mutation", () => {
  const r = rng(1);
  const seen = new Set<string>();
  for (let i = 0; i < 2000; i++) seen.add(hostilePacket(r, { dsts: [parseIpv4("10.0.0.1")], src: parseIpv4("10.0.0.2") }).mutation);
  expect([...seen].sort()).toEqual([...MUTATIONS].sort());
});
