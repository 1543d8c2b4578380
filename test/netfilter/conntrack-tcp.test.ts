// The TCP tracker, table-driven: a packet sequence, and after each packet the ctstate, TCP state, remaining
// timeout and flags `conntrack -L` would show (expected values from the kernel's tcp_conntracks table and timeouts).
import { describe, expect, it } from "vitest";
import { Conntrack, CT_INVALID, ctInfo, IP_CT_ESTABLISHED, IP_CT_ESTABLISHED_REPLY, IP_CT_NEW, IPS_ASSURED, IPS_SEEN_REPLY } from "../../src/netfilter/conntrack.js";
import { TCP_STATE_NAMES } from "../../src/netfilter/conntrack-tcp.js";
import { F, L3, tcp, ip } from "./conntrack-fixtures.js";

const C = "10.0.0.1";
const S = "10.0.0.2";
const CP = 40000;
const SP = 80;

type Step = {
  /** o: client → server, r: server → client */
  d: "o" | "r";
  flags: number;
  seq: number;
  ack?: number;
  len?: number;
  win?: number;
  /** seconds after the previous packet */
  dt?: number;
  /** expected: ctinfo (or "INVALID"), TCP state ("-" = no entry), timeout, [UNREPLIED]/[ASSURED] */
  info: number | "INVALID";
  state: string;
  timeout?: number;
  assured?: boolean;
  unreplied?: boolean;
};

function run(steps: Step[], loose = true): void {
  const ct = new Conntrack({ tcpLoose: loose });
  let now = 0;
  steps.forEach((s, n) => {
    now += s.dt ?? 0;
    ct.setTime(now);
    const f = s.d === "o" ? tcp(C, CP, S, SP, s.flags, s.seq, s.ack ?? 0, s.len ?? 0, s.win) : tcp(S, SP, C, CP, s.flags, s.seq, s.ack ?? 0, s.len ?? 0, s.win);
    const ref = ct.confirm(ct.in(f, L3, f.length - L3));
    const where = `step ${n}`;
    if (s.info === "INVALID") expect(ref, where).toBe(CT_INVALID);
    else expect(ctInfo(ref), where).toBe(s.info);
    const node = ct.lookup(ip(C), ip(S), ((CP << 16) | SP) >>> 0, 6);
    if (s.state === "-") {
      expect(node, where).toBe(-1);
      return;
    }
    expect(node, where).toBeGreaterThanOrEqual(0);
    const i = node >> 1;
    expect(TCP_STATE_NAMES[ct.l4state[i]!], where).toBe(s.state);
    if (s.timeout !== undefined) expect(ct.remaining(i), where).toBe(s.timeout);
    if (s.assured !== undefined) expect((ct.status[i]! & IPS_ASSURED) !== 0, where).toBe(s.assured);
    if (s.unreplied !== undefined) expect((ct.status[i]! & IPS_SEEN_REPLY) === 0, where).toBe(s.unreplied);
  });
}

const O = IP_CT_ESTABLISHED;
const R = IP_CT_ESTABLISHED_REPLY;
const N = IP_CT_NEW;

describe("TCP tracker: tcp_conntracks transitions and timeouts", () => {
  it("handshake, data, active close by the client", () => {
    run([
      { d: "o", flags: F.SYN, seq: 1000, info: N, state: "SYN_SENT", timeout: 120, unreplied: true, assured: false },
      { d: "r", flags: F.SYN | F.ACK, seq: 5000, ack: 1001, info: R, state: "SYN_RECV", timeout: 60, unreplied: false },
      { d: "o", flags: F.ACK, seq: 1001, ack: 5001, info: O, state: "ESTABLISHED", timeout: 432000, assured: true },
      // data not yet acknowledged: the UNACK timeout (300 s) caps ESTABLISHED
      { d: "o", flags: F.ACK | F.PSH, seq: 1001, ack: 5001, len: 100, info: O, state: "ESTABLISHED", timeout: 300 },
      { d: "r", flags: F.ACK, seq: 5001, ack: 1101, info: R, state: "ESTABLISHED", timeout: 432000 },
      { d: "o", flags: F.FIN | F.ACK, seq: 1101, ack: 5001, info: O, state: "FIN_WAIT", timeout: 120 },
      { d: "r", flags: F.ACK, seq: 5001, ack: 1102, info: R, state: "CLOSE_WAIT", timeout: 60 },
      { d: "r", flags: F.FIN | F.ACK, seq: 5001, ack: 1102, info: R, state: "LAST_ACK", timeout: 30 },
      { d: "o", flags: F.ACK, seq: 1102, ack: 5002, info: O, state: "TIME_WAIT", timeout: 120, assured: true },
    ]);
  });

  it("RST closes an established connection (CLOSE, 10 s)", () => {
    run([
      { d: "o", flags: F.SYN, seq: 1, info: N, state: "SYN_SENT" },
      { d: "r", flags: F.SYN | F.ACK, seq: 9, ack: 2, info: R, state: "SYN_RECV" },
      { d: "o", flags: F.ACK, seq: 2, ack: 10, info: O, state: "ESTABLISHED" },
      { d: "r", flags: F.RST | F.ACK, seq: 10, ack: 2, info: R, state: "CLOSE", timeout: 10 },
    ]);
  });

  it("an unreplied SYN answered only by RST deletes the entry", () => {
    run([
      { d: "o", flags: F.SYN, seq: 1, info: N, state: "SYN_SENT" },
      { d: "r", flags: F.RST | F.ACK, seq: 0, ack: 2, info: R, state: "-" },
    ]);
  });

  it("loose pick-up of a mid-stream ACK: ESTABLISHED capped at 300 s until both ways seen, then ASSURED", () => {
    run([
      { d: "o", flags: F.ACK, seq: 500, ack: 900, info: N, state: "ESTABLISHED", timeout: 300, unreplied: true, assured: false },
      { d: "r", flags: F.ACK, seq: 900, ack: 500, info: R, state: "ESTABLISHED", timeout: 300, assured: false },
      { d: "o", flags: F.ACK, seq: 500, ack: 900, info: O, state: "ESTABLISHED", timeout: 432000, assured: true },
    ]);
  });

  it("nf_conntrack_tcp_loose=0: a mid-stream ACK is INVALID and creates nothing", () => {
    run([{ d: "o", flags: F.ACK, seq: 500, ack: 900, info: "INVALID", state: "-" }], false);
  });

  it("FIN, SYN+FIN and a bare packet cannot start a connection", () => {
    run([{ d: "o", flags: F.FIN | F.ACK, seq: 1, ack: 1, info: "INVALID", state: "-" }]);
    run([{ d: "o", flags: F.SYN | F.FIN, seq: 1, info: "INVALID", state: "-" }]);
    run([{ d: "o", flags: 0, seq: 1, info: "INVALID", state: "-" }]);
    run([{ d: "o", flags: F.SYN | F.ACK, seq: 1, ack: 1, info: "INVALID", state: "-" }]);
  });

  it("a retransmitted SYN does not renew the timeout; an ACK before the SYN/ACK is INVALID", () => {
    run([
      { d: "o", flags: F.SYN, seq: 1, info: N, state: "SYN_SENT", timeout: 120 },
      { d: "o", flags: F.SYN, seq: 1, dt: 50, info: N, state: "SYN_SENT", timeout: 70 },
      { d: "o", flags: F.ACK, seq: 2, ack: 7, info: "INVALID", state: "SYN_SENT", timeout: 70 },
    ]);
  });

  it("a SYN in TIME_WAIT reopens the connection as a new entry", () => {
    run([
      { d: "o", flags: F.SYN, seq: 1, info: N, state: "SYN_SENT" },
      { d: "r", flags: F.SYN | F.ACK, seq: 9, ack: 2, info: R, state: "SYN_RECV" },
      { d: "o", flags: F.ACK, seq: 2, ack: 10, info: O, state: "ESTABLISHED" },
      { d: "o", flags: F.FIN | F.ACK, seq: 2, ack: 10, info: O, state: "FIN_WAIT" },
      { d: "r", flags: F.FIN | F.ACK, seq: 10, ack: 3, info: R, state: "LAST_ACK" },
      { d: "o", flags: F.ACK, seq: 3, ack: 11, info: O, state: "TIME_WAIT" },
      { d: "o", flags: F.SYN, seq: 100000, dt: 5, info: N, state: "SYN_SENT", timeout: 120, unreplied: true, assured: false },
    ]);
  });

  it("a SYN in ESTABLISHED is ignored: no state change, no refresh", () => {
    run([
      { d: "o", flags: F.SYN, seq: 1, info: N, state: "SYN_SENT" },
      { d: "r", flags: F.SYN | F.ACK, seq: 9, ack: 2, info: R, state: "SYN_RECV" },
      { d: "o", flags: F.ACK, seq: 2, ack: 10, info: O, state: "ESTABLISHED", timeout: 432000 },
      { d: "o", flags: F.SYN, seq: 7777, dt: 10, info: O, state: "ESTABLISHED", timeout: 431990 },
    ]);
  });

  it("simultaneous open goes through SYN_SENT2", () => {
    run([
      { d: "o", flags: F.SYN, seq: 1, info: N, state: "SYN_SENT" },
      { d: "r", flags: F.SYN, seq: 9, info: R, state: "SYN_SENT2", timeout: 120 },
      { d: "o", flags: F.SYN | F.ACK, seq: 1, ack: 10, info: O, state: "SYN_RECV" },
      { d: "r", flags: F.ACK, seq: 10, ack: 2, info: R, state: "ESTABLISHED" },
    ]);
  });

  it("three identical ACKs (retransmissions) shorten ESTABLISHED to 300 s; a zero window does too", () => {
    const hs: Step[] = [
      { d: "o", flags: F.SYN, seq: 1, info: N, state: "SYN_SENT" },
      { d: "r", flags: F.SYN | F.ACK, seq: 9, ack: 2, info: R, state: "SYN_RECV" },
      { d: "o", flags: F.ACK, seq: 2, ack: 10, info: O, state: "ESTABLISHED", timeout: 432000 },
    ];
    run([
      ...hs,
      { d: "o", flags: F.ACK, seq: 2, ack: 10, info: O, state: "ESTABLISHED", timeout: 432000 },
      { d: "o", flags: F.ACK, seq: 2, ack: 10, info: O, state: "ESTABLISHED", timeout: 432000 },
      { d: "o", flags: F.ACK, seq: 2, ack: 10, info: O, state: "ESTABLISHED", timeout: 300 },
    ]);
    run([...hs, { d: "r", flags: F.ACK, seq: 10, ack: 2, win: 0, info: R, state: "ESTABLISHED", timeout: 300 }]);
  });

  it("window tracking: out-of-window segments are INVALID and change nothing", () => {
    const hs: Step[] = [
      { d: "o", flags: F.SYN, seq: 1000, info: N, state: "SYN_SENT" },
      { d: "r", flags: F.SYN | F.ACK, seq: 5000, ack: 1001, info: R, state: "SYN_RECV" },
      { d: "o", flags: F.ACK, seq: 1001, ack: 5001, info: O, state: "ESTABLISHED", timeout: 432000 },
    ];
    run([...hs, { d: "o", flags: F.FIN | F.ACK, seq: 1001 + 1_000_000, ack: 5001, dt: 5, info: "INVALID", state: "ESTABLISHED", timeout: 431995 }]);
    run([...hs, { d: "o", flags: F.FIN | F.ACK, seq: 1001, ack: 5001 + 500_000, info: "INVALID", state: "ESTABLISHED" }]);
    run([...hs, { d: "r", flags: F.RST | F.ACK, seq: 100, ack: 1001, info: "INVALID", state: "ESTABLISHED" }]);
    run([...hs, { d: "o", flags: F.ACK | F.PSH, seq: 1001, ack: 5001, len: 1000, info: O, state: "ESTABLISHED", timeout: 300 },
      { d: "o", flags: F.FIN | F.ACK, seq: 2001, ack: 5001, info: O, state: "FIN_WAIT" }]);
  });

  it("entries expire when their timeout passes", () => {
    run([
      { d: "o", flags: F.SYN, seq: 1, info: N, state: "SYN_SENT", timeout: 120 },
      { d: "o", flags: F.ACK, seq: 2, ack: 5, dt: 121, info: N, state: "ESTABLISHED", timeout: 300, unreplied: true },
    ]);
  });
});
