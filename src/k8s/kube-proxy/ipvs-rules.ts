// The iptables rules kube-proxy's IPVS proxier still installs (pkg/proxy/ipvs/proxier.go: iptablesChains,
// iptablesJumpChain, writeIptablesRules, acceptIPVSTraffic), matching Services through the ipsets instead of one
// rule per Service: the ruleset's size does not grow with the number of Services.
// A set's rules are written only when the set has members (as upstream's isEmpty checks), except the
// KUBE-IPVS-FILTER and health-check rules, which always reference their (possibly empty) sets.
import { parseIptablesRestore } from "../../netfilter/restore.js";
import { printIptablesSave } from "../../netfilter/save.js";
import type { IpvsState } from "./ipvs.js";

const NAT_CHAINS = ["KUBE-SERVICES", "KUBE-POSTROUTING", "KUBE-NODE-PORT", "KUBE-LOAD-BALANCER", "KUBE-MARK-MASQ"];
const FILTER_CHAINS = ["KUBE-FORWARD", "KUBE-NODE-PORT", "KUBE-PROXY-FIREWALL", "KUBE-SOURCE-RANGES-FIREWALL", "KUBE-IPVS-FILTER", "KUBE-IPVS-OUT-FILTER"];

/**
 * iptablesJumpChain, each installed with EnsureRule(Prepend): the last listed for a built-in chain ends up first.
 * [table, built-in chain, target, comment]
 */
const JUMPS: [string, string, string, string][] = [
  ["nat", "OUTPUT", "KUBE-SERVICES", "kubernetes service portals"],
  ["nat", "PREROUTING", "KUBE-SERVICES", "kubernetes service portals"],
  ["nat", "POSTROUTING", "KUBE-POSTROUTING", "kubernetes postrouting rules"],
  ["filter", "FORWARD", "KUBE-FORWARD", "kubernetes forwarding rules"],
  ["filter", "INPUT", "KUBE-NODE-PORT", "kubernetes health check rules"],
  ["filter", "INPUT", "KUBE-PROXY-FIREWALL", "kube-proxy firewall rules"],
  ["filter", "FORWARD", "KUBE-PROXY-FIREWALL", "kube-proxy firewall rules"],
  ["filter", "INPUT", "KUBE-IPVS-FILTER", "kubernetes ipvs access filter"],
  ["filter", "OUTPUT", "KUBE-IPVS-OUT-FILTER", "kubernetes ipvs access filter"],
];

const q = (s: string) => `"${s}"`;

/** The rules as an iptables-restore payload (filter, then nat), jumps included. */
export function ipvsRestorePayload(state: IpvsState): string {
  const o = state.opts;
  const mark = `0x${(1 << (o.masqueradeBit ?? 14)).toString(16)}`;
  const sets = state.ipsets;
  const has = (n: string) => (sets.get(n)?.size ?? 0) > 0;
  const comment = (n: string) => `-m comment --comment ${q(sets.get(n)!.comment)}`;
  const nat: string[] = [];
  const filter: string[] = [];
  const jumps = (table: string) =>
    [...JUMPS].reverse().filter((j) => j[0] === table).map((j) => `-A ${j[1]} -m comment --comment ${q(j[3])} -j ${j[2]}`);
  nat.push(...jumps("nat"));
  filter.push(...jumps("filter"));

  // Connections from localhost are left alone (writeIptablesRules: loAddr RETURN first in KUBE-SERVICES).
  nat.push("-A KUBE-SERVICES -s 127.0.0.0/8 -j RETURN");
  // ipsetWithIptablesChain (the sets tcbox models), each rule only when its set has members.
  const withChain: [string, "nat" | "filter", string, string, string, string][] = [
    ["KUBE-LOOP-BACK", "nat", "KUBE-POSTROUTING", "MASQUERADE", "dst,dst,src", ""],
    ["KUBE-LOAD-BALANCER", "nat", "KUBE-SERVICES", "KUBE-LOAD-BALANCER", "dst,dst", ""],
    ["KUBE-LOAD-BALANCER-LOCAL", "nat", "KUBE-LOAD-BALANCER", "RETURN", "dst,dst", ""],
    ["KUBE-NODE-PORT-LOCAL-TCP", "nat", "KUBE-NODE-PORT", "RETURN", "dst", "tcp"],
    ["KUBE-NODE-PORT-TCP", "nat", "KUBE-NODE-PORT", "KUBE-MARK-MASQ", "dst", "tcp"],
    ["KUBE-NODE-PORT-LOCAL-UDP", "nat", "KUBE-NODE-PORT", "RETURN", "dst", "udp"],
    ["KUBE-NODE-PORT-UDP", "nat", "KUBE-NODE-PORT", "KUBE-MARK-MASQ", "dst", "udp"],
    ["KUBE-NODE-PORT-LOCAL-SCTP-HASH", "nat", "KUBE-NODE-PORT", "RETURN", "dst,dst", "sctp"],
    ["KUBE-NODE-PORT-SCTP-HASH", "nat", "KUBE-NODE-PORT", "KUBE-MARK-MASQ", "dst,dst", "sctp"],
    // loadBalancerSourceRanges: LB ip:port with ranges → KUBE-SOURCE-RANGES-FIREWALL, which returns for an allowed
    // source (a range, or the LB address itself for the node) and otherwise drops (the DROP rule below).
    ["KUBE-LOAD-BALANCER-FW", "filter", "KUBE-PROXY-FIREWALL", "KUBE-SOURCE-RANGES-FIREWALL", "dst,dst", ""],
    ["KUBE-LOAD-BALANCER-SOURCE-CIDR", "filter", "KUBE-SOURCE-RANGES-FIREWALL", "RETURN", "dst,dst,src", ""],
    ["KUBE-LOAD-BALANCER-SOURCE-IP", "filter", "KUBE-SOURCE-RANGES-FIREWALL", "RETURN", "dst,dst,src", ""],
  ];
  for (const [name, table, from, to, match, proto] of withChain) {
    if (!has(name)) continue;
    (table === "nat" ? nat : filter).push(`-A ${from}${proto ? ` -p ${proto}` : ""} ${comment(name)} -m set --match-set ${name} ${match} -j ${to}`);
  }
  if (has("KUBE-CLUSTER-IP")) {
    const args = `-A KUBE-SERVICES ${comment("KUBE-CLUSTER-IP")} -m set --match-set KUBE-CLUSTER-IP`;
    if (o.masqueradeAll) nat.push(`${args} dst,dst -j KUBE-MARK-MASQ`);
    else if (o.clusterCIDR) nat.push(`${args} dst,dst ! -s ${o.clusterCIDR} -j KUBE-MARK-MASQ`);
    else nat.push(`${args} src,dst -j KUBE-MARK-MASQ`);
  }
  const externalIPRules = (args: string) => {
    // Off-machine traffic (not from a bridge port, not from a local address), and traffic to a local external IP.
    nat.push(`${args} -m physdev ! --physdev-is-in -m addrtype ! --src-type LOCAL -j ACCEPT`);
    nat.push(`${args} -m addrtype --dst-type LOCAL -j ACCEPT`);
  };
  if (has("KUBE-EXTERNAL-IP")) {
    const args = `-A KUBE-SERVICES ${comment("KUBE-EXTERNAL-IP")} -m set --match-set KUBE-EXTERNAL-IP dst,dst`;
    nat.push(`${args} -j KUBE-MARK-MASQ`);
    externalIPRules(args);
  }
  if (has("KUBE-EXTERNAL-IP-LOCAL")) externalIPRules(`-A KUBE-SERVICES ${comment("KUBE-EXTERNAL-IP-LOCAL")} -m set --match-set KUBE-EXTERNAL-IP-LOCAL dst,dst`);
  nat.push("-A KUBE-SERVICES -m addrtype --dst-type LOCAL -j KUBE-NODE-PORT");
  nat.push("-A KUBE-LOAD-BALANCER -j KUBE-MARK-MASQ");
  filter.push("-A KUBE-SOURCE-RANGES-FIREWALL -j DROP");
  // acceptIPVSTraffic: the end of KUBE-SERVICES accepts whatever goes to a virtual server.
  for (const n of ["KUBE-CLUSTER-IP", "KUBE-LOAD-BALANCER"]) if (has(n)) nat.push(`-A KUBE-SERVICES -m set --match-set ${n} dst,dst -j ACCEPT`);
  filter.push("-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP");
  filter.push(`-A KUBE-FORWARD -m comment --comment ${q("kubernetes forwarding rules")} -m mark --mark ${mark}/${mark} -j ACCEPT`);
  filter.push(`-A KUBE-FORWARD -m comment --comment ${q("kubernetes forwarding conntrack rule")} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`);
  filter.push(`-A KUBE-NODE-PORT ${comment("KUBE-HEALTH-CHECK-NODE-PORT")} -m set --match-set KUBE-HEALTH-CHECK-NODE-PORT dst -j ACCEPT`);
  // KUBE-IPVS-FILTER: a Service IP answers only on its Service ports (kubernetes/kubernetes#72236).
  for (const [n, m] of [["KUBE-LOAD-BALANCER", "dst,dst"], ["KUBE-CLUSTER-IP", "dst,dst"], ["KUBE-EXTERNAL-IP", "dst,dst"], ["KUBE-EXTERNAL-IP-LOCAL", "dst,dst"], ["KUBE-HEALTH-CHECK-NODE-PORT", "dst"]]) {
    filter.push(`-A KUBE-IPVS-FILTER -m set --match-set ${n} ${m} -j RETURN`);
  }
  filter.push("-A KUBE-IPVS-FILTER -m conntrack --ctstate NEW -m set --match-set KUBE-IPVS-IPS dst -j REJECT");
  nat.push(`-A KUBE-POSTROUTING -m mark ! --mark ${mark}/${mark} -j RETURN`);
  nat.push(`-A KUBE-POSTROUTING -j MARK --xor-mark ${mark}`);
  nat.push(`-A KUBE-POSTROUTING -m comment --comment ${q("kubernetes service traffic requiring SNAT")} -j MASQUERADE${o.randomFully ?? true ? " --random-fully" : ""}`);
  nat.push(`-A KUBE-MARK-MASQ -j MARK --or-mark ${mark}`);

  const table = (name: string, builtins: string[], chains: string[], rules: string[]) =>
    [`*${name}`, ...builtins.map((b) => `:${b} ACCEPT [0:0]`), ...chains.map((c) => `:${c} - [0:0]`), ...rules, "COMMIT"];
  return [
    ...table("filter", ["INPUT", "FORWARD", "OUTPUT"], FILTER_CHAINS, filter),
    ...table("nat", ["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"], NAT_CHAINS, nat),
    "",
  ].join("\n");
}

/** The same rules as `iptables-save` prints them (option order, `--reject-with` spelled out, chains sorted). */
export function ipvsIptablesSave(state: IpvsState, header = "# Generated by tcbox kube-proxy (ipvs mode)"): string {
  const rs = parseIptablesRestore(ipvsRestorePayload(state));
  return `${header}\n${printIptablesSave(rs, { generateComments: false })}`;
}
