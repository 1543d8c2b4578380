// IPVS: schedulers (rr, wrr, lc, sh), the Masq packet path (DNAT in, un-DNAT of replies, checksums), persistence,
// connection timeouts and `ipvsadm -Ln` printing. Packets in, rewritten packets and chosen real servers out.
import { describe, expect, it } from "vitest";
import { formatIpv4, parseIpv4 } from "../../src/packet/addr.js";
import { get16, get32 } from "../../src/packet/checksum.js";
import { hash32, Ipvs, type IpvsScheduler } from "../../src/netfilter/ipvs.js";
import { IPVS_ACCEPT, IPVS_DROP, IPVS_STOLEN, IpvsPath } from "../../src/netfilter/ipvs-conn.js";
import { ipvsadmList } from "../../src/netfilter/ipvs-format.js";
import { checksumsOk, F, L3, tcp, udp } from "./conntrack-fixtures.js";

const VIP = parseIpv4("10.96.0.10");

function service(scheduler: IpvsScheduler, weights: number[], persistent = 0) {
  const ipvs = new Ipvs();
  const svc = ipvs.addService({ proto: 6, addr: VIP, port: 80, scheduler, persistent: persistent > 0, timeout: persistent });
  // Added in address order; the kernel links each at the list head.
  weights.forEach((w, k) => ipvs.addDest(svc, { addr: parseIpv4(`10.244.1.${k + 1}`), port: 8080, weight: w }));
  return { ipvs, svc };
}

const last = (ipvs: Ipvs, d: number) => formatIpv4(ipvs.services[0]!.dests[d]!.addr).split(".")[3];

describe("schedulers", () => {
  it.each([
    // list order is newest first: .3, .2, .1
    { sched: "rr" as const, weights: [1, 1, 1], want: "3 2 1 3 2 1" },
    { sched: "rr" as const, weights: [1, 0, 1], want: "3 1 3 1 3 1" },
    // wrr: weights 1,2,4 in list order .3(4) .2(2) .1(1), added one by one: ip_vs_wrr_dest_changed keeps cw = 1 set
    // by the first add (it still fits), so the first round takes every server; then cw 4 → .3; 3 → .3; 2 → .3 .2
    { sched: "wrr" as const, weights: [1, 2, 4], want: "3 2 1 3 3 3 2" },
    { sched: "wrr" as const, weights: [2, 2, 2], want: "3 2 1 3 2 1 3" },
  ])("$sched weights $weights", ({ sched, weights, want }) => {
    const { ipvs, svc } = service(sched, weights);
    const got = want.split(" ").map(() => last(ipvs, ipvs.schedule(svc, 1)));
    expect(got.join(" ")).toBe(want);
  });

  it("lc picks the least (active << 8) + inactive, first of equals", () => {
    const { ipvs, svc } = service("lc", [1, 1, 1]);
    const d = svc.dests;
    d[0]!.activeConns = 1; // .3
    d[1]!.inactConns = 5; // .2
    expect(last(ipvs, ipvs.schedule(svc, 1))).toBe("1");
    d[2]!.inactConns = 300; // .1: 300 > 256 + 0
    expect(last(ipvs, ipvs.schedule(svc, 1))).toBe("2");
  });

  it("sh: 256 buckets filled round-robin by weight; a client always hashes to the same bucket", () => {
    const { ipvs, svc } = service("sh", [1, 2, 1]);
    // list: .3(1) .2(2) .1(1) → buckets .3 .2 .2 .1 .3 .2 .2 .1 ...
    const first = Array.from(svc.shTable.slice(0, 8), (i) => last(ipvs, i));
    expect(first.join(" ")).toBe("3 2 2 1 3 2 2 1");
    for (const c of ["10.0.0.1", "192.168.3.4", "172.16.9.9"]) {
      const a = parseIpv4(c);
      const d = ipvs.schedule(svc, a);
      expect(d).toBe(svc.shTable[hash32(a, 8)]);
      expect(ipvs.schedule(svc, a)).toBe(d);
    }
    // hash_32 is the kernel's multiplicative hash: (val * 0x61C88647) >> (32 - bits).
    expect(hash32(1, 8)).toBe(0x61);
  });
});

describe("Masq packet path", () => {
  it("a TCP connection: SYN scheduled and DNATed, reply un-DNATed, counters move active/inactive", () => {
    const { ipvs } = service("rr", [1, 1]);
    const path = new IpvsPath(ipvs);
    const table: [Uint8Array, "in" | "out", string][] = [
      [tcp("10.244.9.9", 40000, "10.96.0.10", 80, F.SYN, 1), "in", "10.244.9.9:40000 > 10.244.1.2:8080"],
      [tcp("10.244.1.2", 8080, "10.244.9.9", 40000, F.SYN | F.ACK, 5, 2), "out", "10.96.0.10:80 > 10.244.9.9:40000"],
      [tcp("10.244.9.9", 40000, "10.96.0.10", 80, F.ACK, 2, 6), "in", "10.244.9.9:40000 > 10.244.1.2:8080"],
      // A second client goes to the next real server (rr).
      [tcp("10.244.9.8", 40000, "10.96.0.10", 80, F.SYN, 1), "in", "10.244.9.8:40000 > 10.244.1.1:8080"],
      // A non-SYN without a connection is not scheduled (passed on untouched).
      [tcp("10.244.9.7", 1, "10.96.0.10", 80, F.ACK, 1, 1), "in", "10.244.9.7:1 > 10.96.0.10:80"],
    ];
    for (const [f, dir, want] of table) {
      if (dir === "in") path.inbound(f, L3, 0);
      else path.outbound(f, L3, 0);
      expect(checksumsOk(f)).toBe(true);
      expect(`${formatIpv4(get32(f, L3 + 12))}:${get16(f, L3 + 20)} > ${formatIpv4(get32(f, L3 + 16))}:${get16(f, L3 + 22)}`).toBe(want);
    }
    // .2 ESTABLISHED, .1 SYN_RECV: both active (tcp_state_active_table counts SYN_RECV).
    const [d2, d1] = ipvs.services[0]!.dests;
    expect([d2!.activeConns, d2!.inactConns, d1!.activeConns, d1!.inactConns]).toEqual([1, 0, 1, 0]);
    expect(ipvsadmList(ipvs)).toBe(
      [
        "IP Virtual Server version 1.2.1 (size=4096)",
        "Prot LocalAddress:Port Scheduler Flags",
        "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn",
        "TCP  10.96.0.10:80 rr",
        "  -> 10.244.1.1:8080              Masq    1      1          0         ",
        "  -> 10.244.1.2:8080              Masq    1      1          0         ",
        "",
      ].join("\n"),
    );
  });

  it("verdicts: not a virtual service → ACCEPT; no available real server → DROP", () => {
    const { ipvs } = service("rr", [0]);
    const path = new IpvsPath(ipvs);
    expect(path.inbound(tcp("1.1.1.1", 1, "10.96.0.11", 80, F.SYN, 1), L3, 0)).toBe(IPVS_ACCEPT);
    expect(path.inbound(tcp("1.1.1.1", 1, "10.96.0.10", 80, F.SYN, 1), L3, 0)).toBe(IPVS_DROP);
  });

  it("timeouts: UDP 300 s, TCP SYN_RECV 60 s, ESTABLISHED 900 s; an expired connection is scheduled anew", () => {
    const ipvs = new Ipvs();
    const u = ipvs.addService({ proto: 17, addr: VIP, port: 53, scheduler: "rr", persistent: false, timeout: 0 });
    ipvs.addDest(u, { addr: parseIpv4("10.244.1.1"), port: 53, weight: 1 });
    ipvs.addDest(u, { addr: parseIpv4("10.244.1.2"), port: 53, weight: 1 });
    const path = new IpvsPath(ipvs);
    const dst = (t: number) => {
      const f = udp("10.244.9.9", 5000, "10.96.0.10", 53);
      expect(path.inbound(f, L3, t)).toBe(IPVS_STOLEN);
      expect(checksumsOk(f)).toBe(true);
      return formatIpv4(get32(f, L3 + 16));
    };
    const rows: [number, string][] = [[0, "10.244.1.2"], [299, "10.244.1.2"], [598, "10.244.1.2"], [898, "10.244.1.1"]];
    for (const [t, want] of rows) expect(dst(t)).toBe(want);
    expect(u.dests.reduce((a, d) => a + d.inactConns, 0)).toBe(1); // the expired one was freed

    const { ipvs: t2 } = service("rr", [1]);
    const p2 = new IpvsPath(t2);
    p2.inbound(tcp("10.244.9.9", 40000, "10.96.0.10", 80, F.SYN, 1), L3, 0);
    const c = p2.lastConn;
    expect(p2.conns.expires[c]).toBe(60);
    p2.inbound(tcp("10.244.9.9", 40000, "10.96.0.10", 80, F.ACK, 2, 6), L3, 10);
    expect(p2.conns.expires[c]).toBe(910);
  });

  it("persistence: a client keeps its real server across connections until the template times out", () => {
    const { ipvs } = service("rr", [1, 1, 1], 10800);
    const path = new IpvsPath(ipvs);
    const backend = (sport: number, t: number) => {
      const f = tcp("10.244.9.9", sport, "10.96.0.10", 80, F.SYN, 1);
      path.inbound(f, L3, t);
      return formatIpv4(get32(f, L3 + 16));
    };
    const first = backend(1000, 0);
    expect([backend(1001, 100), backend(1002, 10000)]).toEqual([first, first]);
    // Template restarted at t=10000: still alive at 20799, gone at 20800 + (the client's conns expired too).
    expect(backend(1003, 20799)).toBe(first);
    expect(backend(1004, 40000)).not.toBe(first);
    expect(ipvsadmList(ipvs)).toContain("TCP  10.96.0.10:80 rr persistent 10800\n");
  });
});
