// programs/lb4.ts in Cilium's bpf/tests shape: PKTGEN builds the packet with src/packet's builders, SETUP fills
// the maps through the agent's writer (src/k8s/agent/lb-maps.ts) and runs the program, CHECK asserts on the
// verdict, the output bytes (fields and checksums, recomputed and by tshark) and the maps.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildIcmpEcho, buildTcp, buildUdp, jhash3, parseIpv4 } from "../../src/packet/index.js";
import { BpfKernel, type BpfObject } from "../../src/ebpf/kernel.js";
import type { BpfProgram } from "../../src/ebpf/program.js";
import { computeMaglevTable, MAGLEV_DEFAULT_M } from "../../src/ebpf/maglev.js";
import { Lb4Maps, SVC_FLAG2_MAGLEV, SVC_FLAG_AFFINITY } from "../../src/k8s/agent/lb-maps.js";
import { Capture, checksumsValid, hdr, haveTshark, raw16, raw32, tsharkChecksums } from "./lb4-helpers.js";

const TC_ACT_OK = 0;
const TC_ACT_SHOT = 2;
const SYN = 0x02;
const ACK = 0x10;
const PSH_ACK = 0x18;
const SYNACK = 0x12;

let kernel: BpfKernel;
let obj: BpfObject;
let prog: BpfProgram;
let lb: Lb4Maps;
const cap = new Capture();

function run(pkt: Uint8Array) {
  cap.add(pkt);
  const r = prog.run(pkt);
  if (r.retval === TC_ACT_OK) cap.add(r.packet);
  return r;
}

// Backends 1..12: 10.0.1.N:8080/TCP and 10.0.2.N:5353/UDP.
const TCP_BE = (n: number) => ({ id: n, address: `10.0.1.${n}`, port: 8080, proto: "TCP" });
const UDP_BE = (n: number) => ({ id: 100 + n, address: `10.0.2.${n}`, port: 5353, proto: "UDP" });

beforeAll(async () => {
  kernel = new BpfKernel({ seed: 42 });
  obj = await kernel.load("programs/lb4.ts");
  prog = obj.program("cls_main");
  kernel.ktimeNs = 1000n * 1_000_000_000n;
  lb = new Lb4Maps(kernel);
  lb.setMaglevSeed(0x24b7ef82);
  for (let n = 1; n <= 12; n++) {
    lb.upsertBackend(TCP_BE(n));
    lb.upsertBackend(UDP_BE(n));
  }
  // SETUP: the services under test.
  lb.upsertFrontend({ address: "10.96.0.10", port: 80, proto: "TCP", revNatIndex: 1, backendIds: [1, 2, 3] });
  lb.upsertFrontend({ address: "10.96.0.53", port: 53, proto: "UDP", revNatIndex: 2, backendIds: [101, 102] });
  lb.upsertFrontend({ address: "10.96.0.20", port: 80, proto: "TCP", revNatIndex: 3, backendIds: [] });
  lb.upsertFrontend({ address: "10.96.0.30", port: 443, proto: "TCP", revNatIndex: 4, backendIds: [4, 5, 6, 7], flags: SVC_FLAG_AFFINITY, affinityTimeout: 100 });
  lb.upsertFrontend({ address: "10.96.0.31", port: 443, proto: "TCP", revNatIndex: 5, backendIds: [4, 5, 6, 7] });
  lb.upsertFrontend({ address: "10.96.0.40", port: 80, proto: "TCP", revNatIndex: 6, backendIds: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], flags2: SVC_FLAG2_MAGLEV }, (id) => `10.0.1.${id}:8080/TCP`);
  lb.upsertFrontend({ address: "10.96.0.50", port: 80, proto: "TCP", revNatIndex: 7, backendIds: [8, 9] });
}, 120_000);

const backendOf = (p: Uint8Array) => `${hdr(p).daddr}:${hdr(p).dport}`;

describe("lb4: DNAT, conntrack stickiness, reverse NAT", () => {
  it("a SYN to a ClusterIP is DNATed to one of its backends, checksums valid, CT entries created", () => {
    const r = run(buildTcp({ src: "10.244.1.5", dst: "10.96.0.10", sport: 40000, dport: 80, flags: SYN }));
    expect(r.retval).toBe(TC_ACT_OK);
    const h = hdr(r.packet);
    expect(["10.0.1.1", "10.0.1.2", "10.0.1.3"]).toContain(h.daddr);
    expect(h).toMatchObject({ saddr: "10.244.1.5", sport: 40000, dport: 8080, proto: 6 });
    expect(checksumsValid(r.packet)).toBe(true);
    const ct = obj.map("cilium_ct4_global").typed();
    const svc = ct.lookup({ saddr: "10.244.1.5", daddr: "10.96.0.10", sport: 40000, dport: 80, nexthdr: 6, flags: 4 });
    expect(svc).toMatchObject({ backend_id: Number(h.daddr.split(".")[3]), rev_nat_index: 1, packets: 1 });
    const fwd = ct.lookup({ saddr: "10.244.1.5", daddr: h.daddr, sport: 40000, dport: 8080, nexthdr: 6, flags: 0 });
    expect(fwd).toMatchObject({ rev_nat_index: 1, lifetime: 1000 + 60 }); // CT_SYN_TIMEOUT after a SYN
  });

  it("every later packet of the flow goes to the same backend; replies are reverse-NATed to the VIP", () => {
    const first = run(buildTcp({ src: "10.244.1.6", dst: "10.96.0.10", sport: 41000, dport: 80, flags: SYN }));
    const be = hdr(first.packet).daddr;
    for (let i = 0; i < 20; i++) {
      const r = run(buildTcp({ src: "10.244.1.6", dst: "10.96.0.10", sport: 41000, dport: 80, flags: PSH_ACK, seq: 1 + i * 10, payload: new Uint8Array(10).fill(i) }));
      expect(hdr(r.packet).daddr).toBe(be);
      expect(checksumsValid(r.packet)).toBe(true);
    }
    for (const flags of [SYNACK, ACK, PSH_ACK]) {
      const rep = run(buildTcp({ src: be, dst: "10.244.1.6", sport: 8080, dport: 41000, flags, payload: new Uint8Array(7).fill(3) }));
      expect(rep.retval).toBe(TC_ACT_OK);
      expect(hdr(rep.packet)).toEqual({ saddr: "10.96.0.10", daddr: "10.244.1.6", sport: 80, dport: 41000, proto: 6 });
      expect(checksumsValid(rep.packet)).toBe(true);
    }
    // The connection saw a non-SYN: the entry lives CT_CONNECTION_LIFETIME_TCP.
    const ct = obj.map("cilium_ct4_global").typed();
    expect(ct.lookup({ saddr: "10.244.1.6", daddr: "10.96.0.10", sport: 41000, dport: 80, nexthdr: 6, flags: 4 })).toMatchObject({ packets: 21, lifetime: 1000 + 21600 });
  });

  it("UDP: DNAT and reverse NAT; a zero (absent) UDP checksum stays zero", () => {
    const q = run(buildUdp({ src: "10.244.1.7", dst: "10.96.0.53", sport: 33333, dport: 53, payload: new Uint8Array(30).fill(7) }));
    const be = hdr(q.packet).daddr;
    expect(["10.0.2.1", "10.0.2.2"]).toContain(be);
    expect(hdr(q.packet).dport).toBe(5353);
    expect(checksumsValid(q.packet)).toBe(true);
    const a = run(buildUdp({ src: be, dst: "10.244.1.7", sport: 5353, dport: 33333, payload: new Uint8Array(40).fill(1) }));
    expect(hdr(a.packet)).toEqual({ saddr: "10.96.0.53", daddr: "10.244.1.7", sport: 53, dport: 33333, proto: 17 });
    expect(checksumsValid(a.packet)).toBe(true);
    const nocsum = buildUdp({ src: "10.244.1.7", dst: "10.96.0.53", sport: 33334, dport: 53, payload: new Uint8Array(4) });
    nocsum[34 + 6] = 0;
    nocsum[34 + 7] = 0;
    const r = run(nocsum);
    expect(hdr(r.packet).dport).toBe(5353);
    expect(r.packet[34 + 6]! | r.packet[34 + 7]!).toBe(0);
  });

  it("packets to no frontend and replies of no load-balanced connection pass unchanged", () => {
    const cases = [
      buildTcp({ src: "10.244.1.5", dst: "10.96.0.10", sport: 40000, dport: 81, flags: SYN }), // port not a frontend
      buildUdp({ src: "10.244.1.5", dst: "10.96.0.10", sport: 40000, dport: 80 }), // UDP to a TCP-only frontend
      buildTcp({ src: "10.0.1.1", dst: "10.244.9.9", sport: 8080, dport: 555, flags: ACK }), // unknown reply
      buildIcmpEcho({ src: "10.244.1.5", dst: "10.96.0.10", id: 7, seq: 1 }), // ICMP to a VIP: not load-balanced
    ];
    for (const p of cases) {
      const r = run(p);
      expect(r.retval).toBe(TC_ACT_OK);
      expect(Buffer.from(r.packet).equals(Buffer.from(p))).toBe(true);
    }
  });

  it("a Service without backends drops with DROP_NO_SERVICE (158), counted in cilium_metrics", () => {
    for (let i = 0; i < 3; i++) {
      const r = run(buildTcp({ src: "10.244.1.8", dst: "10.96.0.20", sport: 42000 + i, dport: 80, flags: SYN }));
      expect(r.retval).toBe(TC_ACT_SHOT);
      expect(r.dropReason).toBe(158);
    }
    expect(obj.map("cilium_metrics").typed().lookup({ reason: 158, dir: 2 })).toMatchObject({ count: 3 });
  });

  it("when a connection's backend is removed, its next packet picks another backend", () => {
    const first = run(buildTcp({ src: "10.244.1.9", dst: "10.96.0.50", sport: 43000, dport: 80, flags: SYN }));
    const was = Number(hdr(first.packet).daddr.split(".")[3]);
    const other = was === 8 ? 9 : 8;
    lb.upsertFrontend({ address: "10.96.0.50", port: 80, proto: "TCP", revNatIndex: 7, backendIds: [other] });
    const r = run(buildTcp({ src: "10.244.1.9", dst: "10.96.0.50", sport: 43000, dport: 80, flags: ACK }));
    expect(hdr(r.packet).daddr).toBe(`10.0.1.${was}`); // the backend itself still exists: CT keeps it
    lb.deleteBackend(was);
    const r2 = run(buildTcp({ src: "10.244.1.9", dst: "10.96.0.50", sport: 43000, dport: 80, flags: ACK }));
    expect(hdr(r2.packet).daddr).toBe(`10.0.1.${other}`);
    lb.upsertBackend(TCP_BE(was));
  });
});

describe("lb4: backend selection", () => {
  it("random: 3000 new connections spread roughly evenly over 3 backends (seeded prandom)", () => {
    const counts = new Map<string, number>();
    for (let i = 0; i < 3000; i++) {
      const r = prog.run(buildTcp({ src: `10.245.${i >> 8}.${i & 255}`, dst: "10.96.0.10", sport: 50000, dport: 80, flags: SYN }));
      counts.set(backendOf(r.packet), (counts.get(backendOf(r.packet)) ?? 0) + 1);
    }
    expect([...counts.keys()].sort()).toEqual(["10.0.1.1:8080", "10.0.1.2:8080", "10.0.1.3:8080"]);
    for (const c of counts.values()) expect(c).toBeGreaterThan(900), expect(c).toBeLessThan(1100);
  });

  it("Maglev: the backend is table[jhash_3words(saddr, daddr, dport<<16|sport, seed) % M], as the agent computed it", () => {
    const names = Array.from({ length: 10 }, (_, i) => `10.0.1.${i + 1}:8080/TCP`);
    const table = computeMaglevTable(names, MAGLEV_DEFAULT_M);
    for (let i = 0; i < 500; i++) {
      const src = `10.246.${i >> 8}.${i & 255}`;
      const sport = 30000 + i;
      const r = prog.run(buildTcp({ src, dst: "10.96.0.40", sport, dport: 80, flags: SYN }));
      const h = jhash3(raw32(parseIpv4(src)), raw32(parseIpv4("10.96.0.40")), ((raw16(80) << 16) | raw16(sport)) >>> 0, 0x24b7ef82) >>> 0;
      expect(hdr(r.packet).daddr).toBe(`10.0.1.${table[h % MAGLEV_DEFAULT_M]! + 1}`);
    }
  });

  it("Maglev: with conntrack forgotten, removing one of 10 backends moves only its flows (plus ≤ a few %)", () => {
    const flows = Array.from({ length: 2000 }, (_, i) => ({ src: `10.247.${i >> 8}.${i & 255}`, sport: 20000 + i }));
    const pick = () => flows.map((f) => hdr(prog.run(buildTcp({ src: f.src, dst: "10.96.0.40", sport: f.sport, dport: 80, flags: SYN })).packet).daddr);
    const before = pick();
    obj.map("cilium_ct4_global").clear();
    lb.upsertFrontend({ address: "10.96.0.40", port: 80, proto: "TCP", revNatIndex: 6, backendIds: [1, 2, 3, 4, 5, 6, 7, 8, 9], flags2: SVC_FLAG2_MAGLEV }, (id) => `10.0.1.${id}:8080/TCP`);
    const after = pick();
    let movedOthers = 0;
    let onRemoved = 0;
    for (let i = 0; i < flows.length; i++) {
      if (before[i] === "10.0.1.10") {
        onRemoved++;
        expect(after[i]).not.toBe("10.0.1.10");
      } else if (after[i] !== before[i]) movedOthers++;
    }
    expect(onRemoved).toBeGreaterThan(100);
    expect(movedOthers / (flows.length - onRemoved)).toBeLessThan(0.05);
  });

  it("session affinity: every connection of a client goes to one backend until the timeout; without it they spread", () => {
    const sticky = new Set<string>();
    const spread = new Set<string>();
    for (let i = 0; i < 40; i++) {
      sticky.add(backendOf(run(buildTcp({ src: "10.244.3.3", dst: "10.96.0.30", sport: 10000 + i, dport: 443, flags: SYN })).packet));
      spread.add(backendOf(run(buildTcp({ src: "10.244.3.3", dst: "10.96.0.31", sport: 10000 + i, dport: 443, flags: SYN })).packet));
    }
    expect(sticky.size).toBe(1);
    expect(spread.size).toBeGreaterThan(1);
    const aff = obj.map("cilium_lb4_affinity").typed();
    const id = Number([...sticky][0]!.split(".")[3]!.split(":")[0]);
    expect(aff.lookup({ client_ip: "10.244.3.3", rev_nat_id: 4 })).toEqual({ last_used: 1000, backend_id: id, pad: 0 });
    // After the timeout the client may be sent elsewhere: the entry is rewritten with the new time.
    kernel.ktimeNs = 1200n * 1_000_000_000n;
    const seen = new Set<string>();
    for (let i = 0; i < 40; i++) {
      seen.add(backendOf(run(buildTcp({ src: "10.244.3.3", dst: "10.96.0.30", sport: 11000 + i, dport: 443, flags: SYN })).packet));
    }
    expect(seen.size).toBe(1);
    expect(aff.lookup({ client_ip: "10.244.3.3", rev_nat_id: 4 })).toMatchObject({ last_used: 1200 });
    kernel.ktimeNs = 1000n * 1_000_000_000n;
  });
});

describe("lb4: checksums", () => {
  it("every rewritten packet of this file has valid checksums (recomputed)", () => {
    for (const p of cap.packets) expect(checksumsValid(p.data)).toBe(true);
    expect(cap.packets.length).toBeGreaterThan(100);
  });

  it.skipIf(!haveTshark())("tshark finds no bad checksum in a capture of every packet in and out", () => {
    const lines = tsharkChecksums(cap);
    expect(lines.length).toBe(cap.packets.length);
    for (const l of lines) {
      const [ipS, tcpS, udpS, expert] = l.split("\t");
      // Wireshark's checksum status: 0 bad, 1 good, 2 unverified, 3 not present (a zero UDP checksum).
      expect(ipS).toBe("1");
      if (tcpS) expect(tcpS).toBe("1");
      if (udpS) expect(["1", "3"]).toContain(udpS);
      expect(expert ?? "").not.toMatch(/[Bb]ad checksum|incorrect/);
    }
  });
});

afterAll(() => {
  for (const o of [...kernel.objects]) o.close();
});
