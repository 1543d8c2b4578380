// What `iptables-save` prints on the node after kube-proxy's sync: built-in chains with their policies, the
// jump rules kube-proxy prepends to them, KUBE-PROXY-CANARY in mangle/nat/filter (ipt.Monitor creates it), user
// chains in alphabetical order, and every rule in the kernel's canonical form (checked against the real
// iptables-save: addresses get /32, -s/-d/-p move to the front, MARK prints --set-xmark, REJECT its default
// --reject-with, recent its defaults, statistic the probability the kernel stored, round(p * 2^31) / 2^31).
import { JUMP_CHAINS, KUBE_PROXY_CANARY, type KubeProxyTables, type KubeRule } from "./iptables.js";

// Options each match module owns (the ones kube-proxy uses), so options written after -d/-p still find their match.
const MATCH_OPTIONS: Record<string, string[]> = {
  comment: ["--comment"],
  tcp: ["--sport", "--dport", "--tcp-flags", "--syn"],
  udp: ["--sport", "--dport"],
  sctp: ["--sport", "--dport"],
  mark: ["--mark"],
  conntrack: ["--ctstate", "--ctorigdst"],
  addrtype: ["--src-type", "--dst-type"],
  statistic: ["--mode", "--probability", "--every", "--packet"],
  recent: ["--name", "--set", "--rcheck", "--update", "--remove", "--seconds", "--reap", "--hitcount", "--rsource", "--rdest", "--mask"],
  nfacct: ["--nfacct-name"],
  multiport: ["--dports", "--sports", "--ports"],
};
const FLAG_OPTIONS = new Set(["--set", "--rcheck", "--update", "--remove", "--reap", "--rsource", "--rdest", "--syn"]);

/** Split a kube-proxy argument string into tokens; a double-quoted comment is one token, without its quotes. */
export function tokenize(args: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < args.length) {
    if (args[i] === " ") {
      i++;
      continue;
    }
    if (args[i] === '"') {
      const end = args.indexOf('"', i + 1);
      if (end < 0) throw new Error(`unterminated quote in kube-proxy rule: ${args}`);
      out.push(args.slice(i + 1, end));
      i = end + 1;
    } else {
      let end = args.indexOf(" ", i);
      if (end < 0) end = args.length;
      out.push(args.slice(i, end));
      i = end;
    }
  }
  return out;
}

/** libxtables xtables_save_string: bare when only [A-Za-z0-9_-], otherwise double-quoted with \ escapes. */
export function saveString(v: string): string {
  if (/^[A-Za-z0-9_-]+$/.test(v)) return v;
  return `"${v.replace(/(["\\'])/g, "\\$1")}"`;
}

const withPrefix = (a: string) => (a.includes("/") ? a : `${a}/32`);

/** xt_statistic stores round(p * 2^31); iptables-save prints that back with %.11f. */
export function savedProbability(p: string): string {
  const stored = Math.round(Number(p) * 0x80000000);
  return (stored / 0x80000000).toFixed(11);
}

interface Match {
  name: string;
  opts: { key: string; neg: boolean; vals: string[] }[];
}

/** One kube-proxy rule in iptables-save's canonical text. */
export function saveRule(rule: KubeRule): string {
  const toks = tokenize(rule.args);
  const header: Record<string, string> = {};
  const matches: Match[] = [];
  let target = "";
  const targetOpts: string[] = [];
  let neg = false;
  for (let i = 0; i < toks.length; i++) {
    const t = toks[i]!;
    if (t === "!") {
      neg = true;
      continue;
    }
    if (t === "-s" || t === "-d" || t === "-i" || t === "-o" || t === "-p") {
      const v = toks[++i]!;
      header[t] = `${neg ? "! " : ""}${t} ${t === "-s" || t === "-d" ? withPrefix(v) : v}`;
    } else if (t === "-m") {
      matches.push({ name: toks[++i]!, opts: [] });
    } else if (t === "-j") {
      target = toks[++i]!;
      targetOpts.push(...toks.slice(i + 1));
      break;
    } else if (t.startsWith("--")) {
      const owner = [...matches].reverse().find((m) => MATCH_OPTIONS[m.name]?.includes(t));
      if (!owner) throw new Error(`kube-proxy rule option ${t} belongs to no match: ${rule.args}`);
      const vals: string[] = [];
      if (!FLAG_OPTIONS.has(t)) vals.push(toks[++i]!);
      owner.opts.push({ key: t, neg, vals });
    }
    neg = false;
  }
  let s = `-A ${rule.chain}`;
  for (const k of ["-s", "-d", "-i", "-o", "-p"]) if (header[k]) s += ` ${header[k]}`;
  for (const m of matches) s += ` -m ${m.name}${saveMatch(m)}`;
  if (target) s += ` -j ${target}${saveTarget(target, targetOpts)}`;
  return s;
}

function opt(m: Match, key: string) {
  return m.opts.find((o) => o.key === key);
}

function saveMatch(m: Match): string {
  const neg = (o: { neg: boolean }) => (o.neg ? " !" : "");
  switch (m.name) {
    case "comment":
      return ` --comment ${saveString(opt(m, "--comment")!.vals[0]!)}`;
    case "tcp":
    case "udp":
    case "sctp": {
      let s = "";
      for (const k of ["--sport", "--dport"]) {
        const o = opt(m, k);
        if (o) s += `${neg(o)} ${k} ${o.vals[0]!.replace("-", ":")}`;
      }
      return s;
    }
    case "recent": {
      // libxt_recent save order: action, --seconds, --reap, --name, --mask, side.
      let s = "";
      for (const a of ["--set", "--rcheck", "--update", "--remove"]) if (opt(m, a)) s += ` ${a}`;
      const sec = opt(m, "--seconds");
      if (sec) s += ` --seconds ${sec.vals[0]}`;
      if (opt(m, "--reap")) s += " --reap";
      s += ` --name ${opt(m, "--name")?.vals[0] ?? "DEFAULT"}`;
      s += ` --mask ${opt(m, "--mask")?.vals[0] ?? "255.255.255.255"}`;
      s += opt(m, "--rdest") ? " --rdest" : " --rsource";
      return s;
    }
    case "statistic": {
      const p = opt(m, "--probability");
      return ` --mode ${opt(m, "--mode")!.vals[0]}${p ? ` --probability ${savedProbability(p.vals[0]!)}` : ""}`;
    }
    default:
      return m.opts.map((o) => `${neg(o)} ${o.key}${o.vals.map((v) => ` ${v}`).join("")}`).join("");
  }
}

function saveTarget(target: string, opts: string[]): string {
  switch (target) {
    case "MARK": {
      // --or-mark X == --set-xmark X/X; --xor-mark X == --set-xmark X/0x0.
      const [op, v] = opts;
      if (op === "--or-mark") return ` --set-xmark ${v}/${v}`;
      if (op === "--xor-mark") return ` --set-xmark ${v}/0x0`;
      return opts.length ? ` ${opts.join(" ")}` : "";
    }
    case "REJECT":
      return opts.length ? ` ${opts.join(" ")}` : " --reject-with icmp-port-unreachable";
    default:
      return opts.length ? ` ${opts.join(" ")}` : "";
  }
}

const BUILTIN: Record<string, string[]> = {
  mangle: ["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"],
  filter: ["INPUT", "FORWARD", "OUTPUT"],
  nat: ["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"],
};

/** The built-in chain jumps in their final order: each EnsureRule(Prepend) puts its rule first. */
export function jumpRules(table: "filter" | "nat"): KubeRule[] {
  const out: KubeRule[] = [];
  for (const j of JUMP_CHAINS) {
    if (j.table !== table) continue;
    const args = [...j.extra, ...(j.comment ? ["-m", "comment", "--comment", `"${j.comment}"`] : []), "-j", j.dst].join(" ");
    out.unshift({ chain: j.src, args });
  }
  return out;
}

function saveTable(name: "mangle" | "filter" | "nat", chains: string[], rules: KubeRule[]): string[] {
  const lines = [`*${name}`];
  for (const b of BUILTIN[name]!) lines.push(`:${b} ACCEPT [0:0]`);
  // EnsureChain runs for every jump target (KUBE-FIREWALL too, even when kube-proxy writes no rule into it).
  const ensured = name === "mangle" ? [] : JUMP_CHAINS.filter((j) => j.table === name).map((j) => j.dst);
  const user = [...new Set([...chains, ...ensured, KUBE_PROXY_CANARY])].sort();
  for (const c of user) lines.push(`:${c} - [0:0]`);
  // iptables-save walks chains in order (built-ins first, then user chains sorted), each chain's rules in order.
  const order = [...BUILTIN[name]!, ...user];
  const byChain = new Map<string, KubeRule[]>();
  for (const r of name === "mangle" ? [] : [...jumpRules(name), ...rules]) {
    let l = byChain.get(r.chain);
    if (!l) byChain.set(r.chain, (l = []));
    l.push(r);
  }
  for (const c of order) for (const r of byChain.get(c) ?? []) lines.push(saveRule(r));
  lines.push("COMMIT");
  return lines;
}

/** The node's whole ruleset as `iptables-save` prints it (mangle, filter, nat), ready for `iptables-restore`. */
export function iptablesSave(t: KubeProxyTables, header = "# Generated by tcbox kube-proxy (iptables mode)"): string {
  const lines = [header, ...saveTable("mangle", [], []), ...saveTable("filter", t.filterChains, t.filterRules), ...saveTable("nat", t.natChains, t.natRules)];
  return lines.join("\n") + "\n";
}
