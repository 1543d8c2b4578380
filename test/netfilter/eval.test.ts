// Table-driven evaluation: a ruleset, packets in, verdicts / rules hit / NAT out (kube-proxy's test style).
import { describe, expect, it } from "vitest";
import { parseIpv4 } from "../../src/packet/addr.js";
import { compileRuleset } from "../../src/netfilter/compile.js";
import { AddrType, CtState } from "../../src/netfilter/ctstate.js";
import { NF_ACCEPT, NF_DROP, NF_REJECT, type EvalEnv, TraceKind, TraceRecorder } from "../../src/netfilter/eval.js";
import { NetfilterPath, PathResult, type RouteEnv } from "../../src/netfilter/hooks.js";
import { IfaceRegistry } from "../../src/netfilter/iface.js";
import { PacketState } from "../../src/netfilter/packet-state.js";
import { RecentTables } from "../../src/netfilter/recent.js";
import { parseIptablesRestore } from "../../src/netfilter/restore.js";

const LOCAL = parseIpv4("192.168.0.2");

function setup(text: string) {
  const ifaces = new IfaceRegistry();
  const recent = new RecentTables();
  const compiled = compileRuleset(parseIptablesRestore(text), { ifaces, recent });
  let seed = 12345;
  const env: EvalEnv & RouteEnv = {
    randomMatch: (stored) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return (seed & 0x7fffffff) < stored;
    },
    addrType: (a) => (a === LOCAL || a >>> 24 === 127 ? AddrType.LOCAL : AddrType.UNICAST),
    now: () => 1000,
    recent,
    isLocal: (a) => a === LOCAL || a >>> 24 === 127,
    masqueradeAddr: () => LOCAL,
  };
  const path = new NetfilterPath(compiled, env);
  const rec = new TraceRecorder();
  path.result.trace = rec;
  const out = new PathResult();
  const p = new PacketState();
  /** "tcp 1.2.3.4:1000 -> 192.168.0.2:22 iif eth0 [est]" → verdict and "table chain n" list. */
  const send = (spec: string) => {
    const m = /^(\w+) ([\d.]+):?(\d*) -> ([\d.]+):?(\d*)(.*)$/.exec(spec)!;
    p.reset();
    p.proto = { tcp: 6, udp: 17, icmp: 1 }[m[1] as "tcp"]!;
    p.src = parseIpv4(m[2]!);
    p.sport = Number(m[3] || 0);
    p.dst = parseIpv4(m[4]!);
    p.dport = Number(m[5] || 0);
    p.len = 60;
    const extra = m[6]!.trim().split(/\s+/);
    for (let i = 0; i < extra.length; i++) {
      if (extra[i] === "iif") p.iif = ifaces.index(extra[++i]!);
      if (extra[i] === "oif") p.oif = ifaces.index(extra[++i]!);
      if (extra[i] === "est") p.ctState = CtState.ESTABLISHED;
      if (extra[i] === "syn") p.tcpFlags = 0x02;
      if (extra[i] === "icmp") p.icmpType = Number(extra[++i]);
      if (extra[i] === "mark") p.mark = Number(extra[++i]);
    }
    rec.clear();
    const local = p.src === LOCAL;
    const v = local ? path.output(p, out) : path.receive(p, out);
    const rules: string[] = [];
    for (let i = 0; i < rec.n; i++) {
      const t = compiled.tables[rec.table[i]!]!;
      const kind = rec.kind[i] === TraceKind.RULE ? String(rec.rule[i]) : rec.kind[i] === TraceKind.POLICY ? "policy" : "return";
      rules.push(`${t.name} ${t.chainNames[rec.chain[i]!]} ${kind}`);
    }
    return { v, rules, out, p };
  };
  return { send, compiled, path };
}

const FILTER = `*filter
:INPUT DROP [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:SSH - [0:0]
:WEB - [0:0]
-A INPUT -i lo -j ACCEPT
-A INPUT ! -s 10.0.0.0/8 -p tcp -m tcp --dport 23 -j REJECT --reject-with tcp-reset
-A INPUT -p tcp -m tcp --dport 22 -j SSH
-A INPUT -p tcp -m multiport --dports 80,443,8000:8099 -g WEB
-A INPUT -p icmp -m icmp --icmp-type 8 -j ACCEPT
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A INPUT -i veth+ -j MARK --set-xmark 0x7/0xffffffff
-A INPUT -m mark --mark 0x7 -j ACCEPT
-A SSH -s 10.1.0.0/16 -j RETURN
-A SSH -j ACCEPT
-A WEB -s 10.9.0.0/16 -j DROP
COMMIT
`;

describe("filter INPUT walk", () => {
  const cases: Array<[string, number, string[]]> = [
    ["tcp 10.1.2.3:1000 -> 192.168.0.2:22 iif eth0", NF_DROP, ["filter INPUT 3", "filter SSH 1", "filter INPUT policy"]],
    ["tcp 10.2.2.3:1000 -> 192.168.0.2:22 iif eth0", NF_ACCEPT, ["filter INPUT 3", "filter SSH 2"]],
    ["tcp 8.8.8.8:1000 -> 192.168.0.2:23 iif eth0", NF_REJECT, ["filter INPUT 2"]],
    ["tcp 10.0.0.1:1000 -> 192.168.0.2:23 iif eth0", NF_DROP, ["filter INPUT policy"]],
    // goto: WEB falls off its end and returns past INPUT (nothing pushed), to INPUT's policy.
    ["tcp 10.2.0.1:1000 -> 192.168.0.2:8080 iif eth0", NF_DROP, ["filter INPUT 4", "filter WEB return", "filter INPUT policy"]],
    ["tcp 10.9.0.1:1000 -> 192.168.0.2:443 iif eth0", NF_DROP, ["filter INPUT 4", "filter WEB 1"]],
    ["icmp 10.0.0.1 -> 192.168.0.2 iif eth0 icmp 8", NF_ACCEPT, ["filter INPUT 5"]],
    ["icmp 10.0.0.1 -> 192.168.0.2 iif eth0 icmp 0", NF_DROP, ["filter INPUT policy"]],
    ["udp 10.0.0.1:5 -> 192.168.0.2:53 iif eth0 est", NF_ACCEPT, ["filter INPUT 6"]],
    ["udp 10.0.0.1:5 -> 192.168.0.2:53 iif veth12", NF_ACCEPT, ["filter INPUT 7", "filter INPUT 8"]],
    ["udp 10.0.0.1:5 -> 192.168.0.2:53 iif vet", NF_DROP, ["filter INPUT policy"]],
    ["udp 127.0.0.1:5 -> 127.0.0.1:53 iif lo", NF_ACCEPT, ["filter INPUT 1"]],
  ];
  it.each(cases)("%s", (spec, verdict, rules) => {
    const { send } = setup(FILTER);
    const r = send(spec);
    expect(r.rules).toEqual(rules);
    expect(r.v).toBe(verdict);
  });

  it("a locally generated packet for a local address loops back through PREROUTING and INPUT", () => {
    const { send } = setup(FILTER);
    const viaLo = send("udp 192.168.0.2:5000 -> 192.168.0.2:53 oif lo");
    expect(viaLo.rules).toEqual(["filter OUTPUT policy", "filter INPUT 1"]);
    expect(viaLo.v).toBe(NF_ACCEPT);
    const viaEth = send("udp 192.168.0.2:5000 -> 192.168.0.2:53 oif eth0");
    expect(viaEth.rules).toEqual(["filter OUTPUT policy", "filter INPUT policy"]);
    expect(viaEth.v).toBe(NF_DROP);
  });

  it("counts rules and policies as the kernel does (matched rules only, bytes = datagram length)", () => {
    const { send, compiled } = setup(FILTER);
    send("tcp 10.1.2.3:1000 -> 192.168.0.2:22 iif eth0");
    send("tcp 10.2.2.3:1000 -> 192.168.0.2:22 iif eth0");
    const t = compiled.byName.filter!;
    const input = t.chainNames.indexOf("INPUT");
    const ssh = t.chainNames.indexOf("SSH");
    expect(t.packets[t.chainStart[input]! + 2]).toBe(2);
    expect(t.bytes[t.chainStart[input]! + 2]).toBe(120);
    expect(t.packets[t.chainStart[ssh]!]).toBe(1);
    expect(t.packets[t.chainStart[ssh]! + 1]).toBe(1);
    expect(t.policyPackets[input]).toBe(1);
  });

  it("a ctstate test sees NOTRACK from an earlier rule of the same walk; the rules it rejects count as evaluated, not hit", () => {
    const { send, path } = setup(`*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A PREROUTING -p udp -m udp --dport 53 -j NOTRACK
-A PREROUTING -m conntrack --ctstate NEW -j MARK --set-xmark 0x1/0xffffffff
-A PREROUTING -m conntrack --ctstate UNTRACKED -j MARK --set-xmark 0x2/0xffffffff
-A PREROUTING -m conntrack ! --ctstate UNTRACKED -j MARK --set-xmark 0x4/0xffffffff
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
COMMIT
`);
    const before = path.result.rulesEvaluated;
    const dns = send("udp 10.0.0.1:5 -> 192.168.0.2:53 iif eth0");
    expect(dns.rules).toEqual(["raw PREROUTING 1", "raw PREROUTING 3", "raw PREROUTING policy", "filter INPUT policy"]);
    expect(dns.p.mark).toBe(2);
    expect(dns.p.ctState).toBe(CtState.UNTRACKED);
    expect(path.result.rulesEvaluated - before).toBe(4);
  });
});

const NAT = `*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:SVC - [0:0]
-A PREROUTING -d 172.30.0.1/32 -p tcp -m tcp --dport 80 -j SVC
-A OUTPUT -d 172.30.0.1/32 -p tcp -m tcp --dport 80 -j SVC
-A POSTROUTING -s 10.0.0.0/8 ! -d 10.0.0.0/8 -j MASQUERADE
-A POSTROUTING -s 192.168.0.0/24 -p udp -j SNAT --to-source 192.168.0.9:2000-3000
-A SVC -p tcp -j DNAT --to-destination 10.1.1.1:8080
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -d 10.1.1.1/32 -p tcp -m tcp --dport 8080 -j ACCEPT
-A FORWARD -s 10.0.0.0/8 -j ACCEPT
COMMIT
`;

describe("hook path with nat", () => {
  it("DNATs a new connection in PREROUTING, then filters the rewritten packet in FORWARD", () => {
    const { send } = setup(NAT);
    const r = send("tcp 10.5.0.1:1234 -> 172.30.0.1:80 iif eth0 oif eth1");
    expect(r.v).toBe(NF_ACCEPT);
    expect(r.rules).toEqual(["nat PREROUTING 1", "nat SVC 1", "filter FORWARD 1", "nat POSTROUTING policy"]);
    expect([r.out.dnat, r.out.dnatIp, r.out.dnatPort, r.p.dst, r.p.dport]).toEqual([true, parseIpv4("10.1.1.1"), 8080, parseIpv4("10.1.1.1"), 8080]);
  });

  it("skips the nat table for an established connection (its binding comes from conntrack)", () => {
    const { send } = setup(NAT);
    const r = send("tcp 11.5.0.1:1234 -> 172.30.0.1:80 iif eth0 est");
    expect(r.rules).toEqual(["filter FORWARD policy"]);
    expect(r.v).toBe(NF_DROP);
  });

  it("MASQUERADEs forwarded pod traffic leaving the cluster range", () => {
    const { send } = setup(NAT);
    const r = send("udp 10.5.0.1:1234 -> 8.8.8.8:53 iif eth0 oif eth1");
    expect(r.rules).toEqual(["nat PREROUTING policy", "filter FORWARD 2", "nat POSTROUTING 1"]);
    expect(r.out.snatKind).toBe(3);
    expect(r.p.src).toBe(LOCAL);
    expect(r.p.sport).toBe(1234);
  });

  it("locally generated: OUTPUT DNAT then POSTROUTING SNAT with a port range", () => {
    const { send } = setup(NAT);
    const r = send("udp 192.168.0.2:5000 -> 9.9.9.9:53 oif eth1");
    expect(r.rules).toEqual(["nat OUTPUT policy", "filter OUTPUT policy", "nat POSTROUTING 2"]);
    expect([r.out.snatKind, r.p.src, r.p.sport]).toEqual([2, parseIpv4("192.168.0.9"), 2000]);
  });
});

describe("statistic, recent, addrtype", () => {
  // Observed with iptables-legacy and socat: --packet P of --every 3 hits packets P+1 and P+4.
  it.each([
    [0, [NF_DROP, NF_ACCEPT, NF_ACCEPT, NF_DROP, NF_ACCEPT, NF_ACCEPT]],
    [1, [NF_ACCEPT, NF_DROP, NF_ACCEPT, NF_ACCEPT, NF_DROP, NF_ACCEPT]],
    [2, [NF_ACCEPT, NF_ACCEPT, NF_DROP, NF_ACCEPT, NF_ACCEPT, NF_DROP]],
  ])("nth --every 3 --packet %i", (packet, expected) => {
    const { send } = setup(`*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -m statistic --mode nth --every 3 --packet ${packet} -j DROP\nCOMMIT\n`);
    const v = [1, 2, 3, 4, 5, 6].map(() => send("udp 10.0.0.1:1 -> 192.168.0.2:2 iif eth0").v);
    expect(v).toEqual(expected);
  });

  it("random 0.25 matches about a quarter of draws", () => {
    const { send } = setup("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -m statistic --mode random --probability 0.25 -j DROP\nCOMMIT\n");
    let drops = 0;
    for (let i = 0; i < 4000; i++) if (send("udp 10.0.0.1:1 -> 192.168.0.2:2 iif eth0").v === NF_DROP) drops++;
    expect(drops).toBeGreaterThan(850);
    expect(drops).toBeLessThan(1150);
  });

  it("recent --set then --rcheck --hitcount 3 drops the third hit from one source", () => {
    const { send } = setup(
      "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -m recent --rcheck --seconds 60 --hitcount 2 --name ssh -j DROP\n-A INPUT -m recent --set --name ssh\nCOMMIT\n",
    );
    const v = [1, 2, 3].map(() => send("tcp 10.0.0.7:1 -> 192.168.0.2:22 iif eth0").v);
    expect(v).toEqual([NF_ACCEPT, NF_ACCEPT, NF_DROP]);
    expect(send("tcp 10.0.0.8:1 -> 192.168.0.2:22 iif eth0").v).toBe(NF_ACCEPT);
  });

  it("addrtype --dst-type LOCAL sends node-addressed packets to a chain", () => {
    const { send } = setup("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n-A INPUT -m addrtype --dst-type LOCAL -j DROP\n-A FORWARD -m addrtype ! --dst-type LOCAL -j DROP\nCOMMIT\n");
    expect(send("udp 10.0.0.1:1 -> 192.168.0.2:2 iif eth0").rules).toEqual(["filter INPUT 1"]);
    expect(send("udp 10.0.0.1:1 -> 10.0.0.9:2 iif eth0").rules).toEqual(["filter FORWARD 1"]);
  });
});
