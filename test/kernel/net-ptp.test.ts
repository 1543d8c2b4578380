// Differential test of the kernel model against the real kernel: Calico-style point-to-point routing (/32 pod
// addresses, host routes per cali veth, proxy_arp answering for 169.254.1.1) and a macvlan child in bridge mode
// that its own lower device cannot reach. The same iproute2 commands build both; then the routes, the pod's
// neighbour entry for its gateway, and what arrives in pod B and in the macvlan pod are compared.
// Skips with a message when not root or when `ip netns add` fails. Cleans up in afterAll.
import { execFileSync, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { World, exec, ipNeigh, ipRoute, macToString, sendIcmpEcho } from "../../src/net/index.js";
import { formatIpv4, parseIpv4 } from "../../src/packet/addr.js";
import { get16, get32 } from "../../src/packet/checksum.js";
import { readPcap } from "../../src/packet/pcap.js";
import { normNeigh, startCapture, stopCapture } from "./net-topology.js";

const P = `tcbxptp${process.pid}`;
const NS = { n: `${P}n`, a: `${P}a`, b: `${P}b`, m: `${P}m`, e: `${P}e` };
const ROLE: Record<string, string> = Object.fromEntries(Object.entries(NS).map(([k, v]) => [v, k]));
const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const trimLines = (t: string) => t.replace(/ +$/gm, "");
let skipReason = "";
const made: string[] = [];
let dir = "";

function commands(): Array<[string, string]> {
  const c: Array<[string, string]> = [];
  for (const ns of Object.values(NS)) c.push([ns, "ip link set lo up"]);
  c.push(
    // A link for the node's default route (this kernel has no dummy driver): a veth pair inside the node.
    [NS.n, "ip link add up0 type veth peer name up0p"],
    [NS.n, "ip link set up0p up"],
    [NS.n, "ip link set up0 up"],
    [NS.n, "ip addr add 192.168.60.1/24 dev up0"],
    [NS.n, "ip route add default via 192.168.60.254 dev up0"],
    [NS.n, "sysctl -w net.ipv4.ip_forward=1"],
  );
  for (const [x, host, pod] of [["a", 2, NS.a], ["b", 3, NS.b]] as const) {
    c.push(
      [NS.n, `ip link add cali${x} type veth peer name eth0 netns ${pod}`],
      [NS.n, `ip link set cali${x} up`],
      [NS.n, `sysctl -w net.ipv4.conf.cali${x}.proxy_arp=1`],
      [NS.n, `ip route add 10.48.1.${host} dev cali${x} scope link`],
      [pod, "ip link set eth0 up"],
      [pod, `ip addr add 10.48.1.${host}/32 dev eth0`],
      [pod, "ip route add 169.254.1.1 dev eth0 scope link"],
      [pod, "ip route add default via 169.254.1.1 dev eth0"],
    );
  }
  c.push(
    [NS.n, `ip link add uplink type veth peer name uplink netns ${NS.e}`],
    [NS.n, "ip link set uplink up"],
    [NS.n, "ip addr add 192.168.70.11/24 dev uplink"],
    [NS.e, "ip link set uplink up"],
    [NS.e, "ip addr add 192.168.70.20/24 dev uplink"],
    [NS.n, "ip link add mv0 link uplink type macvlan mode bridge"],
    [NS.n, `ip link set mv0 netns ${NS.m}`],
    [NS.m, "ip link set mv0 up"],
    [NS.m, "ip addr add 192.168.70.50/24 dev mv0"],
  );
  return c;
}

/** [from namespace, destination] pings, in order. */
const PINGS: Array<[string, string]> = [
  [NS.a, "10.48.1.3"],
  [NS.n, "192.168.70.50"],
  [NS.e, "192.168.70.50"],
  [NS.m, "192.168.70.20"],
];

function fp(f: Uint8Array): string | null {
  if (get16(f, 12) !== 0x0800) return null;
  return `${formatIpv4(get32(f, 26))}>${formatIpv4(get32(f, 30))} ttl ${f[22]} proto ${f[23]}${f[23] === 1 ? ` icmp ${f[34]}` : ""}`;
}

interface Side {
  routes: Record<string, string>;
  neighA: string[];
  atB: string[];
  atM: string[];
}
let kernel: Side | null = null;
let model: Side | null = null;

function inNs(ns: string, cmd: string): string {
  return execFileSync("ip", ["netns", "exec", ns, ...cmd.split(" ")], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

async function runKernel(): Promise<Side> {
  let neighA = "";
  for (const ns of Object.values(NS)) {
    execFileSync("ip", ["netns", "add", ns]);
    made.push(ns);
    inNs(ns, "sysctl -qw net.ipv6.conf.all.disable_ipv6=1");
    inNs(ns, "sysctl -qw net.ipv6.conf.default.disable_ipv6=1");
  }
  for (const [ns, cmd] of commands()) inNs(ns, cmd.startsWith("sysctl -w") ? cmd.replace("-w", "-qw") : cmd);
  // No proxy_delay for the comparison: the model answers at once.
  for (const x of ["a", "b"]) inNs(NS.n, `sysctl -qw net.ipv4.neigh.cali${x}.proxy_delay=0`);
  const pb = join(dir, "b.pcap");
  const pm = join(dir, "m.pcap");
  const dumps: ChildProcess[] = [];

  try {
    dumps.push(await startCapture(NS.b, "eth0", pb));
    dumps.push(await startCapture(NS.m, "mv0", pm));
    for (const [from, to] of PINGS) {
      // A raw ICMP socket in plain Python (fast to start; the kernel routes and resolves the neighbour).
      const py = [
        "import socket, struct, time",
        "def csum(b):",
        "    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))",
        "    s = (s & 0xffff) + (s >> 16); s = (s & 0xffff) + (s >> 16)",
        "    return ~s & 0xffff",
        "data = b'x' * 56",
        "h = struct.pack('!BBHHH', 8, 0, 0, 1, 1)",
        "h = struct.pack('!BBHHH', 8, 0, csum(h + data), 1, 1)",
        "s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)",
        `s.sendto(h + data, ("${to}", 0))`,
        "time.sleep(0.4)",
      ].join("\n");
      const r = spawnSync("ip", ["netns", "exec", from, "/usr/bin/python3", "-c", py], { encoding: "utf8", timeout: 15000 });
      if (r.status !== 0) throw new Error(`ping failed: ${r.stderr}`);
      // Read pod A's neighbours before the node's first re-confirmation probe (delay_first_probe_time 5 s, not modelled).
      if (from === NS.a) neighA = inNs(NS.a, "ip neigh");
    }
    // Let tcpdump drain what the kernel already queued for it before SIGINT (it drops the rest); slow under load.
    await sleep(1500);
  } finally {
    await Promise.all(dumps.map(stopCapture));
  }
  const macs = new Map<string, string>();
  for (const ns of Object.values(NS)) {
    for (const line of inNs(ns, "ip -o link").split("\n")) {
      const m = /^\d+: ([^:@]+)[^\n]*link\/ether ([0-9a-f:]{17})/.exec(line);
      if (m) macs.set(m[2]!, `${ROLE[ns]}/${m[1]}`);
    }
  }
  const frames = (p: string) => readPcap(readFileSync(p), p).records.map((r) => fp(r.data)).filter((x): x is string => x !== null);
  return {
    routes: { n: trimLines(inNs(NS.n, "ip route")), a: trimLines(inNs(NS.a, "ip route")) },
    neighA: normNeigh(neighA, macs),
    atB: frames(pb),
    atM: frames(pm),
  };
}

function runModel(): Side {
  const w = new World();
  for (const ns of Object.values(NS)) w.addNamespace(ns);
  for (const [ns, cmd] of commands()) exec(w.ns(ns), cmd);
  const atB: string[] = [];
  const atM: string[] = [];
  w.tap = (dev, pkt) => {
    const s = fp(pkt.frame());
    if (s === null) return;
    if (dev.ns.name === NS.b && dev.name === "eth0") atB.push(s);
    if (dev.ns.name === NS.m && dev.name === "mv0") atM.push(s);
  };
  for (const [from, to] of PINGS) {
    sendIcmpEcho(w.ns(from), { dst: parseIpv4(to), id: 1, seq: 1, payload: 56, df: false, ipId: 1 });
    w.run();
  }
  const macs = new Map<string, string>();
  for (const ns of w.namespaces) for (const d of ns.deviceList()) if (d.mac !== 0) macs.set(macToString(d.mac), `${ROLE[ns.name]}/${d.name}`);
  return {
    routes: { n: ipRoute(w.ns(NS.n)), a: ipRoute(w.ns(NS.a)) },
    neighA: normNeigh(ipNeigh(w.ns(NS.a)), macs),
    atB,
    atM,
  };
}

beforeAll(async () => {
  if (!isRoot) {
    skipReason = "not root";
    return;
  }
  const probe = spawnSync("ip", ["netns", "add", NS.n], { encoding: "utf8" });
  if (probe.status !== 0) {
    skipReason = `ip netns add failed: ${(probe.stderr ?? "").trim()}`;
    return;
  }
  spawnSync("ip", ["netns", "del", NS.n]);
  dir = mkdtempSync(join(tmpdir(), "tcbox-ptp-"));
  try {
    kernel = await runKernel();
  } finally {
    for (const ns of made) spawnSync("ip", ["netns", "del", ns]);
    made.length = 0;
  }
  model = runModel();
}, 45_000);

afterAll(() => {
  for (const ns of made) spawnSync("ip", ["netns", "del", ns]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("kernel model vs the kernel: Calico PtP with proxy_arp, macvlan bridge mode", () => {
  const skip = (ctx: { skip: () => void }) => {
    if (skipReason) {
      process.stderr.write(`net-ptp kernel test: SKIPPED: ${skipReason}\n`);
      ctx.skip();
    }
  };
  it("ip route of the node and of pod A", (ctx) => {
    skip(ctx);
    expect(model!.routes).toEqual(kernel!.routes);
  });
  it("pod A's gateway 169.254.1.1 resolves to the host's cali veth (proxy ARP)", (ctx) => {
    skip(ctx);
    expect(model!.neighA).toEqual(kernel!.neighA);
    expect(kernel!.neighA.some((l) => l.startsWith("169.254.1.1 dev eth0 lladdr n/calia"))).toBe(true);
  });
  it("pod B receives the routed echo (TTL 63) and sends its reply", (ctx) => {
    skip(ctx);
    expect(model!.atB).toEqual(kernel!.atB);
  });
  it("the macvlan pod hears the wire host but never its own lower device", (ctx) => {
    skip(ctx);
    expect(model!.atM).toEqual(kernel!.atM);
    expect(kernel!.atM.some((l) => l.startsWith("192.168.70.11"))).toBe(false);
  });
});
