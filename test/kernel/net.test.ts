// Differential test of the kernel model (src/net/) against the real kernel. The same iproute2 commands build a
// Flannel-style pair of nodes (cni0 bridge, a pod each, flannel.1 VXLAN over a veth "wire", a blackhole and a
// metric route) in real namespaces and in the model; then
//   (a) `ip route` (main and local tables), `ip addr`, `bridge fdb`, `ip neigh` and the VXLAN details must agree
//       once MACs are replaced by the device owning them and kernel-only lines (multicast FDB, VLAN 1) dropped;
//   (b) the same pings and a UDP datagram to a closed port are sent from pod A in both; what pod A receives
//       (ICMP type, code, source, TTL, TOS, lengths) and every frame on node 1's underlay (VXLAN outer header:
//       +50 bytes, UDP port, checksum 0, VNI, outer TTL/DF; inner addresses and TTLs) must be the same.
// Skips with a message when not root or when `ip netns add` fails. Cleans up in afterAll.
import { execFileSync, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { World, exec, ipAddr, ipNeigh, ipLink, ipRoute, ipRouteGet, bridgeFdb, macToString, sendIcmpEcho, sendUdp, RT_TABLE_LOCAL } from "../../src/net/index.js";
import { parseIpv4, formatIpv4 } from "../../src/packet/addr.js";
import { get16, get32, l4Checksum } from "../../src/packet/checksum.js";
import { readPcap } from "../../src/packet/pcap.js";
import { flannelCommands, labelMacs, normAddr, normFdb, normNeigh, vxlanFields, type Names, startCapture, stopCapture } from "./net-topology.js";

const P = `tcbxnet${process.pid}`;
const N: Names = { n1: `${P}n1`, n2: `${P}n2`, a: `${P}a`, b: `${P}b` };
const ROLE: Record<string, string> = { [N.n1]: "n1", [N.n2]: "n2", [N.a]: "a", [N.b]: "b" };
const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let skipReason = "";
const made: string[] = [];
let dir = "";

interface Side {
  route: Record<string, string>;
  local: string;
  addr: Record<string, string[]>;
  fdb: string[];
  neigh: string[];
  vxlan: string;
  /** `ip route get` on node 1 for a few destinations (first line, without `uid 0`). */
  routeGet: string[];
  /** ICMP messages pod A received, in order. */
  atPod: string[];
  /** Every IPv4 frame on node 1's underlay, fingerprinted, sorted. */
  wire: string[];
}
let kernel: Side | null = null;
let model: Side | null = null;

/** iproute2 ends each route line with a space; the model does not. */
const trimLines = (t: string) => t.replace(/ +$/gm, "");

function inNs(ns: string, cmd: string, input?: string): string {
  const argv = cmd.split(" ");
  return execFileSync("ip", ["netns", "exec", ns, ...argv], { encoding: "utf8", input, stdio: ["pipe", "pipe", "pipe"] });
}

/** One IPv4 frame as a comparable line; VXLAN frames show outer facts and the inner packet. */
function fingerprint(f: Uint8Array): string | null {
  if (get16(f, 12) !== 0x0800) return null;
  const ip = (o: number) => {
    const proto = f[o + 9]!;
    const l4 = o + (f[o]! & 15) * 4;
    const what = proto === 1 ? `icmp ${f[l4]}/${f[l4 + 1]}` : proto === 17 ? `udp ${get16(f, l4 + 2)}` : `proto ${proto}`;
    return `${formatIpv4(get32(f, o + 12))}>${formatIpv4(get32(f, o + 16))} ttl ${f[o + 8]} len ${get16(f, o + 2)} ${what}`;
  };
  if (f[23] === 17 && get16(f, 36) === 4789) {
    const inner = f.subarray(50);
    const df = (get16(f, 20) & 0x4000) !== 0;
    const csum = get16(f, 40) === 0 ? "0" : l4Checksum(f, 34, f.length - 34, 6, get32(f, 26), get32(f, 30), 17) === get16(f, 40) ? "valid" : "bad";
    return `vxlan +${f.length - inner.length} ttl ${f[22]} df ${df} csum ${csum} vni ${(f[46]! << 16) | (f[47]! << 8) | f[48]!} | ${fingerprintInner(inner)}`;
  }
  return `ip ${ip(14)}`;
  function fingerprintInner(g: Uint8Array): string {
    const saved = f;
    f = g;
    const s = get16(g, 12) === 0x0800 ? ip(14) : "non-ip";
    f = saved;
    return s;
  }
}

/** What pod A sees arriving: ICMP messages addressed to it. */
function icmpAtPod(f: Uint8Array): string | null {
  if (get16(f, 12) !== 0x0800 || f[23] !== 1 || get32(f, 30) !== parseIpv4("10.244.0.2")) return null;
  const l4 = 14 + (f[14]! & 15) * 4;
  const quoted = get16(f, 16) - 20 - 8;
  return `icmp ${f[l4]}/${f[l4 + 1]} from ${formatIpv4(get32(f, 26))} ttl ${f[22]} tos 0x${f[15]!.toString(16)} len ${get16(f, 16)}${f[l4] === 0 ? "" : ` quoted ${quoted}`}`;
}

const GET_DSTS = ["10.244.1.2", "10.244.0.2", "192.168.50.12", "192.168.50.11", "203.0.113.5", "127.0.0.1"];

/** The sends, in order: scapy on the kernel side (no ping binary needed), the model's senders on the other. */
const SCAPY = `
import time
from scapy.all import IP, ICMP, UDP, Raw, send, conf
conf.verb = 0
pad = b"x" * 56
for dst, ttl in [("10.244.1.2", 64), ("10.244.1.2", 1), ("203.0.113.5", 64), ("198.51.100.1", 64)]:
    send(IP(dst=dst, ttl=ttl, id=1) / ICMP(id=1, seq=1) / Raw(pad))
    time.sleep(0.3)
send(IP(dst="10.244.1.2", id=1) / UDP(sport=40000, dport=9999) / Raw(b"hello"))
time.sleep(0.3)
`;

async function runKernel(): Promise<Side> {
  for (const ns of [N.n1, N.n2, N.a, N.b]) {
    execFileSync("ip", ["netns", "add", ns]);
    made.push(ns);
    inNs(ns, "sysctl -qw net.ipv6.conf.all.disable_ipv6=1");
    inNs(ns, "sysctl -qw net.ipv6.conf.default.disable_ipv6=1");
  }
  for (const [ns, cmd] of flannelCommands(N)) inNs(ns, cmd.startsWith("sysctl -w") ? cmd.replace("-w", "-qw") : cmd);
  for (const [ns, dev] of [[N.n1, "eth0"], [N.n2, "eth0"], [N.a, "eth0"], [N.b, "eth0"], [N.n1, "veth1"], [N.n2, "veth1"]] as const) spawnSync("ip", ["netns", "exec", ns, "ethtool", "-K", dev, "tx", "off"]);
  const pa = join(dir, "a.pcap");
  const pw = join(dir, "wire.pcap");
  const dumps: ChildProcess[] = [];

  try {
    dumps.push(await startCapture(N.a, "eth0", pa));
    dumps.push(await startCapture(N.n1, "eth0", pw));
    const r = spawnSync("ip", ["netns", "exec", N.a, "/usr/bin/python3", "-c", SCAPY], { encoding: "utf8", timeout: 15000 });
    if (r.status !== 0) throw new Error(`scapy failed: ${r.stderr}`);
    // Let tcpdump drain what the kernel already queued for it before SIGINT (it drops the rest); slow under load.
    await sleep(1500);
  } finally {
    await Promise.all(dumps.map(stopCapture));
  }
  const macs = new Map<string, string>();
  for (const ns of [N.n1, N.n2, N.a, N.b]) {
    for (const line of inNs(ns, "ip -o link").split("\n")) {
      const m = /^\d+: ([^:@]+)[^\n]*link\/ether ([0-9a-f:]{17})/.exec(line);
      if (m) macs.set(m[2]!, `${ROLE[ns]}/${m[1]}`);
    }
  }
  const frames = (p: string) => readPcap(readFileSync(p), p).records.map((r) => r.data.slice());
  return {
    route: Object.fromEntries([N.n1, N.n2, N.a].map((ns) => [ROLE[ns]!, trimLines(inNs(ns, "ip route"))])),
    local: trimLines(inNs(N.n1, "ip route show table local")),
    routeGet: GET_DSTS.map((d) => inNs(N.n1, `ip route get ${d}`).split("\n")[0]!.replace(/ uid \d+/, "").trim()),
    addr: Object.fromEntries([N.n1, N.a].map((ns) => [ROLE[ns]!, normAddr(inNs(ns, "ip addr"))])),
    fdb: normFdb(inNs(N.n1, "bridge fdb show"), macs),
    neigh: normNeigh(inNs(N.n1, "ip neigh"), macs),
    vxlan: vxlanFields(inNs(N.n1, "ip -d link show flannel.1")),
    atPod: frames(pa).map(icmpAtPod).filter((x): x is string => x !== null),
    wire: frames(pw).map(fingerprint).filter((x): x is string => x !== null).sort(),
  };
}

function runModel(): Side {
  const w = new World();
  for (const ns of [N.n1, N.n2, N.a, N.b]) w.addNamespace(ns);
  for (const [ns, cmd] of flannelCommands(N)) exec(w.ns(ns), cmd);
  const atPod: string[] = [];
  const wire: string[] = [];
  w.tap = (dev, pkt, dir) => {
    const f = pkt.frame();
    if (dev.ns.name === N.a && dev.name === "eth0" && dir === 0) {
      const s = icmpAtPod(f);
      if (s !== null) atPod.push(s);
    }
    if (dev.ns.name === N.n1 && dev.name === "eth0") {
      const s = fingerprint(f);
      if (s !== null) wire.push(s);
    }
  };
  const a = w.ns(N.a);
  const dst = parseIpv4("10.244.1.2");
  for (const [to, ttl] of [["10.244.1.2", 64], ["10.244.1.2", 1], ["203.0.113.5", 64], ["198.51.100.1", 64]] as const) {
    sendIcmpEcho(a, { dst: parseIpv4(to), ttl, id: 1, seq: 1, payload: 56, df: false, ipId: 1 });
    w.run();
  }
  sendUdp(a, { dst, sport: 40000, dport: 9999, payload: new TextEncoder().encode("hello"), df: false, ipId: 1 });
  w.run();
  const macs = new Map<string, string>();
  for (const ns of w.namespaces) for (const d of ns.deviceList()) if (d.mac !== 0) macs.set(macToString(d.mac), `${ROLE[ns.name]}/${d.name}`);
  return {
    route: Object.fromEntries([N.n1, N.n2, N.a].map((ns) => [ROLE[ns]!, ipRoute(w.ns(ns))])),
    local: ipRoute(w.ns(N.n1), RT_TABLE_LOCAL),
    routeGet: GET_DSTS.map((d) => ipRouteGet(w.ns(N.n1), parseIpv4(d)).trim()),
    addr: Object.fromEntries([N.n1, N.a].map((ns) => [ROLE[ns]!, normAddr(ipAddr(w.ns(ns)))])),
    fdb: normFdb(bridgeFdb(w.ns(N.n1)), macs),
    neigh: normNeigh(ipNeigh(w.ns(N.n1)), macs),
    vxlan: vxlanFields(ipLink(w.ns(N.n1), { details: true, dev: "flannel.1" })),
    atPod,
    wire: wire.sort(),
  };
}

beforeAll(async () => {
  if (!isRoot) {
    skipReason = "not root";
    return;
  }
  const probe = spawnSync("ip", ["netns", "add", N.n1], { encoding: "utf8" });
  if (probe.status !== 0) {
    skipReason = `ip netns add failed: ${(probe.stderr ?? "").trim()}`;
    return;
  }
  spawnSync("ip", ["netns", "del", N.n1]);
  dir = mkdtempSync(join(tmpdir(), "tcbox-net-"));
  try {
    kernel = await runKernel();
  } finally {
    for (const ns of made) spawnSync("ip", ["netns", "del", ns]);
    made.length = 0;
  }
  model = runModel();
}, 40_000);

afterAll(() => {
  for (const ns of made) spawnSync("ip", ["netns", "del", ns]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("kernel model vs the kernel: Flannel-style nodes", () => {
  const skip = (ctx: { skip: () => void }) => {
    if (skipReason) {
      process.stderr.write(`net kernel test: SKIPPED: ${skipReason}\n`);
      ctx.skip();
    }
  };
  it("ip route (main) of node 1, node 2 and pod A", (ctx) => {
    skip(ctx);
    expect(model!.route).toEqual(kernel!.route);
  });
  it("ip route show table local of node 1", (ctx) => {
    skip(ctx);
    expect(model!.local).toBe(kernel!.local);
  });
  it("ip route get on node 1", (ctx) => {
    skip(ctx);
    expect(model!.routeGet).toEqual(kernel!.routeGet);
  });
  it("ip addr of node 1 and pod A", (ctx) => {
    skip(ctx);
    expect(model!.addr).toEqual(kernel!.addr);
  });
  it("bridge fdb and ip neigh of node 1 after the traffic", (ctx) => {
    skip(ctx);
    expect(model!.fdb).toEqual(kernel!.fdb);
    expect(model!.neigh).toEqual(kernel!.neigh);
  });
  it("ip -d link: the VXLAN device", (ctx) => {
    skip(ctx);
    expect(model!.vxlan).toBe(kernel!.vxlan);
  });
  it("what pod A receives: echo reply, time exceeded, net unreachable, nothing from the blackhole, port unreachable", (ctx) => {
    skip(ctx);
    expect(model!.atPod).toEqual(kernel!.atPod);
    expect(kernel!.atPod.length).toBe(4);
  });
  it("every IPv4 frame on node 1's underlay (VXLAN outer and inner headers)", (ctx) => {
    skip(ctx);
    expect(model!.wire).toEqual(kernel!.wire);
    expect(kernel!.wire.some((l) => l.startsWith("vxlan +50"))).toBe(true);
  });
});
