// programs/snat.ts: masquerading out of the cluster CIDR, port keeping and collision handling, reverse
// translation of replies, checksums after every rewrite, and exhaustion of the port range.
import { beforeAll, describe, expect, it } from "vitest";
import { buildIcmpEcho, buildTcp, buildUdp } from "../../src/packet/index.js";
import { BpfKernel, type BpfObject } from "../../src/ebpf/kernel.js";
import type { BpfProgram } from "../../src/ebpf/program.js";
import { configureSnat } from "../../src/k8s/agent/snat-maps.js";
import { checksumsValid, hdr } from "./lb4-helpers.js";

const OK = 0;
const SHOT = 2;
const NODE = "192.168.1.10";
const REMOTE = "93.184.216.34";
let kernel: BpfKernel;
let obj: BpfObject;
let snat: BpfProgram;

beforeAll(async () => {
  kernel = new BpfKernel({ seed: 5 });
  obj = await kernel.load("programs/snat.ts");
  snat = obj.program();
  configureSnat(kernel, { clusterCidr: "10.244.0.0/16", nodeIp: NODE });
}, 120_000);

describe("snat", () => {
  it("a pod's connection to the internet leaves from the node IP, keeping its free source port", () => {
    const r = snat.run(buildTcp({ src: "10.244.1.5", dst: REMOTE, sport: 40000, dport: 443, flags: 0x02 }));
    expect(r.retval).toBe(OK);
    expect(hdr(r.packet)).toEqual({ saddr: NODE, daddr: REMOTE, sport: 40000, dport: 443, proto: 6 });
    expect(checksumsValid(r.packet)).toBe(true);
    const nat = obj.map("cilium_snat_v4_external").typed();
    expect(nat.lookup({ saddr: "10.244.1.5", daddr: REMOTE, sport: 40000, dport: 443, nexthdr: 6, flags: 0 })).toMatchObject({ to_addr: NODE, to_port: 40000 });
    expect(nat.lookup({ saddr: REMOTE, daddr: NODE, sport: 443, dport: 40000, nexthdr: 6, flags: 1 })).toMatchObject({ to_addr: "10.244.1.5", to_port: 40000 });
  });

  it("a second pod with the same source port to the same remote gets another port; replies go back to each", () => {
    const r = snat.run(buildTcp({ src: "10.244.2.6", dst: REMOTE, sport: 40000, dport: 443, flags: 0x02 }));
    const p2 = hdr(r.packet).sport;
    expect(hdr(r.packet).saddr).toBe(NODE);
    expect(p2).not.toBe(40000);
    expect(p2).toBeGreaterThanOrEqual(32768);
    expect(checksumsValid(r.packet)).toBe(true);
    // Later packets reuse the mapping.
    expect(hdr(snat.run(buildTcp({ src: "10.244.2.6", dst: REMOTE, sport: 40000, dport: 443, flags: 0x10, payload: new Uint8Array(9) })).packet).sport).toBe(p2);
    const back1 = snat.run(buildTcp({ src: REMOTE, dst: NODE, sport: 443, dport: 40000, flags: 0x12 }));
    expect(hdr(back1.packet)).toEqual({ saddr: REMOTE, daddr: "10.244.1.5", sport: 443, dport: 40000, proto: 6 });
    const back2 = snat.run(buildTcp({ src: REMOTE, dst: NODE, sport: 443, dport: p2, flags: 0x12, payload: new Uint8Array(3) }));
    expect(hdr(back2.packet)).toEqual({ saddr: REMOTE, daddr: "10.244.2.6", sport: 443, dport: 40000, proto: 6 });
    for (const p of [back1.packet, back2.packet]) expect(checksumsValid(p)).toBe(true);
  });

  it("UDP: a source port below the range is moved into it; the reply is restored", () => {
    const r = snat.run(buildUdp({ src: "10.244.1.5", dst: "8.8.8.8", sport: 1053, dport: 53, payload: new Uint8Array(12) }));
    const p = hdr(r.packet).sport;
    expect(p).toBeGreaterThanOrEqual(32768);
    expect(checksumsValid(r.packet)).toBe(true);
    const back = snat.run(buildUdp({ src: "8.8.8.8", dst: NODE, sport: 53, dport: p, payload: new Uint8Array(40) }));
    expect(hdr(back.packet)).toEqual({ saddr: "8.8.8.8", daddr: "10.244.1.5", sport: 53, dport: 1053, proto: 17 });
    expect(checksumsValid(back.packet)).toBe(true);
  });

  it.each([
    ["in-cluster traffic", buildTcp({ src: "10.244.1.5", dst: "10.244.3.3", sport: 1234, dport: 80, flags: 0x02 })],
    ["host traffic to the node with no mapping", buildTcp({ src: REMOTE, dst: NODE, sport: 443, dport: 22, flags: 0x02 })],
    ["the node's own connections", buildTcp({ src: NODE, dst: REMOTE, sport: 50000, dport: 443, flags: 0x02 })],
    ["a pod's ICMP echo reply (echo requests are masqueraded: test/ebpf/snat-icmp.test.ts)", buildIcmpEcho({ src: "10.244.1.5", dst: REMOTE, id: 5, seq: 1, reply: true })],
  ])("%s passes unchanged", (_, pkt) => {
    const r = snat.run(pkt);
    expect(r.retval).toBe(OK);
    expect(Buffer.from(r.packet).equals(Buffer.from(pkt))).toBe(true);
  });

  it("a full port range drops new connections with DROP_NAT_NO_MAPPING (167)", () => {
    configureSnat(kernel, { clusterCidr: "10.244.0.0/16", nodeIp: NODE, minPort: 50000, maxPort: 50001 });
    const verdicts = [1, 2, 3].map((i) => snat.run(buildTcp({ src: `10.244.9.${i}`, dst: "203.0.113.9", sport: 50000, dport: 80, flags: 0x02 })));
    expect(verdicts.slice(0, 2).map((r) => r.retval)).toEqual([OK, OK]);
    expect(new Set(verdicts.slice(0, 2).map((r) => hdr(r.packet).sport))).toEqual(new Set([50000, 50001]));
    expect(verdicts[2]!.retval).toBe(SHOT);
    expect(verdicts[2]!.dropReason).toBe(167);
    expect(obj.map("cilium_metrics").typed().lookup({ reason: 167, dir: 2 })).toMatchObject({ count: 1 });
  });
});
