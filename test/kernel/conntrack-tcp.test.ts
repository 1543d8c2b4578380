// The TCP state machine against the kernel: crafted segment sequences cross the lab router (MASQUERADE toward the
// server), one flow per sequence prefix, with the end hosts dropping the test ports so their stacks never answer.
// After the round every flow's entry in `conntrack -L` (state, [UNREPLIED], [ASSURED], timeout, reply tuple) must
// match the model fed the captured segments; flows the kernel deleted or never created must be absent in both.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { compare, ConntrackLab, parseList, replay } from "./conntrack-lab.js";

const lab = new ConntrackLab("ctt");
beforeAll(() => lab.start());
afterAll(() => lab.stop());

/** A segment: direction (o: client → server, r: back), flags, seq, ack, payload bytes, window (default 64240), and
 *  whether to offer window scale 7 + SACK-permitted (SYNs). */
type Seg = [dir: "o" | "r", flags: string, seq: number, ack: number, len: number, win?: number, wscale?: boolean];

const HANDSHAKE: Seg[] = [
  ["o", "S", 1000, 0, 0],
  ["r", "SA", 5000, 1001, 0],
  ["o", "A", 1001, 5001, 0],
];
const FULL: Seg[] = [
  ...HANDSHAKE,
  ["o", "PA", 1001, 5001, 10],
  ["r", "A", 5001, 1011, 0],
  ["o", "FA", 1011, 5001, 0],
  ["r", "A", 5001, 1012, 0],
  ["r", "FA", 5001, 1012, 0],
  ["o", "A", 1012, 5002, 0],
];
const SEQUENCES: Record<string, Seg[]> = {
  rst: [...HANDSHAKE, ["r", "RA", 5001, 1001, 0]],
  synRetransmit: [["o", "S", 1000, 0, 0], ["o", "S", 1000, 0, 0]],
  simultaneous: [["o", "S", 1000, 0, 0], ["r", "S", 5000, 0, 0], ["o", "SA", 1000, 5001, 0], ["r", "A", 5001, 1001, 0]],
  pickup1: [["o", "A", 1000, 5000, 0]],
  pickup2: [["o", "A", 1000, 5000, 0], ["r", "A", 5000, 1000, 0]],
  pickup3: [["o", "A", 1000, 5000, 0], ["r", "A", 5000, 1000, 0], ["o", "A", 1000, 5000, 0]],
  synInEstablished: [...HANDSHAKE, ["o", "S", 9000, 0, 0]],
  reopen: [...HANDSHAKE, ["o", "FA", 1001, 5001, 0], ["r", "FA", 5001, 1002, 0], ["o", "A", 1002, 5002, 0], ["o", "S", 20000, 0, 0]],
  unrepliedRst: [["o", "S", 1000, 0, 0], ["r", "RA", 0, 1001, 0]],
  synAckFirst: [["o", "SA", 1000, 1, 0]],
  finFirst: [["o", "FA", 1000, 1, 0]],
  ackBeforeSynAck: [["o", "S", 1000, 0, 0], ["o", "A", 1001, 7, 0]],
  unackedData: [...HANDSHAKE, ["o", "PA", 1001, 5001, 100]],
  // Window tracking: out-of-window segments are INVALID and change nothing.
  finFarAhead: [...HANDSHAKE, ["o", "FA", 1001 + 1_000_000, 5001, 0]],
  finAckingUnseen: [...HANDSHAKE, ["o", "FA", 1001, 5001 + 500_000, 0]],
  rstBeforeMaxack: [...HANDSHAKE, ["r", "RA", 100, 1001, 0]],
  dataThenInWindowFin: [...HANDSHAKE, ["o", "PA", 1001, 5001, 1000], ["o", "FA", 2001, 5001, 0]],
  // Window scaling: a FIN 100000 bytes ahead is inside the scaled window (1000 << 7) only.
  scaledWindow: [
    ["o", "S", 1000, 0, 0, 1000, true],
    ["r", "SA", 5000, 1001, 0, 1000, true],
    ["o", "A", 1001, 5001, 0, 1000],
    ["r", "A", 5001, 1001, 0, 1000],
    ["o", "FA", 101001, 5001, 0, 1000],
  ],
  unscaledWindow: [
    ["o", "S", 1000, 0, 0, 1000],
    ["r", "SA", 5000, 1001, 0, 1000],
    ["o", "A", 1001, 5001, 0, 1000],
    ["r", "A", 5001, 1001, 0, 1000],
    ["o", "FA", 101001, 5001, 0, 1000],
  ],
};

function flows(): [number, Seg[]][] {
  const out: [number, Seg[]][] = [];
  let port = 50000;
  for (let k = 1; k <= FULL.length; k++) out.push([++port, FULL.slice(0, k)]);
  for (const s of Object.values(SEQUENCES)) out.push([++port, s]);
  return out;
}

const SENDER = `
import ctypes, os, socket, time, json, sys
from scapy.all import Ether, IP, TCP, Raw
cfg = json.loads(sys.argv[1])
libc = ctypes.CDLL(None, use_errno=True)
def enter(name):
    fd = os.open("/var/run/netns/" + name, os.O_RDONLY)
    if libc.setns(fd, 0x40000000) != 0:
        raise OSError(ctypes.get_errno(), "setns " + name)
    os.close(fd)
enter(cfg["C"]); sc = socket.socket(socket.AF_PACKET, socket.SOCK_RAW); sc.bind(("cr", 0))
enter(cfg["S"]); ss = socket.socket(socket.AF_PACKET, socket.SOCK_RAW); ss.bind(("sr", 0))
for port, segs in cfg["flows"]:
    for seg in segs:
        d, flags, seq, ack, ln = seg[:5]
        win = seg[5] if len(seg) > 5 else 64240
        opts = [("WScale", 7), ("SAckOK", b"")] if len(seg) > 6 and seg[6] else []
        if d == "o":
            p = Ether(src=cfg["cr"], dst=cfg["rc"])/IP(src="10.0.1.2", dst="10.0.2.2")/TCP(sport=port, dport=9100, flags=flags, seq=seq, ack=ack, window=win, options=opts)
            s = sc
        else:
            p = Ether(src=cfg["sr"], dst=cfg["rs"])/IP(src="10.0.2.2", dst="10.0.2.1")/TCP(sport=9100, dport=port, flags=flags, seq=seq, ack=ack, window=win, options=opts)
            s = ss
        if ln:
            p = p/Raw(b"x" * ln)
        s.send(bytes(p))
        time.sleep(0.01)
`;

describe("TCP tracking against the kernel, sequence by sequence", () => {
  it("every crafted flow ends in the kernel's state, timeout and flags", async (ctx) => {
    if (!lab.ready) {
      ctx.skip(`kernel conntrack test skipped: ${lab.skipReason}`);
      return;
    }
    const { C, R, S } = lab;
    // The end hosts drop the test ports: their TCP stacks must not answer crafted segments.
    lab.ns(C, "iptables", ["-A", "INPUT", "-p", "tcp", "--dport", "50000:50999", "-j", "DROP"]);
    lab.ns(S, "iptables", ["-A", "INPUT", "-p", "tcp", "--dport", "9100", "-j", "DROP"]);
    const cfg = { C, S, cr: lab.mac(C, "cr"), rc: lab.mac(R, "rc"), sr: lab.mac(S, "sr"), rs: lab.mac(R, "rs"), flows: flows() };
    const round = await lab.round(async () => {
      lab.ns(C, "/usr/bin/python3", ["-c", SENDER, JSON.stringify(cfg)]);
    });
    const kernel = parseList(round.kernelText);
    const { text, model } = replay(round, kernel);
    const { rows, agree, total } = compare(kernel, model);
    if (process.env.TCBOX_DEBUG) console.log(round.kernelText);
    console.log(`conntrack TCP kernel differential: ${cfg.flows.length} flows, ${kernel.size} kernel entries, ${agree}/${total} fields agree`);
    expect(rows, `kernel:\n${round.kernelText}\nmodel:\n${text}`).toEqual([]);
    // The sequences meant to leave no entry left none, the others one each.
    const states = new Map([...kernel.values()].map((e) => [Number(/ (\d+)>9100/.exec(e.key)![1]), e.state]));
    const port = (name: string) => 50000 + FULL.length + Object.keys(SEQUENCES).indexOf(name) + 1;
    expect(states.has(port("unrepliedRst"))).toBe(false);
    expect(states.has(port("synAckFirst"))).toBe(false);
    expect(states.has(port("finFirst"))).toBe(false);
    expect(states.get(port("simultaneous"))).toBe("ESTABLISHED");
    expect(states.get(50000 + FULL.length)).toBe("TIME_WAIT");
    // Window tracking did something observable in the kernel.
    expect(states.get(port("finFarAhead"))).toBe("ESTABLISHED");
    expect(states.get(port("scaledWindow"))).toBe("FIN_WAIT");
    expect(states.get(port("unscaledWindow"))).toBe("ESTABLISHED");
  });

  it("with nf_conntrack_tcp_loose=0 no connection is picked up mid-stream", async (ctx) => {
    if (!lab.ready) {
      ctx.skip(`kernel conntrack test skipped: ${lab.skipReason}`);
      return;
    }
    const { C, R, S } = lab;
    // Per-namespace sysctl: only the lab router changes.
    lab.ns(R, "sysctl", ["-qw", "net.netfilter.nf_conntrack_tcp_loose=0"]);
    const picks: [number, Seg[]][] = [
      [50500, SEQUENCES.pickup3!],
      [50501, SEQUENCES.unackedData!],
    ];
    const cfg = { C, S, cr: lab.mac(C, "cr"), rc: lab.mac(R, "rc"), sr: lab.mac(S, "sr"), rs: lab.mac(R, "rs"), flows: picks };
    try {
      const round = await lab.round(async () => {
        lab.ns(C, "/usr/bin/python3", ["-c", SENDER, JSON.stringify(cfg)]);
      });
      const kernel = parseList(round.kernelText);
      const { text, model } = replay(round, kernel, false);
      const { rows, agree, total } = compare(kernel, model);
      console.log(`conntrack TCP kernel differential (loose=0): ${kernel.size} kernel entries, ${agree}/${total} fields agree`);
      expect(rows, `kernel:\n${round.kernelText}\nmodel:\n${text}`).toEqual([]);
      expect([...kernel.keys()].some((k) => k.includes(" 50500>"))).toBe(false);
      expect([...kernel.keys()].some((k) => k.includes(" 50501>"))).toBe(true);
    } finally {
      lab.ns(R, "sysctl", ["-qw", "net.netfilter.nf_conntrack_tcp_loose=1"]);
    }
  });
});
