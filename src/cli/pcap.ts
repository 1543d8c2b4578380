// tcbox pcap: read and write capture files.
//   tcbox pcap inspect FILE [--json] [--nano]   one tcpdump-style line per packet (pcap or pcapng), or a JSON array
//   tcbox pcap write-sample FILE [--pcap]       a small two-node capture made with the packet builders
// A malformed capture is reported as `tcbox: FILE: packet N: message` (or `FILE: byte OFFSET` for a header
// problem) before anything is printed: the whole file is read first.
import { readFileSync, writeFileSync } from "node:fs";
import type { Command } from "commander";
import { CliError, print, printJson } from "./output.js";
import {
  ARPOP_REPLY,
  buildArp,
  buildIcmpEcho,
  buildTcp,
  buildUdp,
  buildVxlan,
  TCPHDR_ACK,
  TCPHDR_FIN,
  TCPHDR_PSH,
  TCPHDR_SYN,
  type TcpOption,
} from "../packet/index.js";
import { formatRecord, recordJson } from "../packet/format.js";
import { writePcap } from "../packet/pcap.js";
import { readCapture } from "../packet/pcapng.js";
import { PcapngWriter } from "../packet/pcapng-writer.js";
import type { Direction } from "../packet/pcap.js";

function readFile(file: string): Uint8Array {
  try {
    return readFileSync(file);
  } catch (e) {
    throw new CliError(`cannot read: ${(e as Error).message}`, file);
  }
}

export function inspect(file: string, opts: { json?: boolean; nano?: boolean }): void {
  const cap = readCapture(readFile(file), file);
  if (opts.json) {
    printJson(cap.records.map((r) => recordJson(r, { nano: opts.nano ?? false })));
    return;
  }
  // Name the interface on each line only when there is more than one to tell apart.
  const showInterface = new Set(cap.interfaces.map((i) => i.name)).size > 1;
  const lines = cap.records.map((r) => formatRecord(r, { nano: opts.nano ?? false, showInterface }));
  if (lines.length > 0) print(lines.join("\n"));
}

// ---- the sample capture ----
// Two nodes on one L2 segment (node-1 192.168.1.1, node-2 192.168.1.2), pods 10.244.1.0/24 and 10.244.2.0/24,
// CoreDNS at 10.96.0.10. Every packet comes from the builders, so its checksums are what the kernel would write.

export const SAMPLE_INTERFACES = ["node-1/eth0", "node-2/eth0"];
const NODE1 = { mac: "02:42:c0:a8:01:01", ip: "192.168.1.1" };
const NODE2 = { mac: "02:42:c0:a8:01:02", ip: "192.168.1.2" };
const POD1 = { mac: "0a:58:0a:f4:01:02", ip: "10.244.1.2" };
const POD2 = { mac: "0a:58:0a:f4:02:03", ip: "10.244.2.3" };
const T0 = 1_700_000_000_000_000_000n; // 2023-11-14T22:13:20Z

/** A DNS message (RFC 1035): one question for an A record, and an answer when `answer` is given. */
function dnsMessage(id: number, name: string, answer?: string): Uint8Array {
  const labels = name.split(".").flatMap((l) => [l.length, ...new TextEncoder().encode(l)]);
  const q = [...labels, 0, 0, 1, 0, 1]; // QTYPE A, QCLASS IN
  const flags = answer ? 0x8180 : 0x0100; // response+RD+RA / query with RD
  const head = [id >> 8, id & 255, flags >> 8, flags & 255, 0, 1, 0, answer ? 1 : 0, 0, 0, 0, 0];
  const ans = answer
    ? [0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4, ...answer.split(".").map(Number)] // name pointer, A, IN, TTL 30
    : [];
  return Uint8Array.from([...head, ...q, ...ans]);
}

interface SamplePacket {
  ifIndex: number;
  usec: number;
  data: Uint8Array;
  direction: Direction;
  comment?: string;
}

export function samplePackets(): SamplePacket[] {
  const out: SamplePacket[] = [];
  const at = (ifIndex: number, usec: number, direction: Direction, data: Uint8Array, comment?: string) =>
    out.push({ ifIndex, usec, direction, data, ...(comment !== undefined ? { comment } : {}) });
  const n1 = { srcMac: NODE1.mac, dstMac: NODE2.mac, src: NODE1.ip, dst: NODE2.ip };
  const n2 = { srcMac: NODE2.mac, dstMac: NODE1.mac, src: NODE2.ip, dst: NODE1.ip };
  at(0, 0, "outbound", buildArp({ srcMac: NODE1.mac, srcIp: NODE1.ip, dstIp: NODE2.ip }), "node-1 resolves node-2");
  at(0, 90, "inbound", buildArp({ op: ARPOP_REPLY, srcMac: NODE2.mac, srcIp: NODE2.ip, dstMac: NODE1.mac, dstIp: NODE1.ip }));
  const ping = new TextEncoder().encode("tcbox-ping-0123456789abcdefghijklmnopqrstuvwxyz0123");
  at(0, 200, "outbound", buildIcmpEcho({ ...n1, id: 4242, seq: 1, ipId: 0x1001, df: true, payload: ping }));
  at(0, 260, "inbound", buildIcmpEcho({ ...n2, id: 4242, seq: 1, ipId: 0x2001, reply: true, payload: ping }));
  // A TCP connection to a host-network server on node-2, seen on node-2/eth0.
  const c = { ...n1, sport: 43210, dport: 80, df: true };
  const s = { ...n2, sport: 80, dport: 43210, df: true };
  const synOpts: TcpOption[] = [{ kind: "mss", mss: 1460 }, { kind: "sackPermitted" }, { kind: "timestamp", tsval: 1000, tsecr: 0 }, { kind: "nop" }, { kind: "wscale", shift: 7 }];
  const req = new TextEncoder().encode("GET / HTTP/1.1\r\nHost: web\r\n\r\n");
  const resp = new TextEncoder().encode("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  const cs = 1_000_000;
  const ss = 3_000_000;
  at(1, 1000, "inbound", buildTcp({ ...c, id: 1, flags: TCPHDR_SYN, seq: cs, window: 64240, options: synOpts }), "TCP handshake, data, FIN");
  at(1, 1010, "outbound", buildTcp({ ...s, id: 0, flags: TCPHDR_SYN | TCPHDR_ACK, seq: ss, ack: cs + 1, window: 65160, options: synOpts.map((o) => (o.kind === "timestamp" ? { ...o, tsval: 7000, tsecr: 1000 } : o)) }));
  at(1, 1100, "inbound", buildTcp({ ...c, id: 2, flags: TCPHDR_ACK, seq: cs + 1, ack: ss + 1, window: 502 }));
  at(1, 1150, "inbound", buildTcp({ ...c, id: 3, flags: TCPHDR_PSH | TCPHDR_ACK, seq: cs + 1, ack: ss + 1, window: 502, payload: req }));
  at(1, 1300, "outbound", buildTcp({ ...s, id: 1, flags: TCPHDR_PSH | TCPHDR_ACK, seq: ss + 1, ack: cs + 1 + req.length, window: 509, payload: resp }));
  at(1, 1400, "inbound", buildTcp({ ...c, id: 4, flags: TCPHDR_FIN | TCPHDR_ACK, seq: cs + 1 + req.length, ack: ss + 1 + resp.length, window: 502 }));
  at(1, 1450, "outbound", buildTcp({ ...s, id: 2, flags: TCPHDR_FIN | TCPHDR_ACK, seq: ss + 1 + resp.length, ack: cs + 2 + req.length, window: 509 }));
  at(1, 1500, "inbound", buildTcp({ ...c, id: 5, flags: TCPHDR_ACK, seq: cs + 2 + req.length, ack: ss + 2 + resp.length, window: 502 }));
  // A DNS query from node-1 to CoreDNS and its answer.
  const dnsName = "kubernetes.default.svc.cluster.local";
  at(0, 2000, "outbound", buildUdp({ ...n1, dst: "10.96.0.10", id: 0x1002, sport: 53535, dport: 53, payload: dnsMessage(0x1234, dnsName) }), "DNS");
  at(0, 2300, "inbound", buildUdp({ ...n2, src: "10.96.0.10", id: 0x2002, sport: 53, dport: 53535, payload: dnsMessage(0x1234, dnsName, "10.96.0.1") }));
  // Pod-to-pod TCP across nodes in VXLAN VNI 1: out of node-1/eth0, into node-2/eth0 60 us later.
  const inner = buildTcp({ srcMac: POD1.mac, dstMac: POD2.mac, src: POD1.ip, dst: POD2.ip, id: 7, df: true, sport: 40000, dport: 8080, flags: TCPHDR_SYN, seq: 5_000_000, window: 64860, options: synOpts });
  const vx = buildVxlan({ ...n1, id: 0x1003, sport: 51234 }, 1, inner);
  at(0, 3000, "outbound", vx, "VXLAN VNI 1: pod 10.244.1.2 -> pod 10.244.2.3");
  at(1, 3060, "inbound", vx);
  return out.sort((a, b) => a.usec - b.usec);
}

/** The sample as pcapng bytes (or classic pcap, without interfaces, when `classic`). */
export function buildSampleCapture(classic = false): Uint8Array {
  const pkts = samplePackets();
  const tsNs = (usec: number) => T0 + BigInt(usec) * 1000n;
  if (classic) return writePcap(pkts.map((p) => ({ tsNs: tsNs(p.usec), data: p.data })));
  const w = new PcapngWriter();
  for (const name of SAMPLE_INTERFACES) w.addInterface({ name });
  for (const p of pkts) {
    w.writePacket({ ifIndex: p.ifIndex, tsNs: tsNs(p.usec), data: p.data, direction: p.direction, ...(p.comment !== undefined ? { comment: p.comment } : {}) });
  }
  return w.finish();
}

export function register(program: Command): void {
  const pcap = program.command("pcap").description("read and write packet captures (pcap, pcapng)");
  pcap
    .command("inspect")
    .description("print one tcpdump-style line per packet (-n -e -S; UTC times), or a JSON array with the parsed layers")
    .argument("<file>", "a pcap or pcapng file (Ethernet link type)")
    .option("--json", "print a JSON array: index, time, tsNs, ifIndex, interface, length, capturedLength, summary, layers or error")
    .option("--nano", "nanosecond timestamps")
    .action((file: string, opts: { json?: boolean; nano?: boolean }) => inspect(file, opts));
  pcap
    .command("write-sample")
    .description("write a small capture on node-1/eth0 and node-2/eth0: ARP, ping, a TCP connection, DNS, VXLAN")
    .argument("<file>", "output file (pcapng unless --pcap)")
    .option("--pcap", "write classic pcap (no interface names)")
    .option("--json", "print what was written as JSON")
    .action((file: string, opts: { pcap?: boolean; json?: boolean }) => {
      const bytes = buildSampleCapture(opts.pcap ?? false);
      try {
        writeFileSync(file, bytes);
      } catch (e) {
        throw new CliError(`cannot write: ${(e as Error).message}`, file);
      }
      const packets = samplePackets().length;
      const format = opts.pcap ? "pcap" : "pcapng";
      const interfaces = opts.pcap ? [] : SAMPLE_INTERFACES;
      if (opts.json) printJson({ file, format, packets, interfaces, bytes: bytes.length });
      else print(`wrote ${file}: ${packets} packets (${format}${opts.pcap ? "" : `, interfaces ${interfaces.join(", ")}`})`);
    });
}
