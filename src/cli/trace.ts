// `tcbox trace`: the first packet of a new connection through an iptables-save ruleset, every probabilistic
// branch explored. Contract (issue 3): --rules FILE --packet "PROTO SRC:SPORT -> DST:DPORT" [--local-ip IP,...]
// [--iif IF] [--oif IF] [--json]; JSON {"outcomes":[{probability, verdict, dnat, snat, masquerade, mark, rules}]}.
import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { parseIpv4 } from "../packet/addr.js";
import { NetfilterError } from "../netfilter/errors.js";
import { parseIptablesRestore } from "../netfilter/restore.js";
import { parsePacketSpec, traceRuleset, type TraceOutcome } from "../netfilter/trace.js";
import { CliError, print, printJson } from "./output.js";

interface TraceOpts {
  rules: string;
  packet: string;
  localIp?: string;
  iif?: string;
  oif?: string;
  json?: boolean;
}

export function register(program: Command): void {
  program
    .command("trace")
    .description("follow the first packet of a new connection through an iptables-save ruleset (every random branch)")
    .requiredOption("--rules <file>", "iptables-save text")
    .requiredOption("--packet <spec>", 'packet, e.g. "tcp 10.0.0.2:40000 -> 172.30.0.41:80"')
    .option("--local-ip <ips>", "this node's addresses, comma-separated (127.0.0.0/8 is always local)")
    .option("--iif <name>", "input interface for a received packet (default eth0)")
    .option("--oif <name>", "output interface (default lo for a local destination, else eth0)")
    .option("--json", "print JSON")
    .action((opts: TraceOpts) => run(opts));
}

function run(opts: TraceOpts): void {
  let text: string;
  try {
    text = readFileSync(opts.rules, "utf8");
  } catch (e) {
    throw new CliError((e as Error).message, opts.rules);
  }
  const rs = parseIptablesRestore(text, { file: opts.rules });
  const pkt = parsePacketSpec(opts.packet);
  const localIps = (opts.localIp ?? "")
    .split(",")
    .filter((s) => s.trim() !== "")
    .map((s) => {
      try {
        return parseIpv4(s.trim());
      } catch {
        throw new NetfilterError(`invalid IPv4 address "${s}"`, "--local-ip");
      }
    });
  const outcomes = traceRuleset(rs, { ...pkt, localIps, iif: opts.iif, oif: opts.oif });
  if (opts.json) {
    printJson({
      outcomes: outcomes.map((o) => ({
        probability: round(o.probability),
        verdict: o.verdict,
        dnat: o.dnat,
        snat: o.snat,
        masquerade: o.masquerade,
        mark: o.mark,
        rules: o.rules,
      })),
    });
    return;
  }
  print(outcomes.map((o, i) => human(o, i, outcomes.length)).join("\n"));
}

/** Probabilities come from products of stored/2³¹; 12 significant digits keeps 1/3 readable and sums exact enough. */
function round(p: number): number {
  return Number(p.toPrecision(12));
}

function human(o: TraceOutcome, i: number, n: number): string {
  const head =
    `outcome ${i + 1}/${n}: probability ${round(o.probability)}  verdict ${o.verdict}` +
    `  dnat ${o.dnat ?? "-"}  snat ${o.snat ?? "-"}  masquerade ${o.masquerade ? "yes" : "no"}  mark ${o.mark}`;
  return [head, ...o.trace.map((l) => "  " + l)].join("\n");
}
