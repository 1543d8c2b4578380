// netfilter rule walk: ns per rule on a linear walk of non-matching rules, and the first packet of a connection
// through a kube-proxy-like ruleset (KUBE-SERVICES with one rule per Service) at 10 .. 10k Services.
import { compileRuleset } from "../src/netfilter/compile.js";
import { AddrType, CtState } from "../src/netfilter/ctstate.js";
import { type EvalEnv, EvalResult, evalChain } from "../src/netfilter/eval.js";
import { NetfilterPath, PathResult, type RouteEnv } from "../src/netfilter/hooks.js";
import { PacketState } from "../src/netfilter/packet-state.js";
import { RecentTables } from "../src/netfilter/recent.js";
import { parseIptablesRestore } from "../src/netfilter/restore.js";
import { Hook } from "../src/netfilter/tables.js";
import { runGroup, type BenchOptions } from "./harness.js";

const NODE_IP = 0xc0a80002;

function env(): EvalEnv & RouteEnv {
  let seed = 1;
  return {
    randomMatch: (stored) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return (seed & 0x7fffffff) < stored;
    },
    addrType: (a) => (a === NODE_IP || a >>> 24 === 127 ? AddrType.LOCAL : AddrType.UNICAST),
    now: () => 0,
    recent: new RecentTables(),
    isLocal: (a) => a === NODE_IP || a >>> 24 === 127,
    masqueradeAddr: () => NODE_IP,
  };
}

function ip(n: number): string {
  return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

/** N rules none of which matches 10.0.0.1 → 10.0.0.2 tcp: the kernel's worst case, every rule read. */
function linear(n: number): string {
  const rules = Array.from({ length: n }, (_, i) => `-A INPUT -s ${ip(0xac100000 + i)}/32 -p tcp -m tcp --dport 80 -j DROP`);
  return `*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n${rules.join("\n")}\nCOMMIT\n`;
}

/** kube-proxy's shape: per Service a KUBE-SERVICES rule, a KUBE-SVC chain with 3 endpoints (1/3, 1/2, rest). */
function kubeProxy(services: number): string {
  const nat: string[] = [];
  const chains: string[] = [":KUBE-MARK-MASQ - [0:0]", ":KUBE-POSTROUTING - [0:0]", ":KUBE-SERVICES - [0:0]"];
  nat.push('-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES');
  nat.push('-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES');
  nat.push('-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING');
  nat.push("-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000");
  nat.push("-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN");
  nat.push("-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0");
  nat.push("-A KUBE-POSTROUTING -j MASQUERADE --random-fully");
  for (let s = 0; s < services; s++) {
    const svc = `KUBE-SVC-S${s}`;
    const vip = ip(0xac1e0000 + s);
    chains.push(`:${svc} - [0:0]`);
    nat.push(`-A KUBE-SERVICES -d ${vip}/32 -p tcp -m comment --comment "ns/svc${s}:p80 cluster IP" -m tcp --dport 80 -j ${svc}`);
    nat.push(`-A ${svc} ! -s 10.0.0.0/8 -d ${vip}/32 -p tcp -m tcp --dport 80 -j KUBE-MARK-MASQ`);
    const probs = ["0.33333333349", "0.50000000000"];
    for (let e = 0; e < 3; e++) {
      const sep = `KUBE-SEP-S${s}E${e}`;
      const ep = ip(0x0ab40000 + s * 4 + e);
      chains.push(`:${sep} - [0:0]`);
      nat.push(`-A ${svc}${e < 2 ? ` -m statistic --mode random --probability ${probs[e]}` : ""} -j ${sep}`);
      nat.push(`-A ${sep} -s ${ep}/32 -j KUBE-MARK-MASQ`);
      nat.push(`-A ${sep} -p tcp -m tcp -j DNAT --to-destination ${ep}:80`);
    }
  }
  nat.push('-A KUBE-SERVICES -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS');
  chains.push(":KUBE-NODEPORTS - [0:0]");
  const filter = [
    "*filter", ":INPUT ACCEPT [0:0]", ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]", ":KUBE-FORWARD - [0:0]",
    "-A FORWARD -j KUBE-FORWARD", "-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP",
    "-A KUBE-FORWARD -m mark --mark 0x4000/0x4000 -j ACCEPT", "COMMIT",
  ];
  return ["*nat", ":PREROUTING ACCEPT [0:0]", ":INPUT ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]", ":POSTROUTING ACCEPT [0:0]", ...chains, ...nat, "COMMIT", ...filter].join("\n") + "\n";
}

const BATCH = 1024;

export default async function (opts: BenchOptions): Promise<void> {
  // Linear walk.
  const N = 1000;
  const lin = compileRuleset(parseIptablesRestore(linear(N)));
  const t = lin.byName.filter!;
  const e = env();
  const r = new EvalResult();
  const p = new PacketState();
  p.proto = 6;
  p.src = 0x0a000001;
  p.dst = 0x0a000002;
  p.dport = 80;
  const PKTS = 16;
  const input = t.hookChain[Hook.INPUT]!;
  await runGroup(
    `netfilter: linear walk of ${N} non-matching rules (ns per rule)`,
    [
      {
        name: `${N} rules -s X/32 -p tcp --dport 80`,
        items: PKTS * N,
        fn: () => {
          for (let k = 0; k < PKTS; k++) evalChain(t, input, p, e, r);
        },
      },
    ],
    opts,
  );

  // First packet of a connection through kube-proxy-like rules.
  const tasks = [10, 100, 1000, 10000].map((services) => {
    const rules = compileRuleset(parseIptablesRestore(kubeProxy(services)));
    const path = new NetfilterPath(rules, env());
    const out = new PathResult();
    const pk = new PacketState();
    const dsts = new Uint32Array(BATCH);
    let x = 7;
    for (let i = 0; i < BATCH; i++) {
      x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
      dsts[i] = 0xac1e0000 + (x % services);
    }
    return {
      name: `${services} Services, NEW tcp to a random ClusterIP`,
      items: BATCH,
      fn: () => {
        for (let i = 0; i < BATCH; i++) {
          pk.reset();
          pk.proto = 6;
          pk.src = 0x0a000005;
          pk.sport = 40000;
          pk.dst = dsts[i]!;
          pk.dport = 80;
          pk.len = 60;
          pk.iif = 1;
          pk.oif = 2;
          path.receive(pk, out);
        }
      },
    };
  });
  const res = await runGroup("netfilter: first packet through kube-proxy rules (PREROUTING..POSTROUTING)", tasks, opts);
  // Rules evaluated per packet, for the ns-per-rule figure at scale.
  const per = [10, 100, 1000, 10000].map((s, i) => `${s}: ${res[i]!.medianNs.toFixed(0)} ns/pkt`);
  process.stdout.write(`  (KUBE-SERVICES is a linear list: about services/2 rules per first packet; ${per.join(", ")})\n`);
  // Later packets of a connection skip the nat table (its binding comes from conntrack): only the filter chains are
  // walked. The conntrack lookup and the NAT rewrite itself are helper code measured elsewhere (conntrack bench).
  const est = [10, 100, 1000, 10000].map((services) => {
    const rules = compileRuleset(parseIptablesRestore(kubeProxy(services)));
    const path = new NetfilterPath(rules, env());
    const out = new PathResult();
    const pk = new PacketState();
    return {
      name: `${services} Services, ESTABLISHED (rule walk only)`,
      items: BATCH,
      fn: () => {
        for (let i = 0; i < BATCH; i++) {
          pk.reset();
          pk.proto = 6;
          pk.src = 0x0a000005;
          pk.sport = 40000;
          pk.dst = 0x0ab40000 + (i & 3);
          pk.dport = 80;
          pk.len = 60;
          pk.iif = 1;
          pk.oif = 2;
          pk.ctState = CtState.ESTABLISHED | CtState.DNAT;
          path.receive(pk, out);
        }
      },
    };
  });
  await runGroup("netfilter: established packets through kube-proxy rules (nat skipped)", est, opts);

}
