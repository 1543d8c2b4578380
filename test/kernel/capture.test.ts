// The real tools as referees for tcbox's capture files and packet lines.
//  (a) tshark reads the pcapng tcbox writes (`tcbox pcap write-sample`): no bad checksum, nothing malformed, no
//      expert warning; its interface names and decoded fields equal `tcbox pcap inspect --json`; tcpdump prints
//      the same lines as `tcbox pcap inspect`, for every packet cut at every length too; and tcpdump prints every
//      line of the format table as expected.
//  (b) Real kernel traffic between two network namespaces over a veth (offload off): ARP, ping, a TCP connection
//      (socat), a UDP datagram, a UDP datagram to a closed port (ICMP port unreachable). Captured by tcpdump
//      (classic pcap) and dumpcap (pcapng) at once; tcbox must agree with tshark field by field and with tcpdump
//      line by line on both files, and verify every checksum the kernel wrote.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { main } from "../../src/cli/main.js";
import { buildSampleCapture } from "../../src/cli/pcap.js";
import { formatRecord, type PacketJson } from "../../src/packet/format.js";
import { EthernetView, ETH_P_IP, IcmpView, IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, Ipv4View, TcpView, UdpView } from "../../src/packet/index.js";
import { writePcap, type PacketToWrite } from "../../src/packet/pcap.js";
import { readCapture } from "../../src/packet/pcapng.js";
import { table } from "../packet/format-cases.js";

const have = (bin: string) => ["/usr/sbin", "/sbin", "/usr/bin", "/bin"].some((d) => existsSync(`${d}/${bin}`));
const missingTools = ["tshark", "tcpdump"].filter((b) => !have(b));
const dir = mkdtempSync(join(tmpdir(), "tcbx-capture-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function run(args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string } = {}): string {
  const r = spawnSync(args[0]!, args.slice(1), { encoding: "utf8", timeout: 15_000, env: { ...process.env, ...opts.env }, input: opts.input });
  if (r.status !== 0) throw new Error(`${args.join(" ")} exited ${r.status}: ${r.stderr}`);
  return r.stdout;
}

/** `tcbox pcap inspect FILE [--json]`, in-process, stdout captured. */
async function inspect(file: string, json: boolean): Promise<string> {
  let out = "";
  const spy = vi.spyOn(process.stdout, "write").mockImplementation((s: string | Uint8Array) => ((out += String(s)), true));
  try {
    const code = await main(["pcap", "inspect", file, ...(json ? ["--json"] : [])]);
    if (code !== 0) throw new Error(`tcbox pcap inspect ${file} exited ${code}`);
  } finally {
    spy.mockRestore();
  }
  return out;
}

// ---- tshark fields and the same fields from tcbox's JSON ----
const FIELDS = [
  "frame.number", "frame.interface_name", "frame.len", "frame.cap_len", "frame.time_epoch",
  "eth.src", "eth.dst", "eth.type", "arp.opcode", "arp.src.hw_mac", "arp.src.proto_ipv4", "arp.dst.proto_ipv4",
  "ip.src", "ip.dst", "ip.proto", "ip.ttl", "ip.id", "ip.len",
  "tcp.srcport", "tcp.dstport", "tcp.seq_raw", "tcp.ack_raw", "tcp.flags", "tcp.window_size_value", "tcp.len",
  "udp.srcport", "udp.dstport", "udp.length", "icmp.type", "icmp.code", "icmp.ident", "icmp.seq", "vxlan.vni",
];
const CHECKS = ["ip.checksum.status", "tcp.checksum.status", "udp.checksum.status", "icmp.checksum.status", "_ws.malformed", "_ws.expert.severity", "_ws.expert.message"];

function tshark(file: string, fields: string[]): Record<string, string>[] {
  const args = ["tshark", "-r", file, "-o", "tcp.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE",
    "-T", "fields", "-E", "occurrence=a", "-E", "aggregator=,", "-E", "separator=\t", ...fields.flatMap((f) => ["-e", f])];
  // Only the final newline goes: trailing tabs are empty fields.
  const lines = run(args).replace(/\n$/, "").split("\n");
  return lines.map((line) => Object.fromEntries(fields.map((f, i) => [f, line.split("\t")[i] ?? ""])));
}

/* eslint-disable @typescript-eslint/no-explicit-any */
const hex4 = (v: number) => "0x" + v.toString(16).padStart(4, "0");
const list = (xs: unknown[]) => xs.filter((x) => x !== undefined && x !== null).map(String).join(",");

/** tshark's values for FIELDS, computed from one `tcbox pcap inspect --json` element (dissection order). */
function tcboxFields(p: PacketJson): Record<string, string> {
  const L = p.layers as any;
  const inner = L.vxlan?.inner;
  const q = L.icmp?.quoted;
  const eths = [L.eth, inner?.eth].filter(Boolean);
  const ips = [L.ipv4, q?.ipv4, inner?.ipv4].filter(Boolean);
  const tcps = [L.tcp, inner?.tcp].filter(Boolean);
  const udps = [L.udp, inner?.udp].filter(Boolean);
  const ports = (proto: number, key: "sport" | "dport", full: any[]) => list([...full.slice(0, 1).map((u) => u[key]), q?.ipv4.protocol === proto ? q[key] : undefined, ...full.slice(1).map((u) => u[key])]);
  const sec = BigInt(p.tsNs) / 1_000_000_000n;
  const ns = BigInt(p.tsNs) % 1_000_000_000n;
  const f: Record<string, string> = {
    "frame.number": String(p.index),
    "frame.interface_name": p.interface ?? "",
    "frame.len": String(p.length),
    "frame.cap_len": String(p.capturedLength),
    "frame.time_epoch": `${sec}.${String(ns).padStart(9, "0")}`,
    "eth.src": list(eths.map((e) => e.src)),
    "eth.dst": list(eths.map((e) => e.dst)),
    "eth.type": list(eths.map((e) => hex4(e.type))),
    "arp.opcode": list([L.arp?.op, inner?.arp?.op]),
    "arp.src.hw_mac": list([L.arp?.sha, inner?.arp?.sha]),
    "arp.src.proto_ipv4": list([L.arp?.spa, inner?.arp?.spa]),
    "arp.dst.proto_ipv4": list([L.arp?.tpa, inner?.arp?.tpa]),
    "ip.src": list(ips.map((i) => i.src)),
    "ip.dst": list(ips.map((i) => i.dst)),
    "ip.proto": list(ips.map((i) => i.protocol)),
    "ip.ttl": list(ips.map((i) => i.ttl)),
    "ip.id": list(ips.map((i) => hex4(i.id))),
    "ip.len": list(ips.map((i) => i.length)),
    "tcp.srcport": ports(6, "sport", tcps),
    "tcp.dstport": ports(6, "dport", tcps),
    "tcp.seq_raw": list(tcps.map((t) => t.seq)),
    "tcp.ack_raw": list(tcps.map((t) => t.ack)),
    "tcp.flags": list(tcps.map((t) => hex4(t.flags))),
    "tcp.window_size_value": list(tcps.map((t) => t.window)),
    "tcp.len": list([L.tcp ? L.payload.length / 2 : undefined, inner?.tcp ? inner.payload.length / 2 : undefined]),
    "udp.srcport": ports(17, "sport", udps),
    "udp.dstport": ports(17, "dport", udps),
    "udp.length": list(udps.map((u) => u.length)),
    "icmp.type": list([L.icmp?.type, inner?.icmp?.type]),
    "icmp.code": list([L.icmp?.code, inner?.icmp?.code]),
    "icmp.ident": list([L.icmp?.id, inner?.icmp?.id]),
    "icmp.seq": list([L.icmp?.seq, inner?.icmp?.seq]),
    "vxlan.vni": list([L.vxlan?.vni]),
  };
  // The quoted datagram's UDP length and TCP sequence are decoded by tshark, not by tcbox's quoted summary.
  if (q) {
    delete f["udp.length"];
    delete f["tcp.seq_raw"];
  }
  return f;
}

/** What tshark finds wrong in each frame: a bad checksum, a malformed packet, an expert warning or error. */
function problems(rows: Record<string, string>[]): string[] {
  const out: string[] = [];
  for (const row of rows) {
    const n = row["frame.number"];
    for (const k of CHECKS.slice(0, 4)) {
      // 0 = bad; 1 = good; 2 = unverified (a quoted header inside an ICMP error); 3 = not present (UDP checksum 0).
      if ((row[k] ?? "").split(",").includes("0")) out.push(`frame ${n}: ${k} bad`);
    }
    if (row["_ws.malformed"]) out.push(`frame ${n}: malformed`);
    // Expert severities: 0x100000 comment, 0x200000 chat, 0x400000 note; 0x600000 warning and 0x800000 error.
    const severe = (row["_ws.expert.severity"] ?? "").split(",").filter((v) => v !== "" && Number(v) >= 0x600000);
    if (severe.length) out.push(`frame ${n}: expert ${severe.join(",")}: ${row["_ws.expert.message"]}`);
  }
  return out;
}

/** tshark and tcbox agree on every field of every packet; and tshark finds nothing wrong with any of them. */
async function expectAgreement(file: string, minPackets: number): Promise<void> {
  const ours = JSON.parse(await inspect(file, true)) as PacketJson[];
  expect(ours.length).toBeGreaterThanOrEqual(minPackets);
  expect(ours.filter((p) => p.error !== undefined)).toEqual([]);
  const theirs = tshark(file, [...FIELDS, ...CHECKS]);
  expect(theirs).toHaveLength(ours.length);
  ours.forEach((p, i) => {
    const want = tcboxFields(p);
    const got = Object.fromEntries(Object.keys(want).map((k) => [k, theirs[i]![k]]));
    expect({ frame: p.index, ...got }).toEqual({ frame: p.index, ...want });
  });
  expect(problems(theirs)).toEqual([]);
}

/** tcpdump -n -e -S prints what tcbox prints (tcbox's interface column removed when there is one). */
async function expectSameLines(file: string): Promise<void> {
  const theirs = run(["tcpdump", "-n", "-e", "-S", "-r", file], { env: { TZ: "UTC" } }).trimEnd().split("\n");
  const ours = (await inspect(file, false)).trimEnd().split("\n").map((l) => l.replace(/^(\S+) \S+\/eth0 (?:In |Out )?/, "$1 "));
  expect(ours).toEqual(theirs);
}

describe.skipIf(missingTools.length > 0)("tshark and tcpdump read tcbox's captures", () => {
  if (missingTools.length > 0) process.stderr.write(`capture (a): SKIPPED: ${missingTools.join(", ")} not installed\n`);
  const sample = join(dir, "sample.pcapng");
  beforeAll(() => writeFileSync(sample, buildSampleCapture()));

  it("no bad checksum, nothing malformed, interface names and fields equal inspect --json", async () => {
    await expectAgreement(sample, 16);
    const names = tshark(sample, ["frame.interface_name"]).map((r) => r["frame.interface_name"]);
    expect(new Set(names)).toEqual(new Set(["node-1/eth0", "node-2/eth0"]));
  });

  it("tcpdump prints the same lines as tcbox pcap inspect", async () => {
    await expectSameLines(sample);
  });

  it("every cut of every packet (sample and real veth fixture) prints as tcpdump prints it", () => {
    const fixture = readFileSync(new URL("../fixtures/pcap/veth.pcap", import.meta.url));
    const sources = [readCapture(buildSampleCapture(true), "sample").records, readCapture(fixture, "veth.pcap").records];
    const cuts: PacketToWrite[] = [];
    for (const recs of sources) {
      for (const r of recs) {
        for (let n = 1; n <= r.data.length; n++) cuts.push({ tsNs: BigInt(cuts.length) * 1000n, data: r.data.subarray(0, n), origLen: r.origLen });
      }
    }
    const f = join(dir, "cuts.pcap");
    const bytes = writePcap(cuts);
    writeFileSync(f, bytes);
    const theirs = run(["tcpdump", "-n", "-e", "-S", "-r", f], { env: { TZ: "UTC" } }).trimEnd().split("\n");
    const ours = readCapture(bytes, "cuts.pcap").records.flatMap((r) => formatRecord(r).split("\n"));
    expect(cuts.length).toBeGreaterThan(2000);
    expect(ours).toEqual(theirs);
  });

  it("the checks can fail: tshark flags a corrupted TCP checksum", () => {
    const bytes = buildSampleCapture(true); // classic pcap: records in sample order
    const cap = readCapture(bytes, "s.pcap");
    const syn = cap.records.find((r) => r.data.length === 74 && r.data[23] === 6)!; // the first TCP SYN
    syn.data[14 + 20 + 16]! ^= 0xff; // its TCP checksum (the record's data is a view into `bytes`)
    const f = join(dir, "corrupt.pcap");
    writeFileSync(f, bytes);
    expect(problems(tshark(f, ["frame.number", ...CHECKS]))).toContain(`frame ${syn.index}: tcp.checksum.status bad`);
  });

  it("tcpdump prints every line of the format table as expected", () => {
    const f = join(dir, "table.pcap");
    writeFileSync(f, writePcap(table.map((t, i) => ({ tsNs: BigInt(i) * 1000n, data: t.bytes }))));
    const theirs = run(["tcpdump", "-n", "-e", "-S", "-r", f], { env: { TZ: "UTC" } }).trimEnd();
    expect(theirs).toBe(table.map((t, i) => `00:00:00.${String(i).padStart(6, "0")} ${t.line}`).join("\n"));
  });
});

// ---- (b) real kernel traffic ----
const A = `tcbxcpa${process.pid}`;
const B = `tcbxcpb${process.pid}`;
const made: string[] = [];
let skipReal = "";
const inNs = (ns: string, ...a: string[]) => ["ip", "netns", "exec", ns, ...a];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const exited = (p: ChildProcess, ms: number) =>
  new Promise<void>((res) => {
    if (p.exitCode !== null || p.signalCode !== null) return res();
    const t = setTimeout(() => (p.kill("SIGKILL"), res()), ms);
    p.once("exit", () => (clearTimeout(t), res()));
  });

async function captureRealTraffic(): Promise<void> {
  for (const ns of [A, B]) {
    run(["ip", "netns", "add", ns]);
    made.push(ns);
    run(inNs(ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1", "net.ipv4.ping_group_range=0 2147483647"));
    run(inNs(ns, "ip", "link", "set", "lo", "up"));
  }
  run(inNs(A, "ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", B));
  for (const [ns, ip] of [[A, "10.99.0.1/24"], [B, "10.99.0.2/24"]] as const) {
    run(inNs(ns, "ip", "addr", "add", ip, "dev", "eth0"));
    run(inNs(ns, "ethtool", "-K", "eth0", "tx", "off")); // the captured bytes carry the final checksums
    run(inNs(ns, "ip", "link", "set", "eth0", "up"));
  }
  const caps = [
    spawn("ip", inNs(A, "tcpdump", "-U", "--immediate-mode", "-Z", "root", "-n", "-i", "eth0", "-w", join(dir, "real.pcap")).slice(1), { stdio: "ignore" }),
    spawn("ip", inNs(A, "dumpcap", "-q", "-i", "eth0", "-w", join(dir, "real.pcapng")).slice(1), { stdio: "ignore" }),
  ];
  const servers: ChildProcess[] = [];
  try {
    // dumpcap -q says nothing when ready: give both capturers time to attach (2 s was too little under load).
    await sleep(4000);
    servers.push(spawn("ip", inNs(B, "socat", "-u", "TCP4-LISTEN:12345,reuseaddr", "OPEN:/dev/null").slice(1), { stdio: "ignore" }));
    servers.push(spawn("ip", inNs(B, "socat", "-u", "UDP4-RECV:40000", "OPEN:/dev/null").slice(1), { stdio: "ignore" }));
    // An unprivileged ICMP echo socket: the kernel writes the echo id and the checksum.
    run(inNs(A, "/usr/bin/python3", "-c",
      "import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP); s.settimeout(2)\n" +
      "s.sendto(b'\\x08\\x00\\x00\\x00\\x00\\x00\\x00\\x01'+b'tcbox-ping'*4, ('10.99.0.2', 0)); s.recvfrom(1500)"));
    await sleep(300);
    run(inNs(A, "socat", "-u", "-", "TCP4:10.99.0.2:12345,connect-timeout=2"), { input: "hello tcbox\n" });
    run(inNs(A, "socat", "-u", "-", "UDP4-SENDTO:10.99.0.2:40000"), { input: "udp-data" });
    run(inNs(A, "socat", "-u", "-", "UDP4-SENDTO:10.99.0.2:40053"), { input: "closed" });
    await sleep(1500); // let the capturers drain before SIGINT

  } finally {
    for (const s of servers) s.kill("SIGTERM");
    for (const c of caps) c.kill("SIGINT");
    await Promise.all([...caps, ...servers].map((p) => exited(p, 5000)));
  }
}

describe("real kernel packets: tcbox agrees with tshark and tcpdump", () => {
  beforeAll(async () => {
    if (typeof process.getuid !== "function" || process.getuid() !== 0) skipReal = "not root";
    else if (missingTools.length) skipReal = `${missingTools.join(", ")} not installed`;
    else if (!["dumpcap", "socat", "ethtool"].every(have)) skipReal = "dumpcap, socat or ethtool not installed";
    else if (!existsSync("/usr/bin/python3")) skipReal = "/usr/bin/python3 missing";
    if (skipReal) return;
    const probe = spawnSync("ip", ["netns", "add", A], { encoding: "utf8" });
    if (probe.status !== 0) {
      skipReal = `ip netns add failed: ${probe.stderr.trim()}`;
      return;
    }
    spawnSync("ip", ["netns", "del", A]);
    await captureRealTraffic();
  }, 30_000);

  afterAll(() => {
    for (const ns of made.splice(0)) spawnSync("ip", ["netns", "del", ns]);
  });
  afterEach(() => vi.restoreAllMocks());

  for (const file of ["real.pcap", "real.pcapng"]) {
    it(`${file}: every field tshark decodes equals inspect --json; no bad checksum or malformed packet`, async (ctx) => {
      if (skipReal) {
        process.stderr.write(`capture (b): SKIPPED: ${skipReal}\n`);
        ctx.skip();
      }
      // ARP x2, echo x2, TCP >= 8, UDP, UDP + ICMP port unreachable
      await expectAgreement(join(dir, file), 15);
    });

    it(`${file}: tcpdump prints the same lines as tcbox pcap inspect`, async (ctx) => {
      if (skipReal) ctx.skip();
      await expectSameLines(join(dir, file));
    });

    it(`${file}: tcbox verifies every checksum the kernel wrote`, (ctx) => {
      if (skipReal) ctx.skip();
      const cap = readCapture(readFileSync(join(dir, file)), file);
      const seen = new Set<number>();
      for (const r of cap.records) {
        const eth = new EthernetView().bind(r.data);
        if (eth.etherType !== ETH_P_IP) continue;
        const ip = new Ipv4View().bind(r.data, eth.payloadOff);
        const ok: Record<string, boolean> = { ip: ip.verifyChecksum() };
        if (ip.protocol === IPPROTO_TCP) ok.tcp = new TcpView().bind(r.data, ip.payloadOff, ip.payloadLen).verifyChecksum(ip.src, ip.dst);
        if (ip.protocol === IPPROTO_UDP) ok.udp = new UdpView().bind(r.data, ip.payloadOff, ip.payloadLen).verifyChecksum(ip.src, ip.dst);
        if (ip.protocol === IPPROTO_ICMP) ok.icmp = new IcmpView().bind(r.data, ip.payloadOff, ip.payloadLen).verifyChecksum();
        expect({ packet: r.index, ...ok }).toEqual({ packet: r.index, ...Object.fromEntries(Object.keys(ok).map((k) => [k, true])) });
        seen.add(ip.protocol);
      }
      expect([...seen].sort((a, b) => a - b)).toEqual([IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP]);
    });
  }
});
