// IPVS: schedulers (rr, wrr, lc, sh), the Masq packet path (DNAT in, un-DNAT of replies, checksums), persistence,
// connection timeouts and `ipvsadm -Ln` printing. Packets in, rewritten packets and chosen real servers out.
import { describe, expect, it } from "vitest";
import { formatIpv4, parseIpv4 } from "../../src/packet/addr.js";
import { get16, get32 } from "../../src/packet/checksum.js";
import { hash32, Ipvs, type IpvsScheduler } from "../../src/netfilter/ipvs.js";
import {
  IPVS_ACCEPT, IPVS_DROP, IPVS_REJECT, IPVS_STATE_NAMES, IPVS_STOLEN, IPVS_TIMEOUTS, IpvsPath, IpvsState, ipvsTcpNextState,
  TCP_DIR_INPUT, TCP_DIR_INPUT_ONLY, TCP_DIR_OUTPUT,
} from "../../src/netfilter/ipvs-conn.js";
import { ipvsadmList, ipvsadmListConns } from "../../src/netfilter/ipvs-format.js";
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

  it("verdicts: not a virtual service → ACCEPT; no available real server → REJECT (ip_vs_leave: port unreachable)", () => {
    const { ipvs } = service("rr", [0]);
    const path = new IpvsPath(ipvs);
    expect(path.inbound(tcp("1.1.1.1", 1, "10.96.0.11", 80, F.SYN, 1), L3, 0)).toBe(IPVS_ACCEPT);
    expect(path.inbound(tcp("1.1.1.1", 1, "10.96.0.10", 80, F.SYN, 1), L3, 0)).toBe(IPVS_REJECT);
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

describe("TCP state machine (ip_vs_proto_tcp.c tcp_states, tcp_timeouts) and ipvsadm -Lnc", () => {
  const C = "10.244.9.9";
  type Step = [flags: number, dir: "in" | "out", state: string, expire: string, active: number, inactive: number];
  const run = (steps: Step[], secure = false) => {
    const { ipvs } = service("rr", [1]);
    const path = new IpvsPath(ipvs);
    path.conns.secureTcp = secure;
    const d = ipvs.services[0]!.dests[0]!;
    const got: string[] = [];
    const want: string[] = [];
    steps.forEach(([flags, dir, state, expire, a, i], t) => {
      if (dir === "in") path.inbound(tcp(C, 40000, "10.96.0.10", 80, flags, 1, 1), L3, t);
      else path.outbound(tcp("10.244.1.1", 8080, C, 40000, flags, 1, 1), L3, t);
      const line = ipvsadmListConns(path.conns, t).split("\n")[2]!;
      got.push(`${line.slice(4, 23).replace(/\s+/g, " ").trim()} ${d.activeConns}/${d.inactConns}`);
      want.push(`${expire} ${state} ${a}/${i}`);
    });
    expect(got).toEqual(want);
  };
  const { SYN, ACK, FIN, RST, PSH } = F;

  it("client closes first: SYN_RECV (active), ESTABLISHED, CLOSE_WAIT, TIME_WAIT", () =>
    run([
      [SYN, "in", "SYN_RECV", "01:00", 1, 0],
      [SYN | ACK, "out", "SYN_RECV", "01:00", 1, 0],
      [ACK, "in", "ESTABLISHED", "15:00", 1, 0],
      [ACK | PSH, "out", "ESTABLISHED", "15:00", 1, 0],
      [FIN | ACK, "in", "CLOSE_WAIT", "01:00", 0, 1],
      [ACK, "out", "CLOSE_WAIT", "01:00", 0, 1],
      [FIN | ACK, "out", "TIME_WAIT", "02:00", 0, 1],
      [ACK, "in", "TIME_WAIT", "02:00", 0, 1],
    ]));

  it("server closes first: FIN_WAIT, then TIME_WAIT; RST → CLOSE (10 s); no flags → CLOSE", () => {
    run([
      [SYN, "in", "SYN_RECV", "01:00", 1, 0],
      [SYN | ACK, "out", "SYN_RECV", "01:00", 1, 0],
      [ACK, "in", "ESTABLISHED", "15:00", 1, 0],
      [FIN | ACK, "out", "FIN_WAIT", "02:00", 0, 1],
      [ACK, "in", "FIN_WAIT", "02:00", 0, 1],
      [FIN | ACK, "in", "TIME_WAIT", "02:00", 0, 1],
    ]);
    run([
      [SYN, "in", "SYN_RECV", "01:00", 1, 0],
      [ACK, "in", "ESTABLISHED", "15:00", 1, 0],
      [RST, "out", "CLOSE", "00:10", 0, 1],
    ]);
    run([
      [SYN, "in", "SYN_RECV", "01:00", 1, 0],
      [PSH, "in", "CLOSE", "00:10", 0, 1],
    ]);
  });

  it("secure_tcp (tcp_states_dos): the server's SYN|ACK parks the connection in SYNACK until the server sends an ACK", () =>
    run(
      [
        [SYN, "in", "SYN_RECV", "01:00", 1, 0],
        [SYN | ACK, "out", "SYNACK", "02:00", 1, 0],
        [ACK, "in", "SYNACK", "02:00", 1, 0],
        [ACK | PSH, "out", "ESTABLISHED", "15:00", 1, 0],
      ],
      true,
    ));

  it("table cells as in the kernel source (INPUT ack from NONE is ESTABLISHED; OUTPUT rst in TIME_WAIT stays)", () => {
    const S = IpvsState;
    const cells: [number, number, number, boolean, number][] = [
      [S.NONE, F.ACK, TCP_DIR_INPUT, false, S.ESTABLISHED],
      [S.NONE, F.SYN, TCP_DIR_OUTPUT, false, S.SYN_SENT],
      [S.TIME_WAIT, F.RST, TCP_DIR_OUTPUT, false, S.TIME_WAIT],
      [S.LAST_ACK, F.ACK, TCP_DIR_INPUT, false, S.CLOSE],
      [S.LAST_ACK, F.RST, TCP_DIR_INPUT, false, S.LAST_ACK],
      [S.SYN_RECV, F.RST, TCP_DIR_INPUT, false, S.SYN_RECV],
      [S.LISTEN, F.ACK, TCP_DIR_OUTPUT, false, S.ESTABLISHED],
      [S.ESTABLISHED, F.FIN, TCP_DIR_INPUT_ONLY, false, S.FIN_WAIT],
      [S.SYNACK, F.SYN, TCP_DIR_INPUT, true, S.SYNACK],
      [S.SYN_RECV, F.ACK, TCP_DIR_INPUT, true, S.SYN_RECV],
      [S.NONE, F.SYN, TCP_DIR_INPUT_ONLY, true, S.SYNACK],
    ];
    expect(cells.map(([s, f, d, dos]) => IPVS_STATE_NAMES[ipvsTcpNextState(s, f, d, dos)])).toEqual(cells.map((c) => IPVS_STATE_NAMES[c[4]]));
    expect(IPVS_TIMEOUTS).toEqual([2, 900, 120, 60, 120, 120, 10, 60, 30, 120, 120, 300]);
  });

  it("ipvsadm -Lnc lines; ipvsadm --set tcp tcpfin udp changes ESTABLISHED, FIN_WAIT and UDP", () => {
    const ipvs = new Ipvs();
    const t = ipvs.addService({ proto: 6, addr: VIP, port: 80, scheduler: "rr", persistent: false, timeout: 0 });
    const u = ipvs.addService({ proto: 17, addr: VIP, port: 53, scheduler: "rr", persistent: false, timeout: 0 });
    ipvs.addDest(t, { addr: parseIpv4("10.244.1.1"), port: 8080, weight: 1 });
    ipvs.addDest(u, { addr: parseIpv4("10.244.1.1"), port: 53, weight: 1 });
    const path = new IpvsPath(ipvs);
    path.conns.setTimeouts(3600, 30, 60);
    path.inbound(tcp(C, 40000, "10.96.0.10", 80, F.SYN, 1), L3, 0);
    path.inbound(tcp(C, 40000, "10.96.0.10", 80, F.ACK, 2, 1), L3, 0);
    path.inbound(tcp(C, 40001, "10.96.0.10", 80, F.SYN, 1), L3, 0);
    path.inbound(tcp(C, 40001, "10.96.0.10", 80, F.ACK, 2, 1), L3, 0);
    path.outbound(tcp("10.244.1.1", 8080, C, 40001, F.FIN | F.ACK, 1, 2), L3, 0);
    path.inbound(udp(C, 5000, "10.96.0.10", 53), L3, 0);
    expect(ipvsadmListConns(path.conns, 0.5)).toBe(
      [
        "IPVS connection entries",
        "pro expire state       source             virtual            destination",
        "TCP 59:59  ESTABLISHED 10.244.9.9:40000   10.96.0.10:80      10.244.1.1:8080",
        "TCP 00:29  FIN_WAIT    10.244.9.9:40001   10.96.0.10:80      10.244.1.1:8080",
        "UDP 00:59  UDP         10.244.9.9:5000    10.96.0.10:53      10.244.1.1:53",
        "",
      ].join("\n"),
    );
    expect(ipvsadmListConns(path.conns, 60).split("\n").length).toBe(4); // FIN_WAIT and UDP expired and freed
  });

  it("persistence template: re-armed while it controls a connection, freed at its first firing after the last one ended", () => {
    const { ipvs } = service("rr", [1, 1], 60);
    const path = new IpvsPath(ipvs);
    const tpl = () => ipvsadmListConns(path.conns, now).split("\n").find((l) => l.includes(":0 "));
    let now = 0;
    path.inbound(tcp(C, 40000, "10.96.0.10", 80, F.SYN, 1), L3, 0);
    path.inbound(tcp(C, 40000, "10.96.0.10", 80, F.ACK, 2, 1), L3, 0);
    const d = ipvs.services[0]!.dests.find((x) => x.persistConns === 1)!;
    expect((now = 59, tpl())).toMatch(/^TCP 00:01  ASSURED +10\.244\.9\.9:0 +10\.96\.0\.10:80 /);
    expect((now = 61, tpl())).toMatch(/^TCP 00:59  ASSURED/); // fired at 60 with a connection left: re-armed
    path.inbound(tcp(C, 40000, "10.96.0.10", 80, F.RST, 2), L3, 200); // CLOSE, ends at 210
    expect((now = 230, tpl())).toMatch(/^TCP 00:10  ASSURED/); // next firing 240
    expect((now = 240, tpl())).toBeUndefined();
    expect(d.persistConns).toBe(0);
  });

  it("conn_reuse_mode: a SYN on a TIME_WAIT connection is scheduled anew; a SYN on an established one keeps it", () => {
    const { ipvs } = service("rr", [1, 1]);
    const path = new IpvsPath(ipvs);
    const to = (flags: number, t: number) => {
      const f = tcp(C, 40000, "10.96.0.10", 80, flags, 1, 1);
      path.inbound(f, L3, t);
      return formatIpv4(get32(f, L3 + 16));
    };
    const first = to(F.SYN, 0);
    to(F.ACK, 0);
    expect(to(F.SYN, 1)).toBe(first); // ESTABLISHED: INPUT syn keeps ES
    path.outbound(tcp(first, 8080, C, 40000, F.FIN | F.ACK, 1, 1), L3, 2);
    to(F.FIN | F.ACK, 2); // FIN_WAIT → TIME_WAIT
    expect(IPVS_STATE_NAMES[path.conns.state[path.lastConn]!]).toBe("TIME_WAIT");
    expect(to(F.SYN, 3)).not.toBe(first);
    expect(path.conns.count).toBe(1);
  });

  it("real servers: rr keeps its place across additions and steps back off a deleted one; a deleted server's connection drops its next packet", () => {
    const { ipvs, svc } = service("rr", [1, 1, 1]); // list .3 .2 .1
    expect(last(ipvs, ipvs.schedule(svc, 1))).toBe("3");
    ipvs.addDest(svc, { addr: parseIpv4("10.244.1.4"), port: 8080, weight: 1 }); // list .4 .3 .2 .1
    expect(last(ipvs, ipvs.schedule(svc, 1))).toBe("2");
    ipvs.delDest(svc, parseIpv4("10.244.1.2"), 8080); // position moves back to .3
    expect([ipvs.schedule(svc, 1), ipvs.schedule(svc, 1)].map((i) => last(ipvs, i))).toEqual(["1", "4"]);
    ipvs.editDest(svc, parseIpv4("10.244.1.3"), 8080, 0);
    expect([ipvs.schedule(svc, 1), ipvs.schedule(svc, 1)].map((i) => last(ipvs, i))).toEqual(["1", "4"]);

    const path = new IpvsPath(ipvs);
    const f = tcp(C, 40000, "10.96.0.10", 80, F.SYN, 1);
    expect(path.inbound(f, L3, 0)).toBe(IPVS_STOLEN);
    const rs = get32(f, L3 + 16);
    ipvs.delDest(svc, rs, 8080);
    expect(path.inbound(tcp(C, 40000, "10.96.0.10", 80, F.ACK, 2, 1), L3, 1)).toBe(IPVS_DROP);
    expect(path.conns.count).toBe(0);
    expect(ipvs.destById.find((d) => d.addr === rs)!.inactConns + ipvs.destById.find((d) => d.addr === rs)!.activeConns).toBe(0);
  });
});
