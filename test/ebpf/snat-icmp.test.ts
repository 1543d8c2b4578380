// programs/snat.ts and ICMP (Cilium's bpf/lib/nat.h IPPROTO_ICMP cases): echo requests leave with the node IP
// and an echo id allocated like a port, echo replies come back to the pod with its id, ICMP errors about
// masqueraded connections get their embedded header translated both ways; every checksum recomputed from scratch.
import { beforeAll, describe, expect, it } from "vitest";
import { buildIcmpEcho, buildIcmpError, buildTcp, buildUdp, csumFinish, csumPartial, formatIpv4, get16, get32, ipv4HeaderChecksum, l4Checksum, parseIpv4 } from "../../src/packet/index.js";
import { BpfKernel, type BpfObject } from "../../src/ebpf/kernel.js";
import type { BpfProgram } from "../../src/ebpf/program.js";
import { configureSnat } from "../../src/k8s/agent/snat-maps.js";
import { checksumsValid, hdr, IP } from "../programs/lb4-helpers.js";

const OK = 0;
const NODE = "192.168.1.10";
const REMOTE = "8.8.8.8";
const ROUTER = "203.0.113.1";
let kernel: BpfKernel;
let obj: BpfObject;
let snat: BpfProgram;

beforeAll(async () => {
  kernel = new BpfKernel({ seed: 7 });
  obj = await kernel.load("programs/snat.ts");
  snat = obj.program();
  configureSnat(kernel, { clusterCidr: "10.244.0.0/16", nodeIp: NODE });
}, 120_000);

const l4of = (p: Uint8Array, l3 = IP) => l3 + ((p[l3]! & 15) << 2);
/** The ICMP checksum recomputed over the whole message (no pseudo-header) equals the one in the packet. */
function icmpChecksumValid(p: Uint8Array): boolean {
  const l4 = l4of(p);
  const len = get16(p, IP + 2) - (l4 - IP);
  const c = p.slice();
  c[l4 + 2] = 0;
  c[l4 + 3] = 0;
  return csumFinish(csumPartial(c, l4, len)) === get16(p, l4 + 2);
}
const echoId = (p: Uint8Array) => get16(p, l4of(p) + 4);
const run = (p: Uint8Array) => {
  const r = snat.run(p);
  expect(r.retval).toBe(OK);
  return r.packet;
};

/** The header embedded in an ICMP error: addresses, ports (echo: id as sport), and whether its IP checksum holds. */
function inner(p: Uint8Array) {
  const l3 = l4of(p) + 8;
  const l4 = l4of(p, l3);
  const proto = p[l3 + 9]!;
  const ihl = l4 - l3;
  return {
    saddr: formatIpv4(get32(p, l3 + 12)),
    daddr: formatIpv4(get32(p, l3 + 16)),
    sport: proto === 1 ? get16(p, l4 + 4) : get16(p, l4),
    dport: proto === 1 ? 0 : get16(p, l4 + 2),
    ipCsumOk: ipv4HeaderChecksum(p, l3, ihl) === get16(p, l3 + 10),
    l3,
    l4,
  };
}

describe("snat ICMP echo", () => {
  it("an echo request leaves with the node IP, its free id kept; the reply comes back to the pod with its id", () => {
    const req = buildIcmpEcho({ src: "10.244.1.5", dst: REMOTE, id: 0x1234, seq: 1, payload: new Uint8Array(56).fill(7) });
    const out = run(req);
    expect(hdr(out)).toMatchObject({ saddr: NODE, daddr: REMOTE, proto: 1 });
    expect(echoId(out)).toBe(0x1234);
    expect(checksumsValid(out)).toBe(true);
    expect(icmpChecksumValid(out)).toBe(true);
    const nat = obj.map("cilium_snat_v4_external").typed();
    expect(nat.lookup({ saddr: "10.244.1.5", daddr: REMOTE, sport: 0x1234, dport: 0, nexthdr: 1, flags: 0 })).toMatchObject({ to_addr: NODE, to_port: 0x1234 });
    expect(nat.lookup({ saddr: REMOTE, daddr: NODE, sport: 0, dport: 0x1234, nexthdr: 1, flags: 1 })).toMatchObject({ to_addr: "10.244.1.5", to_port: 0x1234 });

    const back = run(buildIcmpEcho({ src: REMOTE, dst: NODE, id: 0x1234, seq: 1, reply: true, payload: new Uint8Array(56).fill(7) }));
    expect(hdr(back)).toMatchObject({ saddr: REMOTE, daddr: "10.244.1.5", proto: 1 });
    expect(echoId(back)).toBe(0x1234);
    expect(checksumsValid(back)).toBe(true);
    expect(icmpChecksumValid(back)).toBe(true);
  });

  it("a second pod pinging the same address with the same id gets another id; each reply reaches its pod", () => {
    const out = run(buildIcmpEcho({ src: "10.244.2.6", dst: REMOTE, id: 0x1234, seq: 9 }));
    const id2 = echoId(out);
    expect(hdr(out).saddr).toBe(NODE);
    expect(id2).not.toBe(0x1234);
    expect(icmpChecksumValid(out)).toBe(true);
    expect(checksumsValid(out)).toBe(true);
    // Later requests reuse the mapping.
    expect(echoId(run(buildIcmpEcho({ src: "10.244.2.6", dst: REMOTE, id: 0x1234, seq: 10 })))).toBe(id2);
    const b2 = run(buildIcmpEcho({ src: REMOTE, dst: NODE, id: id2, seq: 10, reply: true }));
    expect(hdr(b2).daddr).toBe("10.244.2.6");
    expect(echoId(b2)).toBe(0x1234);
    expect(icmpChecksumValid(b2)).toBe(true);
    expect(checksumsValid(b2)).toBe(true);
    expect(hdr(run(buildIcmpEcho({ src: REMOTE, dst: NODE, id: 0x1234, seq: 2, reply: true }))).daddr).toBe("10.244.1.5");
  });

  it("an id outside the TCP/UDP port range is kept (the id is not clamped)", () => {
    const out = run(buildIcmpEcho({ src: "10.244.1.7", dst: "1.1.1.1", id: 7, seq: 1 }));
    expect(hdr(out).saddr).toBe(NODE);
    expect(echoId(out)).toBe(7);
  });

  it.each([
    ["an echo reply to the node with no mapping", buildIcmpEcho({ src: REMOTE, dst: NODE, id: 0x4444, seq: 1, reply: true })],
    ["the node's own echo request", buildIcmpEcho({ src: NODE, dst: REMOTE, id: 0x1234, seq: 1 })],
    ["an in-cluster echo request", buildIcmpEcho({ src: "10.244.1.5", dst: "10.244.3.3", id: 0x1234, seq: 1 })],
    ["a pod's echo reply to an outside address (Cilium punts it to the stack)", buildIcmpEcho({ src: "10.244.1.5", dst: REMOTE, id: 0x1234, seq: 1, reply: true })],
  ])("%s passes unchanged", (_, pkt) => {
    expect(Buffer.from(run(pkt)).equals(Buffer.from(pkt))).toBe(true);
  });
});

describe("snat ICMP errors about masqueraded connections", () => {
  it("TTL exceeded for a masqueraded UDP datagram: outer and embedded headers back to the pod, every checksum valid", () => {
    const sent = run(buildUdp({ src: "10.244.1.5", dst: REMOTE, sport: 1053, dport: 53, payload: new Uint8Array(21).fill(3) }));
    const natPort = hdr(sent).sport;
    expect(natPort).not.toBe(1053);
    // The router quotes the whole datagram, as Linux does up to 576 bytes.
    const err = buildIcmpError(11, 0, sent, { src: ROUTER, quoteLen: 1000 });
    const back = run(err);
    expect(hdr(back)).toMatchObject({ saddr: ROUTER, daddr: "10.244.1.5", proto: 1 });
    const i = inner(back);
    expect(i).toMatchObject({ saddr: "10.244.1.5", daddr: REMOTE, sport: 1053, dport: 53, ipCsumOk: true });
    expect(l4Checksum(back, i.l4, 8 + 21, 6, parseIpv4("10.244.1.5"), parseIpv4(REMOTE), 17)).toBe(get16(back, i.l4 + 6));
    expect(checksumsValid(back)).toBe(true);
    expect(icmpChecksumValid(back)).toBe(true);
  });

  it("fragmentation needed quoting 8 bytes of a masqueraded TCP segment: address and port restored, no TCP checksum to fix", () => {
    const sent = run(buildTcp({ src: "10.244.4.4", dst: REMOTE, sport: 1000, dport: 443, flags: 0x10, payload: new Uint8Array(100) }));
    const natPort = hdr(sent).sport;
    const back = run(buildIcmpError(3, 4, sent, { src: ROUTER, rest: 1400 }));
    expect(hdr(back).daddr).toBe("10.244.4.4");
    expect(inner(back)).toMatchObject({ saddr: "10.244.4.4", sport: 1000, dport: 443, ipCsumOk: true });
    expect(natPort).not.toBe(1000);
    expect(icmpChecksumValid(back)).toBe(true);
    expect(checksumsValid(back)).toBe(true);
  });

  it("destination unreachable about a masqueraded echo request: the embedded id is the pod's again", () => {
    const sent = run(buildIcmpEcho({ src: "10.244.2.6", dst: REMOTE, id: 0x1234, seq: 11, payload: new Uint8Array(8) }));
    const id2 = echoId(sent);
    expect(id2).not.toBe(0x1234);
    const back = run(buildIcmpError(3, 1, sent, { src: ROUTER, quoteLen: 1000 }));
    expect(hdr(back).daddr).toBe("10.244.2.6");
    const i = inner(back);
    expect(i).toMatchObject({ saddr: "10.244.2.6", daddr: REMOTE, sport: 0x1234, ipCsumOk: true });
    const c = back.slice(i.l4, back.length);
    expect(csumFinish(csumPartial(c, 0, c.length))).toBe(0); // the embedded echo's own checksum holds
    expect(icmpChecksumValid(back)).toBe(true);
    expect(checksumsValid(back)).toBe(true);
  });

  it("a pod's port unreachable about a reply of its masqueraded UDP flow leaves with the node's address inside and out", () => {
    const sent = run(buildUdp({ src: "10.244.1.9", dst: REMOTE, sport: 2053, dport: 53, payload: new Uint8Array(4) }));
    const natPort = hdr(sent).sport;
    const reply = run(buildUdp({ src: REMOTE, dst: NODE, sport: 53, dport: natPort, payload: new Uint8Array(12).fill(1) }));
    expect(hdr(reply)).toMatchObject({ daddr: "10.244.1.9", dport: 2053 });
    const out = run(buildIcmpError(3, 3, reply, { quoteLen: 1000 }));
    expect(hdr(out)).toMatchObject({ saddr: NODE, daddr: REMOTE, proto: 1 });
    const i = inner(out);
    expect(i).toMatchObject({ saddr: REMOTE, daddr: NODE, sport: 53, dport: natPort, ipCsumOk: true });
    expect(l4Checksum(out, i.l4, 8 + 12, 6, parseIpv4(REMOTE), parseIpv4(NODE), 17)).toBe(get16(out, i.l4 + 6));
    expect(icmpChecksumValid(out)).toBe(true);
    expect(checksumsValid(out)).toBe(true);
  });

  it("an error about a connection with no mapping passes unchanged", () => {
    const pkt = buildIcmpError(11, 0, buildUdp({ src: NODE, dst: REMOTE, sport: 61000, dport: 53, payload: new Uint8Array(4) }), { src: ROUTER });
    expect(Buffer.from(run(pkt)).equals(Buffer.from(pkt))).toBe(true);
  });
});
