// Shared by the kernel conntrack tests: a client → router → server lab in three namespaces, packet captures on
// the router's inputs, `conntrack -L` parsing, and the model fed the captured packets along the router's path.
//
// Client 10.0.1.2 and 10.0.1.3 (cr), router 10.0.1.1 (rc) / 10.0.2.1 + 10.0.2.10-13 (rs), server 10.0.2.2 (sr).
// Router nat rules (iptables-restore):
//   PREROUTING  -d 10.96.0.10 -p tcp --dport 80 -j DNAT --to-destination 10.0.2.2:8080
//   PREROUTING  -d 10.96.0.10 -p udp --dport 53 -j DNAT --to-destination 10.0.2.2:5353
//   POSTROUTING -p udp --dport 7000 -j SNAT --to-source 10.0.2.10-10.0.2.13
//   POSTROUTING -o rs -j MASQUERADE
// Namespaces are named tcbx<tag><pid><c|r|s> and always deleted; processes started in them are killed by pid.
import { execFileSync, spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Conntrack, ctIndex, isNew, NF_INET_PRE_ROUTING } from "../../src/netfilter/conntrack.js";
import { formatList } from "../../src/netfilter/conntrack-format.js";
import { natInitialized, natNullBinding, natSetupInfo, NF_NAT_MANIP_DST, NF_NAT_MANIP_SRC, parseNatRange } from "../../src/netfilter/nat.js";
import { natPacket } from "../../src/netfilter/nat-packet.js";
import { parseIpv4 } from "../../src/packet/addr.js";
import { get16, get32 } from "../../src/packet/checksum.js";
import { readPcap, type CaptureRecord } from "../../src/packet/pcap.js";
import { startCapture, stopCapture } from "./net-topology.js";

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function have(bin: string): boolean {
  return ["/usr/sbin", "/sbin", "/usr/bin", "/bin"].some((d) => existsSync(`${d}/${bin}`));
}

export interface Round {
  kernelText: string;
  /** Wall-clock seconds when the kernel table was read. */
  readAt: number;
  /** Captured IPv4 frames entering the router, both interfaces, in time order. */
  recs: CaptureRecord[];
}

export class ConntrackLab {
  readonly C: string;
  readonly R: string;
  readonly S: string;
  ready = false;
  skipReason = "";
  private readonly bg: ChildProcess[] = [];
  private dir = "";
  private rounds = 0;

  constructor(tag: string) {
    const p = `tcbx${tag}${process.pid}`;
    this.C = `${p}c`;
    this.R = `${p}r`;
    this.S = `${p}s`;
  }

  ns(name: string, cmd: string, args: string[], input?: string): string {
    return execFileSync("ip", ["netns", "exec", name, cmd, ...args], { encoding: "utf8", stdio: ["pipe", "pipe", "pipe"], input });
  }

  background(name: string, cmd: string, args: string[]): ChildProcess {
    const p = spawn("ip", ["netns", "exec", name, cmd, ...args], { stdio: "ignore" });
    this.bg.push(p);
    return p;
  }

  /** Check the tools, create the lab; on any failure record why and leave nothing behind. */
  start(): void {
    if (!(typeof process.getuid === "function" && process.getuid() === 0)) {
      this.skipReason = "not root";
      return;
    }
    for (const b of ["conntrack", "tcpdump", "socat", "iptables-restore"]) if (!have(b)) this.skipReason ||= `${b} not installed`;
    if (spawnSync("/usr/bin/python3", ["-c", "import scapy.all"]).status !== 0) this.skipReason ||= "scapy not importable by /usr/bin/python3";
    if (this.skipReason) return;
    const probe = `${this.R}probe`;
    const r = spawnSync("ip", ["netns", "add", probe]);
    if (r.status !== 0) {
      this.skipReason = `ip netns add failed: ${r.stderr.toString().trim()}`;
      return;
    }
    spawnSync("ip", ["netns", "del", probe]);
    this.dir = mkdtempSync(join(tmpdir(), "tcbx-ct-"));
    try {
      this.setup();
      this.ready = true;
    } catch (e) {
      this.skipReason = `namespace setup failed: ${(e as Error).message}`;
      this.stop();
    }
  }

  private setup(): void {
    const { C, R, S } = this;
    const ns = (n: string, cmd: string, args: string[]) => this.ns(n, cmd, args);
    for (const n of [C, R, S]) {
      execFileSync("ip", ["netns", "add", n]);
      ns(n, "sysctl", ["-qw", "net.ipv6.conf.all.disable_ipv6=1"]);
      ns(n, "sysctl", ["-qw", "net.ipv6.conf.default.disable_ipv6=1"]);
      ns(n, "ip", ["link", "set", "lo", "up"]);
    }
    execFileSync("ip", ["-n", R, "link", "add", "rc", "type", "veth", "peer", "name", "cr", "netns", C]);
    execFileSync("ip", ["-n", R, "link", "add", "rs", "type", "veth", "peer", "name", "sr", "netns", S]);
    const cmds: [string, string[]][] = [
      [C, ["addr", "add", "10.0.1.2/24", "dev", "cr"]],
      [C, ["addr", "add", "10.0.1.3/24", "dev", "cr"]],
      [C, ["link", "set", "cr", "up"]],
      [C, ["route", "add", "default", "via", "10.0.1.1"]],
      [R, ["addr", "add", "10.0.1.1/24", "dev", "rc"]],
      [R, ["addr", "add", "10.0.2.1/24", "dev", "rs"]],
      ...[10, 11, 12, 13].map((h): [string, string[]] => [R, ["addr", "add", `10.0.2.${h}/32`, "dev", "rs"]]),
      [R, ["link", "set", "rc", "up"]],
      [R, ["link", "set", "rs", "up"]],
      [S, ["addr", "add", "10.0.2.2/24", "dev", "sr"]],
      [S, ["link", "set", "sr", "up"]],
      [S, ["route", "add", "default", "via", "10.0.2.1"]],
    ];
    for (const [n, a] of cmds) ns(n, "ip", a);
    ns(R, "sysctl", ["-qw", "net.ipv4.ip_forward=1"]);
    for (const n of [C, R, S]) for (const d of n === R ? ["rc", "rs"] : n === C ? ["cr"] : ["sr"]) spawnSync("ip", ["netns", "exec", n, "ethtool", "-K", d, "tx", "off"]);
    const rules = [
      "*nat",
      ":PREROUTING ACCEPT [0:0]",
      ":INPUT ACCEPT [0:0]",
      ":OUTPUT ACCEPT [0:0]",
      ":POSTROUTING ACCEPT [0:0]",
      "-A PREROUTING -d 10.96.0.10/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.0.2.2:8080",
      "-A PREROUTING -d 10.96.0.10/32 -p udp -m udp --dport 53 -j DNAT --to-destination 10.0.2.2:5353",
      "-A POSTROUTING -p udp -m udp --dport 7000 -j SNAT --to-source 10.0.2.10-10.0.2.13",
      "-A POSTROUTING -o rs -j MASQUERADE",
      "COMMIT",
      "",
    ].join("\n");
    execFileSync("ip", ["netns", "exec", R, "iptables-restore"], { input: rules });
  }

  stop(): void {
    for (const p of this.bg) if (p.pid !== undefined && p.exitCode === null) try { process.kill(p.pid, "SIGKILL"); } catch { /* gone */ }
    for (const n of [this.C, this.R, this.S]) {
      const pids = spawnSync("ip", ["netns", "pids", n], { encoding: "utf8" }).stdout ?? "";
      for (const pid of pids.split("\n").map(Number).filter((x) => x > 0)) try { process.kill(pid, "SIGKILL"); } catch { /* gone */ }
      spawnSync("ip", ["netns", "del", n]);
    }
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
  }

  /** Empty the router's table, capture both router inputs while `traffic` runs, then read `conntrack -L`. */
  async round(traffic: () => Promise<void>): Promise<Round> {
    const k = this.rounds++;
    this.ns(this.R, "conntrack", ["-F"]);
    const caps = ["rc", "rs"].map((d) => join(this.dir, `${d}-${k}.pcap`));
    // Each capture resolves once tcpdump says it is listening (a fixed sleep loses frames on a loaded machine).
    const dumps: ChildProcess[] = [];
    for (const [j, d] of ["rc", "rs"].entries()) {
      const p = await startCapture(this.R, d, caps[j]!, 15000, ["-Q", "in", "--time-stamp-precision=nano"]);
      dumps.push(p);
      this.bg.push(p);
    }
    await traffic();
    await sleep(1500);
    const before = Date.now() / 1000;
    const kernelText = this.ns(this.R, "conntrack", ["-L"]);
    // The kernel computed its timeouts during the call: take the middle (the comparison allows 3 s).
    const readAt = (before + Date.now() / 1000) / 2;
    await Promise.all(dumps.map(stopCapture));
    const recs = caps
      .flatMap((c) => readPcap(readFileSync(c), c).records)
      .filter((r) => get16(r.data, 12) === 0x0800)
      .sort((a, b) => (a.tsNs < b.tsNs ? -1 : a.tsNs > b.tsNs ? 1 : 0));
    return { kernelText, readAt, recs };
  }

  /** MAC address of a device in a namespace. */
  mac(name: string, dev: string): string {
    return /link\/ether ([0-9a-f:]+)/.exec(execFileSync("ip", ["-n", name, "link", "show", dev], { encoding: "utf8" }))![1]!;
  }
}


export interface Entry {
  key: string;
  state: string;
  reply: Record<string, string>;
  unreplied: boolean;
  assured: boolean;
  timeout: number;
}

/** Parse `conntrack -L` lines (kernel's or the model's) keyed by protocol and original tuple. */
export function parseList(text: string): Map<string, Entry> {
  const out = new Map<string, Entry>();
  for (const line of text.split("\n")) {
    const tok = line.trim().split(/\s+/);
    if (tok.length < 4 || !["tcp", "udp", "icmp"].includes(tok[0]!)) continue;
    const timeout = Number(tok[2]);
    let k = 3;
    let state = "";
    if (!tok[k]!.includes("=")) state = tok[k++]!;
    const tuples: Record<string, string>[] = [{}, {}];
    let t = -1;
    let unreplied = false;
    let assured = false;
    for (; k < tok.length; k++) {
      const w = tok[k]!;
      if (w === "[UNREPLIED]") unreplied = true;
      else if (w === "[ASSURED]") assured = true;
      else if (w.includes("=")) {
        const [n, v] = w.split("=") as [string, string];
        if (n === "src") t++;
        if (t <= 1 && ["src", "dst", "sport", "dport", "type", "code", "id"].includes(n)) tuples[t]![n] = v;
      }
    }
    const o = tuples[0]!;
    const key = `${tok[0]} ${o.src} ${o.dst} ${o.sport ?? ""}${o.dport ? ">" + o.dport : ""}${o.id ? `id${o.id}/${o.type}` : ""}`;
    out.set(key, { key, state, reply: tuples[1]!, unreplied, assured, timeout });
  }
  return out;
}

const ROUTER_IPS = new Set(["10.0.1.1", "10.0.2.1", "10.0.2.10", "10.0.2.11", "10.0.2.12", "10.0.2.13"].map(parseIpv4));
const VIP = parseIpv4("10.96.0.10");
const DNAT = parseNatRange("10.0.2.2:8080");
const DNAT_UDP = parseNatRange("10.0.2.2:5353");
const SNAT_RANGE = parseNatRange("10.0.2.10-10.0.2.13");
const MASQ = parseNatRange("10.0.2.1");
const S_NET = parseIpv4("10.0.2.0");

/** The router's path for one captured packet: PREROUTING (DNAT) → routing → POSTROUTING or INPUT (SNAT) → confirm. */
export function routerPath(ct: Conntrack, f: Uint8Array): void {
  const l3 = 14;
  let ref = ct.in(f, l3, f.length - l3, NF_INET_PRE_ROUTING);
  if (ref < 0) return;
  const proto = f[l3 + 9]!;
  const l4 = l3 + (f[l3]! & 15) * 4;
  if (isNew(ref) && !natInitialized(ct, ctIndex(ref), NF_NAT_MANIP_DST)) {
    if (proto === 6 && get32(f, l3 + 16) === VIP && get16(f, l4 + 2) === 80) natSetupInfo(ct, ctIndex(ref), DNAT, NF_NAT_MANIP_DST);
    else if (proto === 17 && get32(f, l3 + 16) === VIP && get16(f, l4 + 2) === 53) natSetupInfo(ct, ctIndex(ref), DNAT_UDP, NF_NAT_MANIP_DST);
    else natNullBinding(ct, ctIndex(ref), NF_NAT_MANIP_DST);
  }
  natPacket(ct, ref, NF_NAT_MANIP_DST, f, l3);
  const dst = get32(f, l3 + 16);
  const local = ROUTER_IPS.has(dst);
  const outRs = !local && (dst & 0xffffff00) === S_NET;
  if (isNew(ref) && !natInitialized(ct, ctIndex(ref), NF_NAT_MANIP_SRC)) {
    if (!local && proto === 17 && get16(f, l4 + 2) === 7000) natSetupInfo(ct, ctIndex(ref), SNAT_RANGE, NF_NAT_MANIP_SRC);
    else if (outRs) natSetupInfo(ct, ctIndex(ref), MASQ, NF_NAT_MANIP_SRC);
    else natNullBinding(ct, ctIndex(ref), NF_NAT_MANIP_SRC);
  }
  natPacket(ct, ref, NF_NAT_MANIP_SRC, f, l3);
  ref = ct.confirm(ref);
}


/** Feed a round's captures through a fresh model along the router's path; list it at the time the kernel was read. */
export function replay(round: Round, kernel: Map<string, Entry>, tcpLoose = true): { ct: Conntrack; text: string; model: Map<string, Entry> } {
  let pendingPick = -1;
  // The kernel's random port/id picks, by original tuple, handed to the model's random source for that flow.
  const ct = new Conntrack({ random: () => (pendingPick >= 0 ? pendingPick : 0), tcpLoose });
  const t0 = Number(round.recs[0]!.tsNs) / 1e9;
  for (const r of round.recs) {
    const f = new Uint8Array(r.data);
    ct.setTime(Number(r.tsNs) / 1e9 - t0);
    pendingPick = kernelPick(kernel, f);
    routerPath(ct, f);
  }
  ct.setTime(round.readAt - t0);
  const text = formatList(ct);
  return { ct, text, model: parseList(text) };
}

/** Field-by-field agreement of two listings; every disagreement as one line. */
export function compare(kernel: Map<string, Entry>, model: Map<string, Entry>): { rows: string[]; agree: number; total: number } {
  const rows: string[] = [];
  let agree = 0;
  let total = 0;
  for (const [key, k] of kernel) {
    const m = model.get(key);
    const fields: [string, unknown, unknown][] = [
      ["present", true, m !== undefined],
      ["state", k.state, m?.state],
      ["reply", JSON.stringify(k.reply), JSON.stringify(m?.reply)],
      ["unreplied", k.unreplied, m?.unreplied],
      ["assured", k.assured, m?.assured],
      ["timeout±3", true, m !== undefined && Math.abs(m.timeout - k.timeout) <= 3],
    ];
    for (const [name, kv, mv] of fields) {
      total++;
      if (kv === mv) agree++;
      else rows.push(`${key}: ${name} kernel=${String(kv)} model=${String(mv)} (kernel timeout ${k.timeout}, model ${m?.timeout})`);
    }
  }
  for (const key of model.keys()) {
    total++;
    if (kernel.has(key)) agree++;
    else rows.push(`${key}: in the model only`);
  }
  return { rows, agree, total };
}

/** For a flow the kernel remapped, the offset that makes the model's first try land on the kernel's choice. */
export function kernelPick(kernel: Map<string, Entry>, f: Uint8Array): number {
  const l3 = 14;
  const proto = f[l3 + 9]!;
  const l4 = l3 + (f[l3]! & 15) * 4;
  const src = f.slice(l3 + 12, l3 + 16).join(".");
  const dst = f.slice(l3 + 16, l3 + 20).join(".");
  if (proto === 17 || proto === 6) {
    const sport = get16(f, l4);
    const e = kernel.get(`${proto === 6 ? "tcp" : "udp"} ${src} ${dst} ${sport}>${get16(f, l4 + 2)}`);
    if (e && Number(e.reply.dport) !== sport) {
      const p = Number(e.reply.dport);
      return p >= 1024 ? p - 1024 : p >= 600 ? p - 600 : p - 1;
    }
  } else if (proto === 1) {
    const id = get16(f, l4 + 4);
    const e = kernel.get(`icmp ${src} ${dst} id${id}/${f[l4]}`);
    if (e && Number(e.reply.id) !== id) return Number(e.reply.id);
  }
  return -1;
}
