// One rule's words after `-A CHAIN` → Rule, the way iptables' do_command4 reads them: ip header options,
// `-m` loads a match, unknown options go to the target, then to the most recently loaded match that knows them,
// then to the protocol's implicit match (`-p tcp --dport 80` loads `-m tcp`).
import { parseAddr } from "./match-state.js";
import type { Match, MatchModule, ParseCtx } from "./match.js";
import { MATCH_MODULES } from "./matches.js";
import { parseProto, protoName } from "./names.js";
import type { Rule } from "./rule.js";
import { TARGET_MODULES } from "./target-misc.js";
import type { Target, TargetModule } from "./target.js";
import { isBuiltinChain, type TableName } from "./tables.js";
import { type ArgCursor, parseUint } from "./tokens.js";

/** Options the kernel/libxt refuse to invert (`! --mode` is "cannot be inverted"). */
const NOT_INVERTIBLE = new Set([
  "--mode", "--comment", "--reap", "--name", "--rsource", "--rdest", "--mask", "--seconds", "--hitcount",
  "--limit-iface-in", "--limit-iface-out", "--nfacct-name",
]);

const IP_OPTS: Record<string, string> = {
  "-s": "-s", "--source": "-s", "--src": "-s",
  "-d": "-d", "--destination": "-d", "--dst": "-d",
  "-i": "-i", "--in-interface": "-i",
  "-o": "-o", "--out-interface": "-o",
  "-p": "-p", "--protocol": "-p",
  "-f": "-f", "--fragment": "-f",
  "-m": "-m", "--match": "-m",
  "-j": "-j", "--jump": "-j",
  "-g": "-g", "--goto": "-g",
  "-c": "-c", "--set-counters": "-c",
};

export interface RuleParseEnv {
  table: TableName;
  chain: string;
  /** Is NAME a chain of this table (a jump target)? */
  hasChain(name: string): boolean;
}

interface Loaded {
  mod: MatchModule;
  m: Match;
}

function parseIface(text: string, cur: ArgCursor): string {
  // IFNAMSIZ 16 with the NUL.
  if (text.length === 0 || text.length > 15) cur.fail(`interface name \`${text}' must be shorter than IFNAMSIZ (15)`);
  return text;
}

export function parseRuleArgs(cur: ArgCursor, env: RuleParseEnv): Rule {
  const rule: Rule = { ip: {}, matches: [], target: null, counters: { packets: 0, bytes: 0 } };
  const loaded: Loaded[] = [];
  const ctx: ParseCtx & { table: TableName } = { proto: 0, protoInvert: false, table: env.table };
  let targetMod: TargetModule | null = null;
  let protoUsed = false;
  while (!cur.done()) {
    let word = cur.next()!;
    let invert = false;
    if (word === "!") {
      invert = true;
      word = cur.next() ?? cur.fail("unexpected end of line after `!'");
    }
    const ip = IP_OPTS[word];
    if (ip !== undefined) {
      parseIpOpt(ip, invert, cur, rule, ctx, env);
      if (ip === "-m") {
        const name = cur.value(word);
        const mod = MATCH_MODULES[name] ?? cur.fail(`Couldn't load match \`${name}':No such file or directory`);
        loaded.push({ mod, m: mod.create() });
      } else if (ip === "-j" || ip === "-g") {
        if (rule.target) cur.fail("multiple -j / -g flags not allowed");
        const name = cur.value(word);
        const r = parseTargetName(name, ip === "-g", cur, env);
        rule.target = r.target;
        targetMod = r.mod;
      }
      continue;
    }
    if (!word.startsWith("-")) cur.fail(`Bad argument \`${word}'`);
    if (invert && NOT_INVERTIBLE.has(word)) cur.fail(`option "${word}" cannot be inverted`);
    if (targetMod && rule.target) {
      if (invert) {
        // Target options are never invertible; fall through to matches only when the target does not know it.
      } else if (targetMod.parse(rule.target, word, false, cur, ctx)) continue;
    }
    let taken = false;
    for (let k = loaded.length - 1; k >= 0 && !taken; k--) taken = loaded[k]!.mod.parse(loaded[k]!.m, word, invert, cur, ctx);
    if (taken) continue;
    // The protocol's own match, loaded once, as iptables does for `-p tcp --dport 80`.
    const pname = protoName(ctx.proto);
    const implicit = MATCH_MODULES[pname];
    if (!protoUsed && implicit && ["tcp", "udp", "sctp", "icmp"].includes(pname) && !ctx.protoInvert) {
      protoUsed = true;
      const entry = { mod: implicit, m: implicit.create() };
      loaded.push(entry);
      if (entry.mod.parse(entry.m, word, invert, cur, ctx)) continue;
    }
    cur.fail(`unknown option "${word}"`);
  }
  for (const { mod, m } of loaded) {
    mod.final(m, cur, ctx);
    rule.matches.push(m);
  }
  if (targetMod && rule.target) targetMod.final(rule.target, cur, ctx);
  return rule;
}

function parseIpOpt(opt: string, invert: boolean, cur: ArgCursor, rule: Rule, ctx: ParseCtx, env: RuleParseEnv): void {
  const once = (present: unknown, flag: string) => {
    if (present) cur.fail(`multiple ${flag} flags not allowed`);
  };
  switch (opt) {
    case "-s":
    case "-d": {
      once(opt === "-s" ? rule.ip.src : rule.ip.dst, opt);
      const v = cur.value(opt);
      if (v.includes(",")) cur.fail(`tcbox: address lists (\`${v}') are not supported`);
      const a = parseAddr(v, invert, cur);
      if (opt === "-s") rule.ip.src = a;
      else rule.ip.dst = a;
      return;
    }
    case "-i":
    case "-o": {
      once(opt === "-i" ? rule.ip.iif : rule.ip.oif, opt);
      const name = parseIface(cur.value(opt), cur);
      // iptables refuses the interface that cannot exist on a built-in chain's hook.
      if (opt === "-i" && (env.chain === "OUTPUT" || env.chain === "POSTROUTING") && isBuiltinChain(env.table, env.chain)) {
        cur.fail(`Can't use -i with ${env.chain}`);
      }
      if (opt === "-o" && (env.chain === "PREROUTING" || env.chain === "INPUT") && isBuiltinChain(env.table, env.chain)) {
        cur.fail(`Can't use -o with ${env.chain}`);
      }
      if (opt === "-i") rule.ip.iif = { name, invert };
      else rule.ip.oif = { name, invert };
      return;
    }
    case "-p": {
      once(rule.ip.proto, "-p");
      const num = parseProto(cur.value(opt), cur);
      if (num === 0 && invert) cur.fail("rule would never match protocol");
      if (num !== 0 || invert) rule.ip.proto = { num, invert };
      ctx.proto = num;
      ctx.protoInvert = invert;
      return;
    }
    case "-f":
      once(rule.ip.frag, "-f");
      rule.ip.frag = { invert };
      return;
    case "-c":
      rule.counters = { packets: parseUint(cur.value(opt), Number.MAX_SAFE_INTEGER, "packet counter", cur), bytes: parseUint(cur.value(opt), Number.MAX_SAFE_INTEGER, "byte counter", cur) };
      return;
    case "-m":
    case "-j":
    case "-g":
      if (invert) cur.fail(`unexpected ! flag before ${opt === "-m" ? "--match" : "--jump"}`);
      return;
  }
}

function parseTargetName(name: string, isGoto: boolean, cur: ArgCursor, env: RuleParseEnv): { target: Target; mod: TargetModule | null } {
  if (!isGoto) {
    const mod = TARGET_MODULES[name];
    if (mod) return { target: mod.create(), mod };
  }
  if (!env.hasChain(name)) cur.fail(`Couldn't load target \`${name}':No such file or directory`);
  if (isBuiltinChain(env.table, name)) cur.fail(`cannot jump to built-in chain \`${name}'`);
  return { target: { kind: "jump", chain: name, goto: isGoto }, mod: null };
}
