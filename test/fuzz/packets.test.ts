// Hostile packets through every generation's full path. Each packet is received on a node device (a pod's
// host-side veth, so a hostile pod; or the node's uplink, so the outside) and must end delivered, dropped with a
// reason, or answered (ICMP error / RST); nothing may throw out of the model. Gen 4 runs its eBPF chains (lb4,
// policy with the Cilium policy installed, SNAT, flowlog) on every packet: every program run and every
// TC_ACT_SHOT (traps included, some forced by a starved instruction budget) must show in the trace, and every
// map must stay consistent. Martians Linux refuses whatever the sysctls must end dropped everywhere. Seeded.
// TCBOX_FUZZ_LONG=1 runs 1,000,000 packets per generation; TCBOX_FUZZ_N=n any other size; TCBOX_FUZZ_GENS=4
// (comma list) selects generations. The default runs a few thousand per generation.
import { describe, expect, it } from "vitest";
import { loadDemoCluster } from "../../src/k8s/demo-cluster.js";
import { buildGeneration, type BuiltGeneration, type GenNumber } from "../../src/gens/index.js";
import { buildGen4, prepareGen4Programs, type BuiltGen4 } from "../../src/gens/gen4.js";
import { installCiliumPolicy } from "../../src/gens/policy-cilium.js";
import { checkKernelMaps, gen4Programs, programTotals, totalsSince, type ProgramTotals } from "./maps-check.js";
import { buildUdp, get32, parseIpv4 } from "../../src/packet/index.js";
import { getMac, sendUdp, type NetDevice } from "../../src/net/index.js";
import { Drop, DROP_NAMES } from "../../src/net/index.js";
import { M_COUNT } from "../../src/ebpf/maps/layout.js";
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

/**
 * Martians Linux refuses whatever the sysctls (route.c): sources 0.0.0.0, 255.255.255.255 and multicast, and the
 * destination 0.0.0.0. (127/8 depends on route_localnet, which the nodes set; 169.254/16 and 240/4 are not
 * martians to Linux.) These must never be delivered, forwarded out or answered.
 */
function strictMartian(ip: Uint8Array, mutation: string): boolean {
  if (ip.length < 20) return false;
  const src = get32(ip, 12), dst = get32(ip, 16);
  if (mutation === "martian-src") return src === 0 || src === 0xffffffff || src >>> 28 === 0xe;
  return mutation === "martian-dst" && dst === 0;
}

let fuzzedGen4: BuiltGen4 | undefined;

const GENS = (process.env.TCBOX_FUZZ_GENS ?? "1,2,3,4").split(",").map(Number) as GenNumber[];

/** Each generation as compare builds it: Gen 4 with its programs compiled and the Cilium policy installed. */
export async function buildForFuzz(gen: GenNumber, seed: number): Promise<BuiltGeneration> {
  if (gen !== 4) return buildGeneration(gen, loadDemoCluster(), { seed });
  await prepareGen4Programs();
  const g4 = buildGen4(loadDemoCluster(), { seed });
  installCiliumPolicy(g4);
  return g4;
}

export function fuzzGeneration(g: BuiltGeneration, n: number, seed: number): { tally: FuzzTally; ms: number; programs: ProgramTotals } {
  const gen = g.gen;
  const kernels = (g as Partial<BuiltGen4>).ebpf?.map((x) => x.kernel) ?? [];
  const progs = g.gen === 4 ? gen4Programs(g as BuiltGen4) : [];
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
  const before = programTotals(progs);
  const t0 = performance.now();
  // Gen 4: for one packet in 8, the first node's programs run on a starved instruction budget (a runaway
  // program's fate): they trap at random points, mid map update included; the packet is dropped and counted.
  const starve = kernels[0];
  const budget = starve?.budget ?? 0;
  for (let i = 0; i < n; i++) {
    if (starve !== undefined) starve.budget = (i & 7) === 7 ? 1 + Math.floor(r() * 300) : budget;
    const e = ents[Math.floor(r() * ents.length)]!;
    const { ip, mutation } = hostilePacket(r, { dsts, src: e.src });
    inject(g.world, e.dev, e.srcMac, ip, tally, strictMartian(ip, mutation) ? `${mutation}:strict` : mutation, e.dstMac);
    if ((i & 1023) === 1023) {
      // conntrack and neighbour timers move on, and the eBPF clock (CT map lifetimes) with them
      g.world.advance(0.5);
      for (const k of kernels) k.ktimeNs += 500_000_000n;
    }
  }
  if (starve !== undefined) starve.budget = budget;
  const ms = performance.now() - t0;
  return { tally, ms, programs: totalsSince(before, programTotals(progs)) };
}

describe.each(GENS)("fuzz: hostile packets through Gen %i", (gen) => {
  it(`${N} packets: no crash; every packet delivered, dropped with a reason, or answered`, async () => {
    const g = await buildForFuzz(gen, SEED);
    const { tally, ms, programs } = fuzzGeneration(g, N, SEED);
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
    // Strict martians end dropped (as martians, or earlier: a netfilter or tc drop, a bad header).
    for (const m of ["martian-src:strict", "martian-dst:strict"]) {
      const outcomes = tally.byMutation[m] ?? {};
      expect(Object.values(outcomes).reduce((a, b) => a + b, 0), m).toBeGreaterThan(0);
      expect(Object.keys(outcomes).filter((k) => !k.startsWith("dropped:")), `${m}: ${JSON.stringify(outcomes)}`).toEqual([]);
    }
    expect(tally.dropReasons[Drop.MARTIAN] ?? 0).toBeGreaterThan(0);
    expect(tally.dropReasons[Drop.MARTIAN_DST] ?? 0).toBeGreaterThan(0);
    // The mix really was hostile: most packets were dropped, some valid ones still got through.
    expect(tally.outcomes.dropped).toBeGreaterThan(N / 3);
    expect(tally.outcomes.delivered + tally.outcomes.icmp).toBeGreaterThan(0);
    if (gen === 4) fuzzedGen4 = g as BuiltGen4;
    if (gen === 4) checkGen4(g as BuiltGen4, tally, programs, LONG || process.env.TCBOX_FUZZ_N !== undefined);
  }, LONG ? 7_200_000 : 120_000);
});

it("the generator covers every mutation", () => {
  const r = rng(1);
  const seen = new Set<string>();
  for (let i = 0; i < 2000; i++) seen.add(hostilePacket(r, { dsts: [parseIpv4("10.0.0.1")], src: parseIpv4("10.0.0.2") }).mutation);
  expect([...seen].sort()).toEqual([...MUTATIONS].sort());
});

/**
 * Gen 4's programs accounted: every run of a chain is a tc hook run in the trace, every TC_ACT_SHOT (a verdict or
 * a trap: budget, out of bounds, abort) is a TC_SHOT drop in the trace, and every map's element count matches
 * its elements.
 */
function checkGen4(g: BuiltGen4, tally: FuzzTally, t: ProgramTotals, report: boolean): void {
  if (report) process.stderr.write(`fuzz gen 4: program runs ${t.runs}, TC_ACT_SHOT ${t.shots}, traps ${JSON.stringify(t.traps)}\n`);
  expect(t.runs).toBe(tally.tcRuns);
  expect(t.shots).toBe(tally.dropEvents[Drop.TC_SHOT] ?? 0);
  expect(t.traps.budget).toBeGreaterThan(0);
  for (const n of g.ebpf) expect(checkKernelMaps(n.kernel), `node ${n.name}`).toEqual([]);
}

it("the map check catches a map whose count disagrees with its elements", async () => {
  // The fuzzed Gen 4 when that ran (its maps full of hostile traffic's entries), else a fresh one.
  const g = fuzzedGen4 ?? ((await buildForFuzz(4, 1)) as BuiltGen4);
  const k = g.ebpf[0]!.kernel;
  expect(checkKernelMaps(k)).toEqual([]);
  const m = [...k.objects].flatMap((o) => [...o.maps.values()]).find((x) => x.count > 0 && x.spec.type !== 2 && x.spec.type !== 6)!;
  const at = (m.base + M_COUNT) >>> 2;
  m.mem.u32[at]!++;
  expect(checkKernelMaps(k).join("\n")).toContain(`map ${m.name}: count ${m.count}`);
  m.mem.u32[at]!--;
}, 120_000);

it("Gen 1: a martian source DNATed to a pod on the same bridge is refused by the input route (br_nf_pre_routing_finish), not masqueraded and delivered", async () => {
  const g = await buildForFuzz(1, SEED);
  const dns = g.pods.find((p) => p.key.startsWith("kube-system/coredns"))!;
  const client = g.pods.find((p) => p.node === dns.node && p.hostIf !== null && p !== dns)!;
  const dev = g.nodes.find((n) => n.name === dns.node)!.ns.dev(client.hostIf!);
  const gw = g.nodes.find((n) => n.name === dns.node)!.ns.dev("cni0").mac;
  for (const [src, want] of [["255.255.255.255", "dropped"], ["0.0.0.0", "dropped"], [client.ip, "delivered"]] as const) {
    const tally = newTally();
    const ip = buildUdp({ src, dst: "10.96.0.10", sport: 5353, dport: 53, payload: new Uint8Array(12) }).subarray(14);
    inject(g.world, dev, client.ns.dev("eth0").mac, ip, tally, "valid", gw);
    expect(tally.outcomes[want], `${src}: ${JSON.stringify(tally.outcomes)}`).toBe(1);
    if (want === "dropped") expect(tally.dropReasons).toEqual({ [Drop.MARTIAN]: 1 });
  }
});
