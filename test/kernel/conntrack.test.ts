// Differential test of the conntrack + NAT model against the real kernel.
//
// Three namespaces: client (10.0.1.2 and 10.0.1.3), router, server (10.0.2.2). The router forwards with
//   nat PREROUTING  -d 10.96.0.10 -p tcp --dport 80 -j DNAT --to-destination 10.0.2.2:8080
//   nat PREROUTING  -d 10.96.0.10 -p udp --dport 53 -j DNAT --to-destination 10.0.2.2:5353   (closed: ICMP error back)
//   nat POSTROUTING -p udp --dport 7000 -j SNAT --to-source 10.0.2.10-10.0.2.13
//   nat POSTROUTING -o rs -j MASQUERADE
// Real traffic (socat TCP and UDP, scapy-crafted UDP/ICMP/TCP, including two clients with the same source port and
// ICMP id behind the MASQUERADE, a UDP flow still active after 2 s, a TCP connection left open, an unreplied SYN
// answered by RST, a mid-stream ACK, a SYN+FIN) crosses it while tcpdump captures what enters each router interface. The captured
// packets are fed, in capture order, through the model with the same rules; its table must match the kernel's
// `conntrack -L`: the same entries (original tuples), states, reply tuples (the NAT choices), [UNREPLIED] and
// [ASSURED], timeouts within 3 s. Where the kernel picks a port at random (a clash), the model's random source is
// given the kernel's pick so the rest of the flow can be followed; that the model remaps the same flows is checked.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { compare, ConntrackLab, parseList, replay, sleep } from "./conntrack-lab.js";

const lab = new ConntrackLab("ct");
beforeAll(() => lab.start());
afterAll(() => lab.stop());

const SCAPY = `
from scapy.all import *
import time
conf.verb = 0
def s(p):
    send(p, iface="cr"); time.sleep(0.15)
s(IP(src="10.0.1.2", dst="10.0.2.2")/UDP(sport=40000, dport=5353)/b"a")
s(IP(src="10.0.1.3", dst="10.0.2.2")/UDP(sport=40000, dport=5353)/b"b")
s(IP(src="10.0.1.2", dst="10.0.2.2")/UDP(sport=41000, dport=7000)/b"c")
s(IP(src="10.0.1.3", dst="10.0.2.2")/UDP(sport=41001, dport=7000)/b"d")
s(IP(src="10.0.1.2", dst="10.0.2.2")/ICMP(type=8, id=0x1234, seq=1)/b"ping")
s(IP(src="10.0.1.3", dst="10.0.2.2")/ICMP(type=8, id=0x1234, seq=1)/b"ping")
s(IP(src="10.0.1.2", dst="10.0.2.2")/TCP(sport=42000, dport=9, flags="A", seq=1000, ack=2000))
s(IP(src="10.0.1.2", dst="10.0.2.2")/TCP(sport=43000, dport=9, flags="S", seq=3000))
s(IP(src="10.0.1.2", dst="10.0.2.2")/TCP(sport=44000, dport=8080, flags="S", seq=5000))
s(IP(src="10.0.1.2", dst="10.0.2.2")/TCP(sport=45000, dport=8080, flags="SF", seq=7000))
s(IP(src="10.0.1.2", dst="10.96.0.10")/UDP(sport=47000, dport=53)/b"dns?")
s(IP(src="10.0.1.2", dst="10.0.2.2")/UDP(sport=46000, dport=6000)/b"first")
time.sleep(2.3)
s(IP(src="10.0.1.2", dst="10.0.2.2")/UDP(sport=46000, dport=6000)/b"again")
`;

describe("conntrack and NAT against the kernel (client → router → server)", () => {
  it("matches conntrack -L after real TCP, UDP and ICMP traffic", async (ctx) => {
    if (!lab.ready) {
      ctx.skip(`kernel conntrack test skipped: ${lab.skipReason}`);
      return;
    }
    const { C, S } = lab;
    const round = await lab.round(async () => {
      lab.background(S, "socat", ["TCP-LISTEN:8080,reuseaddr,fork", "SYSTEM:cat"]);
      lab.background(S, "socat", ["UDP-RECVFROM:6000,fork", "SYSTEM:cat"]);
      await sleep(400);
      lab.ns(C, "socat", ["-t", "0.5", "-", "TCP:10.96.0.10:80"], "hello through DNAT\n");
      lab.ns(C, "socat", ["-t", "0.5", "-", "UDP:10.0.2.2:6000"], "udp echo\n");
      // A connection still open when the table is read: ESTABLISHED, ASSURED.
      lab.background(C, "sh", ["-c", "(echo still open; sleep 30) | timeout 31 socat - TCP:10.96.0.10:80"]);
      await sleep(300);
      lab.ns(C, "/usr/bin/python3", ["-c", SCAPY]);
    });
    expect(round.recs.length).toBeGreaterThan(20);
    const kernel = parseList(round.kernelText);
    const { text, model } = replay(round, kernel);
    const { rows, agree, total } = compare(kernel, model);
    if (process.env.TCBOX_DEBUG) console.log(round.kernelText + "\n" + text);
    console.log(`conntrack kernel differential: ${kernel.size} kernel entries, ${model.size} model entries, ${agree}/${total} fields agree`);
    expect(rows, `kernel:\n${round.kernelText}\nmodel:\n${text}`).toEqual([]);
    // The interesting cases really happened in the kernel.
    const remapped = [...kernel.values()].filter((e) => e.key.startsWith("udp 10.0.1.3 10.0.2.2 40000") || e.key.startsWith("icmp 10.0.1.3"));
    expect(remapped.length).toBe(2);
    expect(remapped.every((e) => e.reply.dport !== "40000" && e.reply.id !== "4660")).toBe(true);
    expect(kernel.size).toBeGreaterThanOrEqual(11);
    // A UDP flow still active after 2 s is a stream (120 s, ASSURED); a connection left open is ESTABLISHED.
    expect(kernel.get("udp 10.0.1.2 10.0.2.2 46000>6000")?.assured).toBe(true);
    expect([...kernel.values()].some((e) => e.state === "ESTABLISHED" && e.assured)).toBe(true);
  });
});
