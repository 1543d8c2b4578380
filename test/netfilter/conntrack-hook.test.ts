// The conntrack model inside the hook path: iptables-save rules (DNAT, MASQUERADE, a stateful FORWARD chain)
// walked by NetfilterPath, conntrack and NAT applied to the packet bytes. Packets in, verdicts and bytes out.
import { describe, expect, it } from "vitest";
import { formatIpv4, parseIpv4 } from "../../src/packet/addr.js";
import { get16, get32 } from "../../src/packet/checksum.js";
import { compileRuleset } from "../../src/netfilter/compile.js";
import { Conntrack } from "../../src/netfilter/conntrack.js";
import { formatList } from "../../src/netfilter/conntrack-format.js";
import { ConntrackPathHook } from "../../src/netfilter/conntrack-hook.js";
import { AddrType } from "../../src/netfilter/ctstate.js";
import { NF_ACCEPT, NF_DROP, type EvalEnv } from "../../src/netfilter/eval.js";
import { NetfilterPath, PathResult, type RouteEnv } from "../../src/netfilter/hooks.js";
import { IfaceRegistry } from "../../src/netfilter/iface.js";
import { PacketState } from "../../src/netfilter/packet-state.js";
import { RecentTables } from "../../src/netfilter/recent.js";
import { parseIptablesRestore } from "../../src/netfilter/restore.js";
import { checksumsOk, F, L3, ping, tcp, udp } from "./conntrack-fixtures.js";

const NODE = parseIpv4("192.168.0.2");
const RULES = `*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -d 10.96.0.10/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.244.2.7:8080
-A POSTROUTING -s 10.244.1.0/24 -o eth0 -j MASQUERADE
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -m conntrack --ctstate INVALID -j DROP
-A FORWARD -d 10.244.2.7/32 -p tcp -m conntrack --ctstate NEW -m tcp --dport 8080 -j ACCEPT
-A FORWARD -s 10.244.1.0/24 -p udp -j ACCEPT
COMMIT
`;

/** `load`: the frame goes in through ConntrackPathHook.load (header read once) instead of setPacket + fromIpv4. */
function node(load = false) {
  const ifaces = new IfaceRegistry();
  const recent = new RecentTables();
  const compiled = compileRuleset(parseIptablesRestore(RULES), { ifaces, recent });
  const env: EvalEnv & RouteEnv = {
    randomMatch: () => false,
    addrType: (a) => (a === NODE ? AddrType.LOCAL : AddrType.UNICAST),
    now: () => 0,
    recent,
    isLocal: (a) => a === NODE,
    masqueradeAddr: () => NODE,
  };
  const ct = new Conntrack();
  const hook = new ConntrackPathHook(ct);
  const path = new NetfilterPath(compiled, env, hook);
  const eth0 = ifaces.index("eth0");
  const veth = ifaces.index("veth1");
  const p = new PacketState();
  const out = new PathResult();
  /** Forward one frame: toward pods (10.244.2.0/24) out eth0, everything else out veth1. */
  const send = (f: Uint8Array): string => {
    if (load) hook.load(f, L3, p);
    else {
      hook.setPacket(f, L3);
      p.reset();
      p.fromIpv4(f, L3);
    }
    const toPods = (p.dst >>> 8) === (parseIpv4("10.244.2.0") >>> 8) || p.dst === parseIpv4("10.96.0.10");
    p.iif = toPods ? veth : eth0;
    p.oif = toPods ? eth0 : veth;
    const v = path.receive(p, out);
    if (v !== NF_ACCEPT || hook.dropped) return "DROP";
    expect(checksumsOk(f)).toBe(true);
    const l4 = L3 + 20;
    return `${formatIpv4(get32(f, L3 + 12))}:${get16(f, l4)} > ${formatIpv4(get32(f, L3 + 16))}:${get16(f, l4 + 2)}`;
  };
  return { ct, send };
}

describe("conntrack + NAT in the hook path", () => {
  it.each([false, true])("a ClusterIP connection: DNAT and MASQUERADE on the way in, both undone on the way back (load: %s)", (load) => {
    const { ct, send } = node(load);
    const table: [Uint8Array, string][] = [
      [tcp("10.244.1.5", 43210, "10.96.0.10", 80, F.SYN, 1), "192.168.0.2:43210 > 10.244.2.7:8080"],
      [tcp("10.244.2.7", 8080, "192.168.0.2", 43210, F.SYN | F.ACK, 9, 2), "10.96.0.10:80 > 10.244.1.5:43210"],
      [tcp("10.244.1.5", 43210, "10.96.0.10", 80, F.ACK, 2, 10), "192.168.0.2:43210 > 10.244.2.7:8080"],
      [tcp("10.244.1.5", 43210, "10.96.0.10", 80, F.ACK | F.PSH, 2, 10, 20), "192.168.0.2:43210 > 10.244.2.7:8080"],
      [tcp("10.244.2.7", 8080, "192.168.0.2", 43210, F.ACK, 10, 22), "10.96.0.10:80 > 10.244.1.5:43210"],
      // A second client on the same source port gets another port from MASQUERADE.
      [udp("10.244.1.5", 5000, "10.244.2.7", 53), "192.168.0.2:5000 > 10.244.2.7:53"],
      // NEW but not allowed by FORWARD: dropped by the policy, its entry freed.
      [tcp("10.244.1.5", 1234, "10.244.2.7", 22, F.SYN, 1), "DROP"],
      // A stray FIN is INVALID: dropped by the INVALID rule.
      [tcp("10.244.1.9", 999, "10.244.2.7", 8080, F.FIN | F.ACK, 1, 1), "DROP"],
    ];
    for (const [f, want] of table) expect(send(f)).toBe(want);
    send(udp("10.244.1.5", 5001, "10.244.2.7", 53)); // next packet: the dropped SYN's entry is gone
    const list = formatList(ct);
    expect(list).toContain(
      "tcp      6 432000 ESTABLISHED src=10.244.1.5 dst=10.96.0.10 sport=43210 dport=80 src=10.244.2.7 dst=192.168.0.2 sport=8080 dport=43210 [ASSURED] mark=0 use=1",
    );
    expect(list).not.toContain("dport=22");
    expect(ct.count).toBe(3);
  });

  it("MASQUERADE picks a free port when two clients share a source port", () => {
    const { send } = node();
    expect(send(udp("10.244.1.5", 40000, "10.244.2.7", 53))).toBe("192.168.0.2:40000 > 10.244.2.7:53");
    const second = send(udp("10.244.1.6", 40000, "10.244.2.7", 53));
    expect(second).toMatch(/^192\.168\.0\.2:\d+ > 10\.244\.2\.7:53$/);
    expect(second).not.toContain(":40000 ");
    void NF_DROP;
  });
});

describe("ConntrackPathHook.load: the header read once for the packet state and conntrack", () => {
  const withOptions = tcp("10.244.1.5", 43210, "10.96.0.10", 80, F.SYN, 1);
  const frames: [string, Uint8Array][] = [
    ["TCP", tcp("10.244.1.5", 43210, "10.96.0.10", 80, F.ACK | F.PSH, 2, 10, 20)],
    ["UDP", udp("10.244.1.5", 5000, "10.244.2.7", 53)],
    ["ICMP echo", ping("10.244.1.5", "10.244.2.7", 7)],
    // Trailing bytes after the datagram (Ethernet padding): lengths come from the IP header.
    ["padded TCP", Uint8Array.from([...tcp("10.244.1.5", 1, "10.244.2.7", 2, F.ACK, 5, 6), 0, 0, 0, 0])],
  ];
  // Malformed ones: readTuple refuses them (or reads no TCP header), fromIpv4 still fills what it can.
  const cut = (f: Uint8Array, n: number) => f.slice(0, n);
  const patched = (f: Uint8Array, at: number, v: number) => {
    const g = f.slice();
    g[at] = v;
    return g;
  };
  frames.push(
    ["TCP cut after its ports", cut(tcp("10.244.1.5", 1, "10.244.2.7", 2, F.ACK), L3 + 20 + 8)],
    ["total length beyond the buffer", cut(withOptions, withOptions.length - 4)],
    ["TCP total length of 30 (10 bytes of header)", patched(patched(withOptions, L3 + 2, 0), L3 + 3, 30)],
    ["first fragment (MF)", patched(withOptions, L3 + 6, 0x20)],
    ["later fragment", patched(withOptions, L3 + 7, 0x10)],
    ["not IPv4", patched(withOptions, L3, 0x65)],
    ["too short", cut(withOptions, L3 + 12)],
  );

  it.each(frames)("%s: the same packet state and conntrack result as setPacket + fromIpv4", (_name, f) => {
    const run = (load: boolean) => {
      const ct = new Conntrack();
      const hook = new ConntrackPathHook(ct);
      const p = new PacketState();
      // What a previous packet left: reset clears every field either way.
      for (const k of Object.keys(p) as (keyof PacketState)[]) if (typeof p[k] === "number") (p as unknown as Record<string, number>)[k] = 7;
      let ok: boolean;
      if (load) ok = hook.load(f, L3, p);
      else {
        hook.setPacket(f, L3);
        p.reset();
        ok = p.fromIpv4(f, L3);
      }
      const before = { ...p };
      hook.in(0, p);
      return { ok, before, after: { ...p }, ref: hook.ref, count: ct.count, stats: { ...ct.stats } };
    };
    expect(run(true)).toEqual(run(false));
  });

  it("a tuple read for one packet is not used for the next one", () => {
    const ct = new Conntrack();
    const hook = new ConntrackPathHook(ct);
    const p = new PacketState();
    hook.load(udp("10.244.1.5", 5000, "10.244.2.7", 53), L3, p);
    // The caller switches to another packet without load(): in() must read that packet's own tuple.
    const other = udp("10.244.1.6", 6000, "10.244.2.7", 53);
    hook.setPacket(other, L3);
    p.reset();
    p.fromIpv4(other, L3);
    hook.in(0, p);
    expect(p.ctOrigSrc).toBe(parseIpv4("10.244.1.6"));
    expect(p.ctOrigSport).toBe(6000);
  });
});

describe("ctstate in the raw table", () => {
  // The kernel runs raw (-300) before conntrack (-200): the skb has no ct yet, so xt_conntrack sees INVALID there
  // for every packet of a connection, and mangle (-150) sees the real state. Checked in a namespace:
  // `-t raw -A OUTPUT -p udp -m conntrack --ctstate INVALID` counted both datagrams sent, `--ctstate NEW` none.
  const RAW = `*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A PREROUTING -p udp -m conntrack --ctstate INVALID
-A PREROUTING -p udp -m conntrack --ctstate NEW
-A PREROUTING -p udp -m conntrack --ctstate ESTABLISHED
COMMIT
*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -p udp -m conntrack --ctstate NEW
-A PREROUTING -p udp -m conntrack --ctstate ESTABLISHED
COMMIT
`;
  it("a forwarded UDP exchange: raw counts INVALID for all three packets, mangle NEW once and ESTABLISHED twice", () => {
    const compiled = compileRuleset(parseIptablesRestore(RAW));
    const env: EvalEnv & RouteEnv = {
      randomMatch: () => false,
      addrType: () => AddrType.UNICAST,
      now: () => 0,
      recent: compiled.env.recent,
      isLocal: () => false,
      masqueradeAddr: () => NODE,
    };
    const hook = new ConntrackPathHook(new Conntrack());
    const path = new NetfilterPath(compiled, env, hook);
    const p = new PacketState();
    const out = new PathResult();
    for (const f of [udp("10.244.1.5", 5000, "10.244.2.7", 53), udp("10.244.2.7", 53, "10.244.1.5", 5000), udp("10.244.1.5", 5000, "10.244.2.7", 53)]) {
      hook.setPacket(f, L3);
      p.reset();
      p.fromIpv4(f, L3);
      expect(path.receive(p, out)).toBe(NF_ACCEPT);
    }
    expect(Array.from(compiled.byName.raw!.packets)).toEqual([3, 0, 0]);
    expect(Array.from(compiled.byName.mangle!.packets)).toEqual([1, 2]);
  });
});
