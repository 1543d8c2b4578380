// Martians, the kernel as referee: the input route decision for each (source, destination, input device) of
// test/net/martian-cases.ts, asked of real namespaces with `ip route get DST from SRC iif DEV` (ip_route_input,
// the code path a received packet takes) and of the model's routeInput(), under rp_filter 0 (as a new namespace
// has it), 1 and 2. The kernel's martian counters (/proc/net/stat/rt_cache in_martian_src / in_martian_dst)
// tell which kind of martian an "Invalid argument" was; the model names it in its drop reason.
// Then real frames (scapy, from the sender namespace onto the wire) check that the data path counts the same
// martians as the route lookups. Skips with a message when not root or when `ip netns add` fails.
import { execFileSync, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { World } from "../../src/net/index.js";
import { RouteIn, routeInput } from "../../src/net/ipv4.js";
import { parseIpv4 } from "../../src/packet/addr.js";
import { MARTIAN_CASES, RP_FILTER_MODES, ROUTER_COMMANDS, buildModelRouter, modelRouteGet } from "../net/martian-cases.js";

const P = `tcbxmr${process.pid}`;
const R = `${P}r`;
const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
let skipReason = "";
const made: string[] = [];
/** rp_filter mode -> case index -> the kernel's answer */
const kernel = new Map<number, string[]>();
/** frames sent -> martian counter deltas (and rp_filter drops, TcpExt IPReversePathFilter in R) */
let localnet: string[] = [];
let wire: { src: number; dst: number; rp: number } | null = null;

function martianCounters(): { src: number; dst: number } {
  const lines = readFileSync("/proc/net/stat/rt_cache", "utf8").trim().split("\n");
  const head = lines[0]!.trim().split(/\s+/);
  const si = head.indexOf("in_martian_src");
  const di = head.indexOf("in_martian_dst");
  let src = 0, dst = 0;
  for (const l of lines.slice(1)) {
    const f = l.trim().split(/\s+/);
    src += parseInt(f[si]!, 16);
    dst += parseInt(f[di]!, 16);
  }
  return { src, dst };
}

function inNs(ns: string, cmd: string): string {
  return execFileSync("ip", ["netns", "exec", ns, ...cmd.split(" ")], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

/**
 * `ip route get`, classified as the model words it. The martian counters are the whole host's: a lookup that
 * saw more than one martian counted (someone else's martian in between) is asked again.
 */
function kernelRouteGet(src: string, dst: string, iif: string): string {
  for (let attempt = 0; ; attempt++) {
    const got = kernelRouteGetOnce(src, dst, iif);
    if (got !== null || attempt === 4) return got ?? "noisy martian counters";
  }
}

function kernelRouteGetOnce(src: string, dst: string, iif: string): string | null {
  const before = martianCounters();
  const r = spawnSync("ip", ["-n", R, "route", "get", dst, "from", src, "iif", iif], { encoding: "utf8" });
  const after = martianCounters();
  const msrc = after.src - before.src, mdst = after.dst - before.dst;
  if (msrc + mdst > 1) return null;
  if (r.status === 0) {
    const out = r.stdout.trim();
    const first = out.split(/\s+/)[0]!;
    if (first === "local" || first === "broadcast" || first === "multicast") return first;
    const dev = /\bdev (\S+)/.exec(out);
    return `unicast dev ${dev?.[1]}`;
  }
  const err = r.stderr;
  if (/Invalid argument/.test(err)) return msrc === 1 ? "martian source" : mdst === 1 ? "martian destination" : "invalid";
  if (/No route to host/.test(err)) return "no route to host";
  if (/Network is unreachable/.test(err)) return "network is unreachable";
  return `error: ${err.trim()}`;
}

/** Frames from S onto r0 with scapy: the data path's martian counting. [src, dst] */
const FRAMES: Array<[string, string]> = [
  ["127.0.0.1", "10.77.0.1"],
  ["0.1.2.3", "10.77.0.1"],
  ["10.77.0.1", "10.77.0.1"],
  ["10.78.0.1", "8.8.8.8"],
  ["10.77.0.2", "0.1.2.3"],
  ["10.77.0.2", "127.0.0.1"],
  ["10.77.0.2", "224.0.0.5"],
  ["10.77.0.2", "10.77.0.1"],
];
/** Frames sent with rp_filter=1: spoofed sources. */
const FRAMES_RP: Array<[string, string]> = [
  ["8.8.8.8", "10.77.0.1"],
  ["169.254.1.1", "10.77.0.1"],
  ["10.77.0.2", "10.77.0.1"],
];

function rpFilterDrops(): number {
  const t = inNs(R, "cat /proc/net/netstat").split("\n").filter((l) => l.startsWith("TcpExt:"));
  const i = t[0]!.trim().split(/\s+/).indexOf("IPReversePathFilter");
  return Number(t[1]!.trim().split(/\s+/)[i]);
}

function sendFrames(frames: Array<[string, string]>, mac: string): void {
  const py = [
    "from scapy.all import Ether, IP, UDP, sendp",
    `fr = [Ether(dst="${mac}")/IP(src=s, dst=d, ttl=64)/UDP(sport=4000, dport=5000)/b"martian" for s, d in ${JSON.stringify(frames)}]`,
    "sendp(fr, iface='s0', verbose=False)",
  ].join("\n");
  const r = spawnSync("ip", ["netns", "exec", `${P}s`, "/usr/bin/python3", "-c", py], { encoding: "utf8", timeout: 60_000 });
  if (r.status !== 0) throw new Error(`scapy failed: ${r.stderr}`);
  // sendp returns once the frames are on the veth; the receive side runs in softirq right after.
  spawnSync("sleep", ["0.3"]);
}

beforeAll(() => {
  if (!isRoot) {
    skipReason = "not root";
    return;
  }
  const probe = spawnSync("ip", ["netns", "add", R], { encoding: "utf8" });
  if (probe.status !== 0) {
    skipReason = `ip netns add failed: ${(probe.stderr ?? "").trim()}`;
    return;
  }
  made.push(R);
  for (const x of ["s", "u"]) {
    execFileSync("ip", ["netns", "add", `${P}${x}`]);
    made.push(`${P}${x}`);
  }
  for (const ns of made) inNs(ns, "sysctl -qw net.ipv6.conf.all.disable_ipv6=1");
  for (const [ns, cmd] of ROUTER_COMMANDS(P)) inNs(ns, cmd.startsWith("sysctl -w") ? cmd.replace("-w", "-qw") : cmd);
  // The rp_filter a new namespace starts with, so the first mode is "as the namespace has it".
  const own = Number(inNs(R, "sysctl -n net.ipv4.conf.all.rp_filter").trim());
  for (const rp of [own, ...RP_FILTER_MODES.filter((m) => m !== own)]) {
    inNs(R, `sysctl -qw net.ipv4.conf.all.rp_filter=${rp}`);
    kernel.set(rp, MARTIAN_CASES.map(([s, d, i]) => kernelRouteGet(s, d, i)));
  }
  // route_localnet=1 (kube-proxy sets it on nodes): 127/8 destinations route, 127/8 sources are still ours.
  inNs(R, "sysctl -qw net.ipv4.conf.all.rp_filter=0");
  inNs(R, "sysctl -qw net.ipv4.conf.all.route_localnet=1");
  localnet = MARTIAN_CASES.map(([s, d, i]) => kernelRouteGet(s, d, i));
  inNs(R, "sysctl -qw net.ipv4.conf.all.route_localnet=0");
  const r0mac = inNs(R, "cat /sys/class/net/r0/address").trim();
  const before = martianCounters();
  const rpBefore = rpFilterDrops();
  sendFrames(FRAMES, r0mac);
  inNs(R, "sysctl -qw net.ipv4.conf.all.rp_filter=1");
  sendFrames(FRAMES_RP, r0mac);
  const after = martianCounters();
  wire = { src: after.src - before.src, dst: after.dst - before.dst, rp: rpFilterDrops() - rpBefore };
}, 120_000);

afterAll(() => {
  for (const ns of made) spawnSync("ip", ["netns", "del", ns]);
});

describe("martians: the model's input route decision against the kernel's", () => {
  it.each(RP_FILTER_MODES)("rp_filter=%i: every case decided as the kernel decides it", (rp) => {
    if (skipReason) {
      console.log(`skipped: ${skipReason}`);
      return;
    }
    const w = new World();
    const ns = buildModelRouter(w, P, rp);
    const got = MARTIAN_CASES.map(([s, d, i]) => `${s} -> ${d} iif ${i}: ${modelRouteGet(ns, s, d, i)}`);
    const want = MARTIAN_CASES.map(([s, d, i], k) => `${s} -> ${d} iif ${i}: ${kernel.get(rp)![k]}`);
    expect(got).toEqual(want);
  });

  it("rp_filter=0, route_localnet=1: every case decided as the kernel decides it", () => {
    if (skipReason) {
      console.log(`skipped: ${skipReason}`);
      return;
    }
    const ns = buildModelRouter(new World(), P, 0, 1);
    const got = MARTIAN_CASES.map(([s, d, i]) => `${s} -> ${d} iif ${i}: ${modelRouteGet(ns, s, d, i)}`);
    const want = MARTIAN_CASES.map(([s, d, i], k) => `${s} -> ${d} iif ${i}: ${localnet[k]}`);
    expect(got).toEqual(want);
  });

  it("frames on the wire: the kernel counts the martians the model drops as martians", () => {
    if (skipReason) {
      console.log(`skipped: ${skipReason}`);
      return;
    }
    const verdicts = (rp: number, frames: Array<[string, string]>) => {
      const ns = buildModelRouter(new World(), P, rp);
      return frames.map(([s, d]) => routeInput(ns, ns.dev("r0"), parseIpv4(s), parseIpv4(d), 0));
    };
    const all = [...verdicts(0, FRAMES), ...verdicts(1, FRAMES_RP)];
    expect({
      src: all.filter((v) => v === RouteIn.MARTIAN_SRC || v === RouteIn.RP_FILTER).length,
      dst: all.filter((v) => v === RouteIn.MARTIAN_DST).length,
      rp: all.filter((v) => v === RouteIn.RP_FILTER).length,
    }).toEqual(wire);
  });
});
