// ipsets and the `set` match: membership per set type and direction flags, iptables-save round trip of
// `-m set --match-set NAME dst,dst`, a missing set refused, and `ipset save` printing.
import { describe, expect, it } from "vitest";
import { parseIpv4 } from "../../src/packet/addr.js";
import { compileRuleset } from "../../src/netfilter/compile.js";
import { AddrType } from "../../src/netfilter/ctstate.js";
import { type EvalEnv, EvalResult, evalChain, NF_ACCEPT } from "../../src/netfilter/eval.js";
import { IpSetRegistry, KeyIndex } from "../../src/netfilter/ipset.js";
import { PacketState } from "../../src/netfilter/packet-state.js";
import { RecentTables } from "../../src/netfilter/recent.js";
import { parseIptablesRestore } from "../../src/netfilter/restore.js";
import { printIptablesSave as saveRuleset } from "../../src/netfilter/save.js";
import { Hook } from "../../src/netfilter/tables.js";

function sets(): IpSetRegistry {
  const r = new IpSetRegistry();
  const cip = r.create("KUBE-CLUSTER-IP", "hash:ip,port");
  cip.add("10.96.0.10,tcp:80");
  cip.add("10.96.0.10,udp:53");
  r.create("KUBE-NODE-PORT-TCP", "bitmap:port").add("30080");
  r.create("KUBE-IPVS-IPS", "hash:ip").add("10.96.0.10");
  r.create("KUBE-LOOP-BACK", "hash:ip,port,ip").add("10.244.1.5,tcp:8080,10.244.1.5");
  return r;
}

const RULES = `*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -m set --match-set KUBE-CLUSTER-IP dst,dst -j DROP
-A INPUT -p tcp -m set --match-set KUBE-NODE-PORT-TCP dst -j REJECT --reject-with icmp-port-unreachable
-A INPUT -m set ! --match-set KUBE-IPVS-IPS dst -m set --match-set KUBE-LOOP-BACK dst,dst,src -j LOG
-A INPUT -m set --match-set KUBE-LOOP-BACK dst,dst,src -j RETURN
-A INPUT -m set --match-set KUBE-CLUSTER-IP dst -j DROP
COMMIT
`;

describe("set match", () => {
  const compiled = compileRuleset(parseIptablesRestore(RULES), { ipsets: sets() });
  const t = compiled.byName.filter!;
  const env: EvalEnv = { randomMatch: () => false, addrType: () => AddrType.UNICAST, now: () => 0, recent: new RecentTables() };
  it.each([
    { name: "cluster IP and port (dst,dst)", proto: 6, src: "10.244.1.9", sport: 1, dst: "10.96.0.10", dport: 80, want: "DROP 1" },
    { name: "cluster IP, UDP port", proto: 17, src: "10.244.1.9", sport: 1, dst: "10.96.0.10", dport: 53, want: "DROP 1" },
    { name: "cluster IP, wrong protocol for the port", proto: 17, src: "10.244.1.9", sport: 1, dst: "10.96.0.10", dport: 80, want: "ACCEPT -" },
    { name: "node port in the bitmap", proto: 6, src: "1.2.3.4", sport: 1, dst: "192.168.0.2", dport: 30080, want: "REJECT 2" },
    { name: "port not in the bitmap", proto: 6, src: "1.2.3.4", sport: 1, dst: "192.168.0.2", dport: 30081, want: "ACCEPT -" },
    { name: "hairpin (dst,dst,src) returns", proto: 6, src: "10.244.1.5", sport: 9, dst: "10.244.1.5", dport: 8080, want: "ACCEPT 4" },
    { name: "a flag list shorter than the set's dimension never matches", proto: 1, src: "1.1.1.1", sport: 0, dst: "10.96.0.10", dport: 0, want: "ACCEPT -" },
  ])("$name", ({ proto, src, sport, dst, dport, want }) => {
    const p = new PacketState();
    p.proto = proto;
    p.src = parseIpv4(src);
    p.dst = parseIpv4(dst);
    p.sport = sport;
    p.dport = dport;
    const r = new EvalResult();
    const before = Array.from(t.packets);
    const v = evalChain(t, t.hookChain[Hook.INPUT]!, p, env, r);
    const hit = Array.from(t.packets).findIndex((n, i) => n !== before[i]);
    const verdict = v === NF_ACCEPT ? "ACCEPT" : v === 0 ? "DROP" : "REJECT";
    // The last rule that counted the packet (1-based), or "-" when none did.
    const counted = Array.from(t.packets).map((n, i) => (n !== before[i] ? i + 1 : 0)).filter((x) => x > 0);
    expect(`${verdict} ${hit < 0 ? "-" : counted[counted.length - 1]}`).toBe(want);
  });

  it("prints as iptables-save does (round trip)", () => {
    const text = saveRuleset(parseIptablesRestore(RULES));
    expect(text).toContain("-A INPUT -m set --match-set KUBE-CLUSTER-IP dst,dst -j DROP\n");
    expect(text).toContain("-A INPUT -m set ! --match-set KUBE-IPVS-IPS dst -m set --match-set KUBE-LOOP-BACK dst,dst,src -j LOG\n");
    expect(saveRuleset(parseIptablesRestore(text))).toBe(text);
  });

  it("a rule naming a set that does not exist is refused; bad flags are a parse error", () => {
    expect(() => compileRuleset(parseIptablesRestore(RULES))).toThrow(/Set KUBE-CLUSTER-IP doesn't exist/);
    expect(() => parseIptablesRestore(RULES.replace("dst,dst -j DROP", "dst,up -j DROP"))).toThrow(/line 5 failed/);
  });

  it("ipset save prints create lines and sorted members", () => {
    expect(sets().save()).toBe(
      [
        "create KUBE-CLUSTER-IP hash:ip,port family inet hashsize 1024 maxelem 65536",
        "add KUBE-CLUSTER-IP 10.96.0.10,tcp:80",
        "add KUBE-CLUSTER-IP 10.96.0.10,udp:53",
        "create KUBE-NODE-PORT-TCP bitmap:port range 0-65535",
        "add KUBE-NODE-PORT-TCP 30080",
        "create KUBE-IPVS-IPS hash:ip family inet hashsize 1024 maxelem 65536",
        "add KUBE-IPVS-IPS 10.96.0.10",
        "create KUBE-LOOP-BACK hash:ip,port,ip family inet hashsize 1024 maxelem 65536",
        "add KUBE-LOOP-BACK 10.244.1.5,tcp:8080,10.244.1.5",
        "",
      ].join("\n"),
    );
  });
});

describe("KeyIndex (ipset members, IPVS services)", () => {
  it("finds every key added, through growth, deletions (tombstones) and re-adds; addresses above 2^31 as int32", () => {
    const k = new KeyIndex();
    const key = (i: number): [number, number, number] => [(0xc0a80000 + i) | 0, i % 3 === 0 ? 0 : 65536 + i, i % 5];
    for (let i = 0; i < 500; i++) expect(k.add(...key(i), i)).toBe(i);
    expect(k.add(...key(7), 999)).toBe(7); // present: the stored value stays
    for (let i = 0; i < 500; i += 2) k.delete(...key(i));
    k.delete(0x7f000001, 0, 0); // absent: nothing happens
    for (let i = 0; i < 500; i++) expect(k.get(...key(i))).toBe(i % 2 === 0 ? -1 : i);
    for (let i = 0; i < 500; i += 4) k.add(...key(i), 1000 + i);
    for (let i = 500; i < 1200; i++) k.add(...key(i), i); // rehashes, dropping tombstones
    for (let i = 0; i < 1200; i++) {
      const want = i >= 500 ? i : i % 4 === 0 ? 1000 + i : i % 2 === 0 ? -1 : i;
      expect(k.get(...key(i))).toBe(want);
    }
    expect(k.get(0xc0a80001 | 0, 65537, 2)).toBe(-1); // same words in another order of dimensions: a different key
  });
});
