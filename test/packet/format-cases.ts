// The format table: packets (made by the builders, some cut or corrupted) and the line tcpdump 4.99 prints for
// each (`tcpdump -n -e -S -r`). test/packet/format.test.ts checks tcbox's lines against it;
// test/kernel/capture.test.ts checks it against the installed tcpdump.
import {
  buildArp,
  buildIcmpEcho,
  buildIcmpError,
  buildTcp,
  buildUdp,
  buildVxlan,
  TCPHDR_ACK,
  TCPHDR_PSH,
  TCPHDR_SYN,
} from "../../src/packet/index.js";

// Expected lines are what tcpdump 4.99 prints for the same bytes (`tcpdump -n -e -S -r`), checked when the table
// was written; test/kernel/capture.test.ts re-checks them against the installed tcpdump.
export const M1 = "02:00:00:00:00:01";
export const M2 = "02:00:00:00:00:02";
export const E = (len: number, src = M1, dst = M2) => `${src} > ${dst}, ethertype IPv4 (0x0800), length ${len}: `;
const enc = (s: string) => new TextEncoder().encode(s);

export const syn = buildTcp({
  src: "10.0.0.1", dst: "10.0.0.2", sport: 43210, dport: 80, flags: TCPHDR_SYN, seq: 1000, window: 64240,
  options: [{ kind: "mss", mss: 1460 }, { kind: "sackPermitted" }, { kind: "timestamp", tsval: 1, tsecr: 0 }, { kind: "nop" }, { kind: "wscale", shift: 7 }],
});
const udp = buildUdp({ src: "10.0.0.1", dst: "10.0.0.9", sport: 5000, dport: 40053, payload: new Uint8Array(7) });
const echo = buildIcmpEcho({ src: "10.0.0.1", dst: "10.0.0.2", id: 7, seq: 1, payload: new Uint8Array(56) });
export const arpReq = buildArp({ srcMac: M1, srcIp: "10.0.0.1", dstIp: "10.0.0.2" });
const unreach = (code: number, rest = 0) => buildIcmpError(3, code, udp, { rest });
const U = (text: string) => E(70, M2, M1) + `10.0.0.9 > 10.0.0.1: ICMP ${text}, length 36`;
const padTo = (b: Uint8Array, n: number) => {
  const o = new Uint8Array(n);
  o.set(b);
  return o;
};
const withByte = (b: Uint8Array, at: number, v: number) => {
  const o = b.slice();
  o[at] = v;
  return o;
};

// A DNS query for web.default (id 0x1234, RD) and its answer 10.96.0.20 (QR, RD, RA; name pointer to byte 12).
const dnsQ = [0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 3, ...enc("web"), 7, ...enc("default"), 0, 0, 1, 0, 1];
const dnsA = [...dnsQ.slice(0, 2), 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0, ...dnsQ.slice(12), 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4, 10, 96, 0, 20];
const dnsUdp = (payload: number[], sport: number, dport: number) =>
  buildUdp({ src: "10.0.0.1", dst: "10.96.0.10", sport, dport, payload: Uint8Array.from(payload) });

export const table: { name: string; bytes: Uint8Array; line: string }[] = [
  { name: "DNS query", bytes: dnsUdp(dnsQ, 40000, 53), line: E(71) + "10.0.0.1.40000 > 10.96.0.10.53: 4660+ A? web.default. (29)" },
  { name: "DNS answer", bytes: dnsUdp(dnsA, 53, 40000), line: E(87) + "10.0.0.1.53 > 10.96.0.10.40000: 4660 1/0/0 A 10.96.0.20 (45)" },
  { name: "DNS answer cut in its question", bytes: dnsUdp(dnsA.slice(0, 20), 53, 40000), line: E(62) + "10.0.0.1.53 > 10.96.0.10.40000: 4660 [|domain]" },
  {
    name: "TCP SYN with options",
    bytes: syn,
    line: E(74) + "10.0.0.1.43210 > 10.0.0.2.80: Flags [S], seq 1000, win 64240, options [mss 1460,sackOK,TS val 1 ecr 0,nop,wscale 7], length 0",
  },
  {
    name: "TCP data on a VLAN, HTTP request line",
    bytes: buildTcp({ src: "10.0.0.1", dst: "10.0.0.2", sport: 43210, dport: 80, flags: TCPHDR_PSH | TCPHDR_ACK, seq: 1001, ack: 5, payload: enc("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), vlan: 10 }),
    line: `${M1} > ${M2}, ethertype 802.1Q (0x8100), length 85: vlan 10, p 0, ethertype IPv4 (0x0800), 10.0.0.1.43210 > 10.0.0.2.80: Flags [P.], seq 1001:1028, ack 5, win 65535, length 27: HTTP: GET / HTTP/1.1`,
  },
  {
    name: "every TCP flag, urgent pointer",
    bytes: buildTcp({ src: "10.0.0.1", dst: "10.0.0.2", sport: 43210, dport: 80, flags: 0xff, seq: 1001, ack: 5, urgent: 3, payload: new Uint8Array(5) }),
    line: E(59) + "10.0.0.1.43210 > 10.0.0.2.80: Flags [FSRP.UEW], seq 1001:1006, ack 5, win 65535, urg 3, length 5: HTTP",
  },
  {
    name: "no TCP flags",
    bytes: buildTcp({ src: "10.0.0.1", dst: "10.0.0.2", sport: 43210, dport: 9999, flags: 0, seq: 1001 }),
    line: E(54) + "10.0.0.1.43210 > 10.0.0.2.9999: Flags [none], win 65535, length 0",
  },
  {
    name: "HTTP status line",
    bytes: buildTcp({ src: "10.0.0.1", dst: "10.0.0.2", sport: 80, dport: 9999, flags: TCPHDR_ACK | TCPHDR_PSH, seq: 1001, payload: enc("HTTP/1.1 200 OK\r\n\r\n") }),
    line: E(73) + "10.0.0.1.80 > 10.0.0.2.9999: Flags [P.], seq 1001:1020, ack 0, win 65535, length 19: HTTP: HTTP/1.1 200 OK",
  },
  { name: "UDP", bytes: udp, line: E(49) + "10.0.0.1.5000 > 10.0.0.9.40053: UDP, length 7" },
  { name: "ICMP net unreachable", bytes: unreach(0), line: U("net 10.0.0.9 unreachable") },
  { name: "ICMP host unreachable", bytes: unreach(1), line: U("host 10.0.0.9 unreachable") },
  { name: "ICMP protocol unreachable", bytes: unreach(2), line: U("10.0.0.9 protocol 17 unreachable") },
  { name: "ICMP port unreachable (UDP)", bytes: unreach(3), line: U("10.0.0.9 udp port 40053 unreachable") },
  { name: "ICMP need to frag", bytes: unreach(4, 1400), line: U("10.0.0.9 unreachable - need to frag (mtu 1400)") },
  { name: "ICMP admin prohibited filter", bytes: unreach(13), line: U("host 10.0.0.9 unreachable - admin prohibited filter") },
  { name: "ICMP precedence cutoff", bytes: unreach(15), line: U("host 10.0.0.9 unreachable - precedence cutoff") },
  {
    name: "ICMP port unreachable (TCP)",
    bytes: buildIcmpError(3, 3, syn),
    line: E(70, M2, M1) + "10.0.0.2 > 10.0.0.1: ICMP 10.0.0.2 tcp port 80 unreachable, length 36",
  },
  { name: "ICMP time exceeded", bytes: buildIcmpError(11, 0, syn), line: E(70, M2, M1) + "10.0.0.2 > 10.0.0.1: ICMP time exceeded in-transit, length 36" },
  { name: "ICMP reassembly time exceeded", bytes: buildIcmpError(11, 1, syn), line: E(70, M2, M1) + "10.0.0.2 > 10.0.0.1: ICMP ip reassembly time exceeded, length 36" },
  { name: "ICMP echo request", bytes: echo, line: E(98) + "10.0.0.1 > 10.0.0.2: ICMP echo request, id 7, seq 1, length 64" },
  {
    name: "ICMP echo reply",
    bytes: buildIcmpEcho({ src: "10.0.0.2", dst: "10.0.0.1", id: 7, seq: 1, reply: true, payload: new Uint8Array(56) }),
    line: E(98) + "10.0.0.2 > 10.0.0.1: ICMP echo reply, id 7, seq 1, length 64",
  },
  { name: "ARP request", bytes: arpReq, line: `${M1} > ff:ff:ff:ff:ff:ff, ethertype ARP (0x0806), length 42: Request who-has 10.0.0.2 tell 10.0.0.1, length 28` },
  {
    name: "ARP request with a target MAC",
    bytes: buildArp({ srcMac: M1, srcIp: "10.0.0.1", dstIp: "10.0.0.2", dstMac: "02:00:00:00:00:09" }),
    line: `${M1} > ff:ff:ff:ff:ff:ff, ethertype ARP (0x0806), length 42: Request who-has 10.0.0.2 (02:00:00:00:00:09) tell 10.0.0.1, length 28`,
  },
  {
    name: "ARP reply",
    bytes: buildArp({ op: 2, srcMac: M2, srcIp: "10.0.0.2", dstIp: "10.0.0.1", dstMac: M1 }),
    line: `${M2} > ${M1}, ethertype ARP (0x0806), length 42: Reply 10.0.0.2 is-at ${M2}, length 28`,
  },
  {
    name: "ARP padded to 60 bytes",
    bytes: padTo(arpReq, 60),
    line: `${M1} > ff:ff:ff:ff:ff:ff, ethertype ARP (0x0806), length 60: Request who-has 10.0.0.2 tell 10.0.0.1, length 46`,
  },
  {
    name: "VXLAN with inner TCP",
    bytes: buildVxlan({ src: "192.168.1.1", dst: "192.168.1.2", sport: 37055 }, 1, syn),
    line: E(124) + "192.168.1.1.37055 > 192.168.1.2.4789: VXLAN, flags [I] (0x08), vni 1\n" +
      E(74) + "10.0.0.1.43210 > 10.0.0.2.80: Flags [S], seq 1000, win 64240, options [mss 1460,sackOK,TS val 1 ecr 0,nop,wscale 7], length 0",
  },
  {
    name: "VXLAN on a VLAN with inner ARP",
    bytes: buildVxlan({ src: "192.168.1.1", dst: "192.168.1.2", vlan: 5, sport: 58848 }, 77, arpReq),
    line: `${M1} > ${M2}, ethertype 802.1Q (0x8100), length 96: vlan 5, p 0, ethertype IPv4 (0x0800), 192.168.1.1.58848 > 192.168.1.2.4789: VXLAN, flags [I] (0x08), vni 77\n` +
      `${M1} > ff:ff:ff:ff:ff:ff, ethertype ARP (0x0806), length 42: Request who-has 10.0.0.2 tell 10.0.0.1, length 28`,
  },
  {
    name: "IP protocol without a printer",
    bytes: withByte(buildUdp({ src: "10.0.0.1", dst: "10.0.0.2", sport: 5000, dport: 6000, payload: new Uint8Array(20) }), 23, 99),
    line: E(62) + "10.0.0.1 > 10.0.0.2:  ip-proto-99 28",
  },
  {
    name: "non-first fragment",
    bytes: withByte(buildUdp({ src: "10.0.0.1", dst: "10.0.0.2", sport: 5000, dport: 6000, payload: new Uint8Array(20) }), 21, 3),
    line: E(62) + "10.0.0.1 > 10.0.0.2: ip-proto-17",
  },
  { name: "truncated TCP", bytes: syn.subarray(0, 40), line: E(40) + "truncated-ip - 34 bytes missing! 10.0.0.1.43210 > 10.0.0.2.80:  [|tcp]" },
  { name: "truncated IP header", bytes: syn.subarray(0, 20), line: E(20) + " [|ip]" },
  { name: "truncated Ethernet header", bytes: syn.subarray(0, 10), line: " [|ether]" },
  { name: "truncated UDP", bytes: udp.subarray(0, 38), line: E(38) + "truncated-ip - 11 bytes missing! 10.0.0.1.5000 > 10.0.0.9.40053:  [|udp]" },
  { name: "truncated ICMP", bytes: echo.subarray(0, 37), line: E(37) + "truncated-ip - 61 bytes missing! 10.0.0.1 > 10.0.0.2:  [|icmp]" },
  {
    name: "TCP data offset too short",
    bytes: withByte(syn, 46, 0x20),
    line: E(74) + "10.0.0.1.43210 > 10.0.0.2.80:  tcp 32 [bad hdr length 8 - too short, < 20]",
  },
];

