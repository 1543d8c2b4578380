// programs/examples/rewrite_dst.ts, the lb4 core, in Cilium's bpf/tests shape: PKTGEN a packet to a frontend,
// SETUP the services map from the host, CHECK the rewritten bytes with checksums recomputed from scratch.
import { beforeAll, describe, expect, it } from "vitest";
import { buildTcp, buildUdp, get16, get32, ipv4HeaderChecksum, l4Checksum, parseIpv4 } from "../../src/packet/index.js";
import { BpfKernel, type BpfObject } from "../../src/ebpf/kernel.js";
import { TC_ACT_OK } from "../../src/ebpf/abi.js";

let obj: BpfObject;
beforeAll(async () => {
  obj = await new BpfKernel().load("programs/examples/rewrite_dst.ts");
  const svc = obj.map("rewrite_services").typed();
  svc.update({ daddr: "10.96.0.10", dport: 53, proto: 17 }, { addr: "10.0.1.11", port: 5353 });
  svc.update({ daddr: "10.96.0.10", dport: 80, proto: 6 }, { addr: "10.0.1.12", port: 0 });
  svc.update({ daddr: "10.96.0.20", dport: 443, proto: 6 }, { addr: "10.0.1.13", port: 8443 });
});

function checksumsValid(p: Uint8Array): boolean {
  const proto = p[23]!;
  const csumOff = proto === 6 ? 16 : 6;
  const len = get16(p, 16) - 20;
  const l4ok = proto === 17 && get16(p, 40) === 0 ? true : l4Checksum(p, 34, len, csumOff, get32(p, 26), get32(p, 30), proto) === get16(p, 34 + csumOff);
  return ipv4HeaderChecksum(p, 14, 20) === get16(p, 24) && l4ok;
}

const PKTGEN = [
  { name: "UDP to a frontend: address and port rewritten", pkt: buildUdp({ src: "10.0.0.5", dst: "10.96.0.10", sport: 33000, dport: 53, payload: new Uint8Array(30).fill(7) }), dst: "10.0.1.11", dport: 5353 },
  { name: "TCP SYN, backend on the same port", pkt: buildTcp({ src: "10.0.0.5", dst: "10.96.0.10", sport: 33001, dport: 80, flags: 0x02 }), dst: "10.0.1.12", dport: 80 },
  { name: "TCP with payload to another frontend", pkt: buildTcp({ src: "192.168.7.9", dst: "10.96.0.20", sport: 65535, dport: 443, flags: 0x18, payload: new TextEncoder().encode("GET / HTTP/1.1\r\n") }), dst: "10.0.1.13", dport: 8443 },
  { name: "UDP without checksum stays without one", pkt: buildUdp({ src: "10.0.0.5", dst: "10.96.0.10", sport: 33000, dport: 53, udpCsum: false }), dst: "10.0.1.11", dport: 5353 },
  { name: "no such frontend: untouched", pkt: buildTcp({ src: "10.0.0.5", dst: "10.96.0.10", sport: 1, dport: 81, flags: 0x02 }), dst: "10.96.0.10", dport: 81 },
];

describe("rewrite_dst (lb4 core)", () => {
  it.each(PKTGEN)("$name", ({ pkt, dst, dport }) => {
    const r = obj.program().run(pkt);
    expect(r.retval).toBe(TC_ACT_OK);
    expect(get32(r.packet, 30)).toBe(parseIpv4(dst));
    expect(get16(r.packet, 36)).toBe(dport);
    expect(checksumsValid(r.packet)).toBe(true);
    if (pkt[23] === 17 && get16(pkt, 40) === 0) expect(get16(r.packet, 40)).toBe(0);
    // Nothing else changed.
    const diff = [...r.packet].map((b, i) => (b !== pkt[i] ? i : -1)).filter((i) => i >= 0);
    for (const i of diff) expect([24, 25, 30, 31, 32, 33, 36, 37, 40, 41, 50, 51]).toContain(i);
  });
});
