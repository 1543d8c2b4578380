// The kernel as the referee for our wire code: real traffic between two network namespaces over a veth pair
// (checksum offload off, so the captured bytes carry final checksums) is captured with tcpdump and must parse,
// verify every checksum with our views, round-trip through emitPacket, and equal what our builders make for the
// kernel-made ARP request, ICMP echo reply and ICMP port unreachable.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  buildArp,
  buildIcmpEcho,
  buildIcmpError,
  emitPacket,
  EthernetView,
  ETH_P_IP,
  ICMP_DEST_UNREACH,
  ICMP_ECHOREPLY,
  ICMP_PORT_UNREACH,
  IcmpView,
  IPPROTO_ICMP,
  IPPROTO_TCP,
  IPPROTO_UDP,
  Ipv4View,
  parsePacket,
  TCP_FLAGS,
  TcpView,
  toHex,
  UdpView,
  type ParsedPacket,
} from "../../src/packet/index.js";
import { readPcap } from "../../src/packet/pcap.js";
import { startCapture, stopCapture } from "./net-topology.js";

const A = `tcbxpca${process.pid}`;
const B = `tcbxpcb${process.pid}`;
const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
let skipReason = "";
let made: string[] = [];
let frames: Uint8Array[] = [];
const dir = mkdtempSync(join(tmpdir(), "tcbx-pcap-"));

function sh(args: string[], input?: Uint8Array | string): { status: number | null; out: string; err: string } {
  const r = spawnSync(args[0]!, args.slice(1), { input, timeout: 10_000 });
  return { status: r.status, out: r.stdout?.toString() ?? "", err: r.stderr?.toString() ?? "" };
}
function must(args: string[]): void {
  const r = sh(args);
  if (r.status !== 0) throw new Error(`${args.join(" ")}: ${r.err.trim()}`);
}
const inA = (...a: string[]) => ["ip", "netns", "exec", A, ...a];
const inB = (...a: string[]) => ["ip", "netns", "exec", B, ...a];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** An ICMP echo request message (no IP header) for socat's raw IP socket; the kernel adds the IP header. */
function echoMessage(): Uint8Array {
  const frame = buildIcmpEcho({ src: 0, dst: 0, id: 0x7a7a, seq: 3, payload: new TextEncoder().encode("tcbox-ping-0123") });
  return frame.slice(34);
}

beforeAll(async () => {
  if (!isRoot) {
    skipReason = "not root";
    return;
  }
  const r = sh(["ip", "netns", "add", A]);
  if (r.status !== 0) {
    skipReason = `ip netns add failed: ${r.err.trim()}`;
    return;
  }
  made.push(A);
  must(["ip", "netns", "add", B]);
  made.push(B);
  must(inA("ip", "link", "add", "va", "type", "veth", "peer", "name", "vb", "netns", B));
  must(inA("ip", "addr", "add", "10.200.0.1/24", "dev", "va"));
  must(inB("ip", "addr", "add", "10.200.0.2/24", "dev", "vb"));
  for (const [ns, dev] of [[A, "va"], [B, "vb"]] as const) {
    must(["ip", "netns", "exec", ns, "ethtool", "-K", dev, "tx", "off"]);
    must(["ip", "netns", "exec", ns, "ip", "link", "set", dev, "up"]);
    must(["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"]);
  }
  const pcap = join(dir, "va.pcap");
  // Resolves once tcpdump says it is listening: a fixed sleep loses the first frames on a loaded machine.
  const dump: ChildProcess = await startCapture(A, "va", pcap);
  let listener: ChildProcess | undefined;
  try {
    listener = spawn("ip", ["netns", "exec", B, "socat", "-u", "TCP4-LISTEN:8080,reuseaddr", "OPEN:/dev/null"], { stdio: "ignore" });
    await sleep(300);
    sh(inA("socat", "-u", "STDIN", "IP4-SENDTO:10.200.0.2:1"), echoMessage());
    sh(inA("socat", "-u", "STDIN", "UDP4-SENDTO:10.200.0.2:9999"), "hello-closed-port");
    sh(inA("socat", "-u", "STDIN", "TCP4:10.200.0.2:8080,connect-timeout=2"), "GET / HTTP/1.0\r\n\r\n");
    sh(inA("socat", "-u", "STDIN", "TCP4:10.200.0.2:9998,connect-timeout=2"), "x");
    // Let tcpdump drain what the kernel queued for it before SIGINT (it drops the rest).
    await sleep(1500);
  } finally {
    if (listener && listener.exitCode === null) listener.kill("SIGTERM");
    await stopCapture(dump);
  }
  frames = readPcap(readFileSync(pcap), "va.pcap").records.map((r) => r.data.slice());
}, 30_000);

afterAll(() => {
  for (const ns of made) spawnSync("ip", ["netns", "del", ns]);
  made = [];
  rmSync(dir, { recursive: true, force: true });
});

function find(pred: (p: ParsedPacket) => boolean): { p: ParsedPacket; b: Uint8Array } {
  for (const b of frames) {
    const p = parsePacket(b);
    if (pred(p)) return { p, b };
  }
  throw new Error(`no captured frame matches (have ${frames.length})`);
}

describe("kernel-made packets (veth capture)", () => {
  it("setup", (ctx) => {
    if (skipReason) {
      process.stderr.write(`packet-capture: SKIPPED: ${skipReason}\n`);
      ctx.skip();
    }
    expect(frames.length).toBeGreaterThanOrEqual(10);
  });

  it("every frame parses, every checksum verifies with our views, emit reproduces it", (ctx) => {
    if (skipReason) ctx.skip();
    const seen = new Set<number>();
    for (const b of frames) {
      const p = parsePacket(b);
      expect(toHex(emitPacket(p))).toBe(toHex(b));
      const eth = new EthernetView().bind(b);
      if (eth.etherType !== ETH_P_IP) continue;
      const ip = new Ipv4View().bind(b, eth.payloadOff);
      expect(ip.verifyChecksum()).toBe(true);
      seen.add(ip.protocol);
      if (ip.protocol === IPPROTO_TCP) expect(new TcpView().bind(b, ip.payloadOff, ip.payloadLen).verifyChecksum(ip.src, ip.dst)).toBe(true);
      if (ip.protocol === IPPROTO_UDP) expect(new UdpView().bind(b, ip.payloadOff, ip.payloadLen).verifyChecksum(ip.src, ip.dst)).toBe(true);
      if (ip.protocol === IPPROTO_ICMP) expect(new IcmpView().bind(b, ip.payloadOff, ip.payloadLen).verifyChecksum()).toBe(true);
    }
    expect([...seen].sort((x, y) => x - y)).toEqual([IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP]);
  });

  it("the kernel's SYN carries options we decode (MSS 1460 on a 1500 MTU veth)", (ctx) => {
    if (skipReason) ctx.skip();
    const { p } = find((q) => q.tcp?.flags === TCP_FLAGS.SYN && q.tcp.dport === 8080);
    expect(p.tcp!.options).toContainEqual({ kind: "mss", mss: 1460 });
    expect(p.tcp!.options!.some((o) => o.kind === "sackPermitted")).toBe(true);
    const rst = find((q) => q.tcp?.sport === 9998).p;
    expect(rst.tcp!.flags).toBe(TCP_FLAGS.RST | TCP_FLAGS.ACK);
  });

  it("ARP request equals buildArp", (ctx) => {
    if (skipReason) ctx.skip();
    const { p, b } = find((q) => q.arp?.op === 1 && q.arp.tpa === "10.200.0.2");
    expect(toHex(buildArp({ srcMac: p.arp!.sha, srcIp: "10.200.0.1", dstIp: "10.200.0.2" }))).toBe(toHex(b));
  });

  it("ICMP echo reply equals buildIcmpEcho", (ctx) => {
    if (skipReason) ctx.skip();
    const { p, b } = find((q) => q.icmp?.type === ICMP_ECHOREPLY);
    const built = buildIcmpEcho({
      srcMac: p.eth.src, dstMac: p.eth.dst, src: p.ipv4!.src, dst: p.ipv4!.dst, ipId: p.ipv4!.id, df: p.ipv4!.df, ttl: p.ipv4!.ttl,
      id: 0x7a7a, seq: 3, reply: true, payload: new TextEncoder().encode("tcbox-ping-0123"),
    });
    expect(toHex(built)).toBe(toHex(b));
  });

  it("ICMP port unreachable equals buildIcmpError over the captured UDP frame", (ctx) => {
    if (skipReason) ctx.skip();
    const udp = find((q) => q.udp?.dport === 9999).b;
    const { p, b } = find((q) => q.icmp?.type === ICMP_DEST_UNREACH);
    expect(p.icmp!.code).toBe(ICMP_PORT_UNREACH);
    expect(p.icmp!.quoted).toMatchObject({ sport: parsePacket(udp).udp!.sport, dport: 9999 });
    // icmp_send() quotes as much of the datagram as fits in 576 bytes (RFC 1812), here all of it; TOS 0xc0.
    const built = buildIcmpError(ICMP_DEST_UNREACH, ICMP_PORT_UNREACH, udp, { id: p.ipv4!.id, df: p.ipv4!.df, quoteLen: 576 - 28 });
    expect(toHex(built)).toBe(toHex(b));
  });
});
