// Differential rule evaluation against the kernel: for generated filter rulesets, real packets (bytes built here,
// sent with scapy over a veth pair) enter a scratch namespace's INPUT hook; the kernel's per-rule counters
// (iptables-legacy-save -c, read back with tcbox's own parser) must equal tcbox's counters for the same bytes.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import { parseIpv4 } from "../../src/packet/addr.js";
import { csumFinish, csumPartial, ipv4HeaderChecksum, l4Checksum, set16, set32 } from "../../src/packet/checksum.js";
import { compileRuleset } from "../../src/netfilter/compile.js";
import { AddrType } from "../../src/netfilter/ctstate.js";
import { NetfilterPath, PathResult } from "../../src/netfilter/hooks.js";
import { IfaceRegistry } from "../../src/netfilter/iface.js";
import { PacketState } from "../../src/netfilter/packet-state.js";
import { RecentTables } from "../../src/netfilter/recent.js";
import { parseIptablesRestore } from "../../src/netfilter/restore.js";
import type { Ruleset } from "../../src/netfilter/rule.js";
import { chainsInSaveOrder } from "../../src/netfilter/save.js";
import { Gen, mulberry32 } from "../netfilter/ruleset-gen.js";

const A = `tcbxeva${process.pid}`;
const B = `tcbxevb${process.pid}`;
const DST = "10.99.0.2";
/** A second local address, a DNAT target that keeps the packet on the INPUT path. */
const DST2 = "10.99.1.2";
const SRCS = ["10.1.2.3", "10.1.9.9", "172.16.5.5", "192.168.7.1", "10.200.0.1", "172.31.255.1"];
const PORTS = [22, 53, 80, 443, 8080, 30001, 1024, 65535];

function sh(args: string[], input?: string): { status: number | null; out: string; err: string } {
  const r = spawnSync(args[0]!, args.slice(1), { input, encoding: "utf8" });
  return { status: r.status, out: r.stdout, err: r.stderr };
}

function setup(): string | null {
  if (process.getuid?.() !== 0) return "not root";
  if (!existsSync("/usr/sbin/iptables-legacy-restore")) return "iptables-legacy not installed";
  if (sh(["/usr/bin/python3", "-c", "import scapy.all"]).status !== 0) return "scapy not available to /usr/bin/python3";
  if (sh(["ip", "netns", "add", A]).status !== 0) return "ip netns add failed";
  const cmds = [
    ["ip", "netns", "add", B],
    ["ip", "link", "add", "vA", "netns", A, "type", "veth", "peer", "name", "vB", "netns", B],
    ["ip", "netns", "exec", A, "ip", "addr", "add", "10.99.0.1/24", "dev", "vA"],
    ["ip", "netns", "exec", B, "ip", "addr", "add", `${DST}/24`, "dev", "vB"],
    ["ip", "netns", "exec", B, "ip", "addr", "add", `${DST2}/24`, "dev", "vB"],
    ["ip", "netns", "exec", A, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"],
    ["ip", "netns", "exec", B, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"],
    ["ip", "netns", "exec", B, "sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0"],
    ["ip", "netns", "exec", B, "sysctl", "-qw", "net.ipv4.conf.default.rp_filter=0"],
    ["ip", "netns", "exec", A, "ip", "link", "set", "vA", "up"],
    ["ip", "netns", "exec", B, "ip", "link", "set", "vB", "up"],
    ["ip", "netns", "exec", B, "sysctl", "-qw", "net.ipv4.conf.vB.rp_filter=0"],
  ];
  for (const c of cmds) {
    const r = sh(c);
    if (r.status !== 0) return `${c.join(" ")}: ${r.err.trim()}`;
  }
  return null;
}

const skipReason = setup();
if (skipReason) process.stderr.write(`test/kernel/iptables-eval: skipped (${skipReason})\n`);
afterAll(() => {
  sh(["ip", "netns", "del", A]);
  sh(["ip", "netns", "del", B]);
});

interface Pkt {
  proto: number;
  src: string;
  sport: number;
  dport: number;
  flags: number;
  icmpType: number;
}

/** IPv4 + TCP/UDP/ICMP bytes with correct checksums. */
function build(p: Pkt): Uint8Array {
  const l4len = p.proto === 6 ? 20 : p.proto === 17 ? 12 : 8;
  const b = new Uint8Array(20 + l4len);
  const src = parseIpv4(p.src);
  const dst = parseIpv4(DST);
  b[0] = 0x45;
  set16(b, 2, b.length);
  set16(b, 4, 0x1234);
  b[8] = 64;
  b[9] = p.proto;
  set32(b, 12, src);
  set32(b, 16, dst);
  set16(b, 10, ipv4HeaderChecksum(b, 0, 20));
  if (p.proto === 6) {
    set16(b, 20, p.sport);
    set16(b, 22, p.dport);
    set32(b, 24, 1000);
    b[32] = 0x50;
    b[33] = p.flags;
    set16(b, 34, 65535);
    set16(b, 36, l4Checksum(b, 20, l4len, 16, src, dst, 6));
  } else if (p.proto === 17) {
    set16(b, 20, p.sport);
    set16(b, 22, p.dport);
    set16(b, 24, l4len);
    set16(b, 26, l4Checksum(b, 20, l4len, 6, src, dst, 17) || 0xffff);
  } else {
    b[20] = p.icmpType;
    set16(b, 24, p.sport);
    set16(b, 22, csumFinish(csumPartial(b, 20, l4len)));
  }
  return b;
}

function randomCase(seed: number): { rules: string; packets: Pkt[] } {
  const g = new Gen(mulberry32(seed));
  const withNat = g.chance(0.5);
  const users = ["U0", "U1", "U2"].slice(0, g.int(0, 3));
  const lines = ["*filter", `:INPUT ${g.pick(["ACCEPT", "DROP"])} [0:0]`, ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]", ...users.map((u) => `:${u} - [0:0]`)];
  const rule = (chain: string, jumpable: string[]) => {
    let s = `-A ${chain} `;
    if (g.chance(0.4)) s += `${g.not()}-s ${g.pick(SRCS)}/${g.pick([8, 12, 16, 24, 32])} `;
    if (g.chance(0.2)) s += `${g.not()}-d ${g.pick([`${DST}/32`, "10.99.0.0/24", "10.98.0.0/16"])} `;
    if (g.chance(0.15)) s += `${g.not()}-i ${g.pick(["vB", "v+", "eth0"])} `;
    const proto = g.pick(["tcp", "udp", "icmp", "", ""]);
    if (proto) s += `-p ${proto} `;
    if (proto === "tcp" || proto === "udp") {
      if (g.chance(0.5)) s += `${g.not()}--dport ${g.pick(PORTS)}${g.chance(0.3) ? ":" + (g.pick(PORTS) + 0) : ""} `.replace(/(\d+):(\d+)/, (m, a, b) => (Number(a) <= Number(b) ? m : `${b}:${a}`));
      if (g.chance(0.3)) s += `${g.not()}--sport ${g.pick(PORTS)} `;
      if (proto === "tcp" && g.chance(0.3)) s += g.chance(0.5) ? `${g.not()}--syn ` : `--tcp-flags SYN,ACK,FIN ${g.pick(["ACK", "SYN", "FIN", "NONE"])} `;
      if (g.chance(0.2)) s += `-m multiport ${g.not()}--${g.pick(["dports", "sports", "ports"])} ${[g.pick(PORTS), g.pick(PORTS)].join(",")} `;
    }
    if (proto === "icmp" && g.chance(0.6)) s += `${g.not()}--icmp-type ${g.pick(["echo-request", "echo-reply", "destination-unreachable", "3/3"])} `;
    if (g.chance(0.2)) s += `-m mark ${g.not()}--mark 0x${g.int(0, 3).toString(16)}${g.chance(0.5) ? "/0x3" : ""} `;
    if (g.chance(0.15)) s += `-m comment --comment ${g.comment()} `;
    const k = g.int(0, 9);
    if (k < 2 && jumpable.length) s += `${g.chance(0.7) ? "-j" : "-g"} ${g.pick(jumpable)}`;
    else s += ["-j ACCEPT", "-j DROP", "-j RETURN", `-j MARK --set-mark 0x${g.int(1, 3)}`, "-j MARK --or-mark 0x2", "-j LOG", "", "-j REJECT", "-j ACCEPT", "-j DROP"][k]!;
    lines.push(s.trimEnd());
  };
  for (let i = g.int(3, 9); i > 0; i--) rule("INPUT", users);
  users.forEach((u, i) => {
    for (let k = g.int(1, 4); k > 0; k--) rule(u, users.slice(i + 1));
  });
  lines.push("COMMIT");
  // Always restore nat (empty without rules), so the previous case's nat rules do not stay behind.
  if (withNat) natTable(g, lines);
  else lines.push("*nat", ":PREROUTING ACCEPT [0:0]", ":INPUT ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]", ":POSTROUTING ACCEPT [0:0]", "COMMIT");
  // With a nat table each packet is its own connection (unique source port / ICMP id) whose first packet conntrack
  // can track (SYN, or ACK picked up mid-stream; echo requests), so the kernel walks nat for every one of them.
  const packets = Array.from({ length: 24 }, (_, k) => {
    const proto = g.pick([6, 6, 17, 17, 1]);
    const sport = withNat ? 20000 + seed * 24 + k : g.pick(PORTS);
    return {
      proto, src: g.pick(SRCS), sport, dport: g.pick(PORTS),
      flags: withNat ? g.pick([0x02, 0x10]) : g.pick([0x02, 0x10, 0x12, 0x01, 0x11]),
      icmpType: withNat ? 8 : g.pick([8, 0, 3]),
    };
  });
  return { rules: lines.join("\n") + "\n", packets };
}

/** nat PREROUTING (DNAT to a local address, so packets stay on the INPUT path) and nat INPUT (SNAT). */
function natTable(g: Gen, lines: string[]): void {
  lines.push("*nat", ":PREROUTING ACCEPT [0:0]", ":INPUT ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]", ":POSTROUTING ACCEPT [0:0]", ":SVC - [0:0]");
  const rule = (chain: string, canJump: boolean) => {
    let s = `-A ${chain} `;
    if (g.chance(0.4)) s += `${g.not()}-s ${g.pick(SRCS)}/${g.pick([8, 16, 24, 32])} `;
    const proto = g.pick(["tcp", "udp", "icmp", ""]);
    if (proto) s += `-p ${proto} `;
    const ports = proto === "tcp" || proto === "udp";
    if (ports && g.chance(0.6)) s += `${g.not(0.15)}--dport ${g.pick(PORTS)} `;
    if (g.chance(0.15)) s += `-m statistic --mode nth --every ${g.int(2, 3)} --packet 0 `;
    const k = g.int(0, 5);
    if (chain === "INPUT") s += k < 3 ? `-j SNAT --to-source ${g.pick(["10.50.0.1", "10.50.0.9"])}${ports && g.chance(0.5) ? ":" + g.int(1024, 2000) : ""}` : k === 3 ? "-j RETURN" : "-j MARK --set-mark 0x1";
    else if (k === 0 && canJump) s += "-j SVC";
    else if (k <= 3) s += `-j DNAT --to-destination ${g.pick([DST, DST2])}${ports && g.chance(0.6) ? ":" + g.pick(PORTS) : ""}`;
    else s += k === 4 ? "-j RETURN" : "-j MARK --or-mark 0x2";
    lines.push(s.trimEnd());
  };
  for (let i = g.int(1, 5); i > 0; i--) rule("PREROUTING", true);
  for (let i = g.int(0, 3); i > 0; i--) rule("SVC", false);
  for (let i = g.int(0, 3); i > 0; i--) rule("INPUT", false);
  lines.push("COMMIT");
}

const DRIVER = `
import json, subprocess, sys, time
from scapy.all import Ether, Raw, sendp, conf
conf.verb = 0
job = json.load(sys.stdin)
B = job["ns"]
mac = job["mac"]
out = []
def ipt(cmd, data=None):
    return subprocess.run(["ip", "netns", "exec", B] + cmd, input=data, capture_output=True, text=True)
for case in job["cases"]:
    r = ipt(["iptables-legacy-restore"], case["rules"])
    if r.returncode != 0:
        out.append({"error": r.stderr}); continue
    subprocess.run(["ip", "netns", "exec", B, "conntrack", "-F"], capture_output=True)
    before = ipt(["iptables-legacy-save", "-c"]).stdout
    frames = [Ether(dst=mac, type=0x0800) / Raw(bytes.fromhex(h)) for h in case["packets"]]
    sendp(frames, iface="vA")
    time.sleep(0.05)
    after = ipt(["iptables-legacy-save", "-c"]).stdout
    out.append({"before": before, "after": after})
json.dump(out, sys.stdout)
`;

/** Rule and policy packet/byte counters of INPUT-reachable chains, in save order: "CHAIN n: p/b". */
/** Chains a locally delivered packet never walks (REJECT's replies do: OUTPUT, POSTROUTING). */
const NOT_ON_INPUT_PATH = new Set(["OUTPUT", "FORWARD", "POSTROUTING"]);

function counters(rs: Ruleset, tables: string[]): Map<string, string> {
  const m = new Map<string, string>();
  for (const t of rs.tables.filter((x) => tables.includes(x.name))) {
    for (const c of chainsInSaveOrder(t)) {
      if (NOT_ON_INPUT_PATH.has(c.name)) continue;
      if (c.builtin) m.set(`${t.name} ${c.name} policy`, `${c.counters.packets}/${c.counters.bytes}`);
      c.rules.forEach((r, i) => m.set(`${t.name} ${c.name} ${i + 1}`, `${r.counters.packets}/${r.counters.bytes}`));
    }
  }
  return m;
}

function minus(a: Map<string, string>, b: Map<string, string>): Map<string, string> {
  const out = new Map<string, string>();
  for (const [k, v] of a) {
    const [ap, ab] = v.split("/").map(Number);
    const [bp, bb] = (b.get(k) ?? "0/0").split("/").map(Number);
    out.set(k, `${ap! - bp!}/${ab! - bb!}`);
  }
  return out;
}

function tcboxCounters(text: string, packets: Uint8Array[]): Map<string, string> {
  const ifaces = new IfaceRegistry();
  const vB = ifaces.index("vB");
  const rs = parseIptablesRestore(text);
  const compiled = compileRuleset(rs, { ifaces });
  const local = parseIpv4(DST);
  const local2 = parseIpv4(DST2);
  const path = new NetfilterPath(compiled, {
    randomMatch: () => false,
    addrType: (a) => (a === local || a === local2 ? AddrType.LOCAL : AddrType.UNICAST),
    now: () => 0,
    recent: new RecentTables(),
    isLocal: (a) => a === local || a === local2,
    masqueradeAddr: () => local,
  });
  const p = new PacketState();
  const out = new PathResult();
  for (const b of packets) {
    p.reset();
    p.fromIpv4(b, 0);
    p.iif = vB;
    path.receive(p, out);
  }
  const m = new Map<string, string>();
  for (const t of compiled.tables) {
    t.chainNames.forEach((name, ci) => {
      if (NOT_ON_INPUT_PATH.has(name)) return;
      if (t.chainPolicy[ci]! >= 0) m.set(`${t.name} ${name} policy`, `${t.policyPackets[ci]}/${t.policyBytes[ci]}`);
      for (let r = t.chainStart[ci]!; r < t.chainEnd[ci]!; r++) m.set(`${t.name} ${name} ${r - t.chainStart[ci]! + 1}`, `${t.packets[r]}/${t.bytes[r]}`);
    });
  }
  return m;
}

describe.skipIf(skipReason !== null)("kernel counters vs tcbox evaluation: nat PREROUTING/INPUT and filter INPUT (iptables-legacy, scapy over veth)", () => {
  it("30 generated rulesets × 24 packets: every rule and policy counter agrees", () => {
    const N = 30;
    const cases = Array.from({ length: N }, (_, i) => randomCase(1000 + i));
    const bytes = cases.map((c) => c.packets.map(build));
    const mac = sh(["ip", "netns", "exec", B, "cat", "/sys/class/net/vB/address"]).out.trim();
    const job = { ns: B, mac, cases: cases.map((c, i) => ({ rules: c.rules, packets: bytes[i]!.map((b) => Buffer.from(b).toString("hex")) })) };
    const r = sh(["ip", "netns", "exec", A, "/usr/bin/python3", "-c", DRIVER], JSON.stringify(job));
    expect(r.err.replace(/.*WARNING.*\n?/g, "")).toBe("");
    const results = JSON.parse(r.out) as Array<{ error?: string; before?: string; after?: string }>;
    const bad: string[] = [];
    let counted = 0;
    let hits = 0;
    results.forEach((res, i) => {
      if (res.error) {
        bad.push(`case ${i}: kernel rejected: ${res.error.split("\n")[0]}`);
        return;
      }
      const tables = [...cases[i]!.rules.matchAll(/^\*(\w+)/gm)].map((x) => x[1]!);
      const kernel = minus(counters(parseIptablesRestore(res.after!), tables), counters(parseIptablesRestore(res.before!), tables));
      const mine = tcboxCounters(cases[i]!.rules, bytes[i]!);
      for (const [k, v] of kernel) {
        counted++;
        if (!v.startsWith("0/")) hits++;
        if (mine.get(k) !== v) bad.push(`case ${i} (seed ${1000 + i}) ${k}: kernel ${v}, tcbox ${mine.get(k)}\n${cases[i]!.rules}`);
      }
    });
    const rate = ((counted - bad.length) / counted) * 100;
    process.stdout.write(`iptables eval differential: ${counted - bad.length}/${counted} counters agree (${rate.toFixed(2)}%, ${hits} non-zero) over ${N} rulesets, ${N * 24} packets\n`);
    expect(bad).toEqual([]);
    // The packets did reach the kernel's rules: counters moved in every ruleset (at least its policy or one rule).
    expect(hits).toBeGreaterThanOrEqual(N);
  }, 120_000);
});
