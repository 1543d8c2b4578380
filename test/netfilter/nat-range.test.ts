// The NAT hand-over from the rules to conntrack: (a) the nat table is walked only while the connection's manip is
// not set up (nf_nat_inet_fn: !nf_nat_initialized), so an unreplied retransmitted SYN keeps its backend; (b) the
// rule's whole range (addresses, ports, random/persistent flags, "ports given" even when equal to the packet's)
// reaches nf_nat_setup_info. Packets in, rewritten packets (or DROP) out.
import { describe, expect, it } from "vitest";
import { formatIpv4, parseIpv4 } from "../../src/packet/addr.js";
import { get16, get32 } from "../../src/packet/checksum.js";
import { compileRuleset } from "../../src/netfilter/compile.js";
import { Conntrack } from "../../src/netfilter/conntrack.js";
import { ConntrackPathHook } from "../../src/netfilter/conntrack-hook.js";
import { AddrType } from "../../src/netfilter/ctstate.js";
import { NF_ACCEPT, type EvalEnv } from "../../src/netfilter/eval.js";
import { NetfilterPath, PathResult, type RouteEnv } from "../../src/netfilter/hooks.js";
import { IfaceRegistry } from "../../src/netfilter/iface.js";
import { PacketState } from "../../src/netfilter/packet-state.js";
import { RecentTables } from "../../src/netfilter/recent.js";
import { parseIptablesRestore } from "../../src/netfilter/restore.js";
import { checksumsOk, F, L3, tcp, udp } from "./conntrack-fixtures.js";

const NODE = parseIpv4("192.168.0.2");

function natRules(pre: string[], post: string[]): string {
  return ["*nat", ":PREROUTING ACCEPT [0:0]", ":INPUT ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]", ":POSTROUTING ACCEPT [0:0]",
    ...pre.map((r) => `-A PREROUTING ${r}`), ...post.map((r) => `-A POSTROUTING ${r}`), "COMMIT", ""].join("\n");
}

/** A forwarding node with `rules`; randomMatch answers from `coin` (toggled by the test). */
function node(rules: string) {
  const ifaces = new IfaceRegistry();
  const recent = new RecentTables();
  const compiled = compileRuleset(parseIptablesRestore(rules), { ifaces, recent });
  const coin = { heads: true };
  const env: EvalEnv & RouteEnv = {
    randomMatch: () => coin.heads,
    addrType: (a) => (a === NODE ? AddrType.LOCAL : AddrType.UNICAST),
    now: () => 0,
    recent,
    isLocal: (a) => a === NODE,
    masqueradeAddr: () => NODE,
  };
  const ct = new Conntrack({ seed: 7 });
  const hook = new ConntrackPathHook(ct);
  const path = new NetfilterPath(compiled, env, hook);
  const eth0 = ifaces.index("eth0");
  const veth = ifaces.index("veth1");
  const p = new PacketState();
  const out = new PathResult();
  const send = (f: Uint8Array): string => {
    hook.setPacket(f, L3);
    p.reset();
    p.fromIpv4(f, L3);
    p.iif = veth;
    p.oif = eth0;
    const v = path.receive(p, out);
    if (v !== NF_ACCEPT || hook.dropped) return "DROP";
    expect(checksumsOk(f)).toBe(true);
    return `${formatIpv4(get32(f, L3 + 12))}:${get16(f, L3 + 20)} > ${formatIpv4(get32(f, L3 + 16))}:${get16(f, L3 + 22)}`;
  };
  const natTable = compiled.byName.nat!;
  return { ct, send, coin, natTable };
}

describe("nat table walked only while the manip is not set up", () => {
  const SVC = [
    "-d 10.96.0.10/32 -p tcp -m tcp --dport 80 -m statistic --mode random --probability 0.50000000000 -j DNAT --to-destination 10.244.2.7:8080",
    "-d 10.96.0.10/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.244.2.8:8080",
  ];
  it.each([
    // coin per packet, expected backend of every packet: the first packet's choice sticks
    { name: "SYN, retransmitted SYN with the other coin", coins: [true, false], want: "10.244.2.7:8080" },
    { name: "SYN, two retransmits", coins: [false, true, true], want: "10.244.2.8:8080" },
  ])("$name", ({ coins, want }) => {
    const { send, coin, natTable } = node(natRules(SVC, []));
    for (const c of coins) {
      coin.heads = c;
      expect(send(tcp("10.244.1.5", 43210, "10.96.0.10", 80, F.SYN, 1))).toBe(`10.244.1.5:43210 > ${want}`);
    }
    // Only the first packet walked nat: one hit on PREROUTING's rules in total.
    const hits = natTable.packets.reduce((a, b) => a + b, 0);
    expect(hits).toBe(1);
  });
});

describe("the rule's full NAT range reaches conntrack", () => {
  type Row = { name: string; pre?: string[]; post?: string[]; pkts: Uint8Array[]; want: (string | RegExp)[] };
  const rows: Row[] = [
    {
      name: "MASQUERADE --to-ports equal to the source port is a one-port range: a clash is dropped, not remapped",
      post: ["-o eth0 -p udp -j MASQUERADE --to-ports 40000"],
      pkts: [udp("10.244.1.5", 40000, "10.244.2.7", 53), udp("10.244.1.6", 40000, "10.244.2.7", 53)],
      want: ["192.168.0.2:40000 > 10.244.2.7:53", "DROP"],
    },
    {
      name: "MASQUERADE without ports: the clash is remapped to a free port",
      post: ["-o eth0 -j MASQUERADE"],
      pkts: [udp("10.244.1.5", 40000, "10.244.2.7", 53), udp("10.244.1.6", 40000, "10.244.2.7", 53)],
      want: ["192.168.0.2:40000 > 10.244.2.7:53", /^192\.168\.0\.2:(?!40000 )\d+ > 10\.244\.2\.7:53$/],
    },
    {
      name: "MASQUERADE --to-ports 2000-2001: two ports, the third client is dropped",
      post: ["-o eth0 -p udp -j MASQUERADE --to-ports 2000-2001"],
      pkts: [udp("10.244.1.5", 40000, "10.244.2.7", 53), udp("10.244.1.6", 40000, "10.244.2.7", 53), udp("10.244.1.7", 40000, "10.244.2.7", 53)],
      want: [/^192\.168\.0\.2:200[01] > 10\.244\.2\.7:53$/, /^192\.168\.0\.2:200[01] > 10\.244\.2\.7:53$/, "DROP"],
    },
    {
      name: "SNAT to a port range: the source port is taken from the range",
      post: ["-o eth0 -p udp -j SNAT --to-source 192.168.0.9:1000-1005"],
      pkts: [udp("10.244.1.5", 40000, "10.244.2.7", 53)],
      want: [/^192\.168\.0\.9:100[0-5] > 10\.244\.2\.7:53$/],
    },
    {
      name: "SNAT --random to a port range: a random port in range even when the source port would fit",
      post: ["-o eth0 -p udp -j SNAT --to-source 192.168.0.9:1000-1005 --random"],
      pkts: [udp("10.244.1.5", 1003, "10.244.2.7", 53), udp("10.244.1.6", 1003, "10.244.2.7", 53)],
      want: [/^192\.168\.0\.9:100[0-5] > 10\.244\.2\.7:53$/, /^192\.168\.0\.9:100[0-5] > 10\.244\.2\.7:53$/],
    },
    {
      name: "SNAT to an address range: an address from the range, the free source port kept",
      post: ["-o eth0 -j SNAT --to-source 192.168.0.9-192.168.0.11"],
      pkts: [udp("10.244.1.5", 40000, "10.244.2.7", 53)],
      want: [/^192\.168\.0\.(9|10|11):40000 > 10\.244\.2\.7:53$/],
    },
    {
      name: "DNAT to a port range: the destination gets the first port (no random offset for DST)",
      pre: ["-d 10.96.0.10/32 -p tcp -j DNAT --to-destination 10.244.2.7:8080-8090"],
      pkts: [tcp("10.244.1.5", 43210, "10.96.0.10", 80, F.SYN, 1)],
      want: ["10.244.1.5:43210 > 10.244.2.7:8080"],
    },
    {
      name: "DNAT to a port range holding the original port: the port is kept",
      pre: ["-d 10.96.0.10/32 -p tcp -j DNAT --to-destination 10.244.2.7:70-90"],
      pkts: [tcp("10.244.1.5", 43210, "10.96.0.10", 80, F.SYN, 1)],
      want: ["10.244.1.5:43210 > 10.244.2.7:80"],
    },
    {
      name: "DNAT to a port only: the address is kept",
      pre: ["-d 10.96.0.10/32 -p tcp -j DNAT --to-destination :8080"],
      pkts: [tcp("10.244.1.5", 43210, "10.96.0.10", 80, F.SYN, 1)],
      want: ["10.244.1.5:43210 > 10.96.0.10:8080"],
    },
    {
      name: "DNAT to an address range: one address of the range",
      pre: ["-d 10.96.0.10/32 -p tcp -j DNAT --to-destination 10.244.2.7-10.244.2.9"],
      pkts: [tcp("10.244.1.5", 43210, "10.96.0.10", 80, F.SYN, 1)],
      want: [/^10\.244\.1\.5:43210 > 10\.244\.2\.[789]:80$/],
    },
  ];
  it.each(rows)("$name", ({ pre = [], post = [], pkts, want }) => {
    const { send } = node(natRules(pre, post));
    const got = pkts.map(send);
    got.forEach((g, k) => {
      const w = want[k]!;
      if (typeof w === "string") expect(g).toBe(w);
      else expect(g).toMatch(w);
    });
    // Distinct connections never share a translated tuple.
    const accepted = got.filter((g) => g !== "DROP");
    expect(new Set(accepted).size).toBe(accepted.length);
  });

  it("an address range is chosen by the kernel's hash: the same client always gets the same address (persistent)", () => {
    const post = ["-o eth0 -j SNAT --to-source 192.168.0.9-192.168.0.40 --persistent"];
    const picks = new Set<string>();
    for (let d = 1; d <= 8; d++) {
      const { send } = node(natRules([], post));
      picks.add(send(udp("10.244.1.5", 40000, `10.244.2.${d}`, 53)).split(":")[0]!);
    }
    expect(picks.size).toBe(1); // persistent: the destination is left out of the hash
    const spread = new Set<string>();
    for (let d = 1; d <= 8; d++) {
      const { send } = node(natRules([], ["-o eth0 -j SNAT --to-source 192.168.0.9-192.168.0.40"]));
      spread.add(send(udp("10.244.1.5", 40000, `10.244.2.${d}`, 53)).split(":")[0]!);
    }
    expect(spread.size).toBeGreaterThan(1);
  });
});
