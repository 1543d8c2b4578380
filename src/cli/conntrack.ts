// tcbox conntrack: feed a capture's packets through a conntrack table (one forwarding box: PREROUTING with optional
// DNAT, POSTROUTING with optional SNAT) and print the table as `conntrack -L` does, the `-S` counters, or JSON.
//   tcbox conntrack --pcap FILE [--dnat [PROTO/]VIP:PORT=IP[:PORT]]... [--snat CIDR=IP[-IP][:PORT[-PORT]]]...
//                   [--random-fully] [--max N] [--buckets N] [--no-loose] [--at SECONDS] [--extended] [--stats] [--json]
//   tcbox conntrack --pcap FILE --rules IPTABLES-SAVE [--local-ip IP,...] [--iif IF] [--oif IF] [...]
//     NAT and filtering from the ruleset (NetfilterPath); local sources take OUTPUT, local destinations INPUT.
// JSON (with --rules the replay summary is {frames,ipv4,accepted,dropped}):
// {"entries":[{"proto","protonum","timeout","state","original":{src,dst,sport,dport|type,code,id,packets,bytes},
//        "reply":{...},"status":[...],"mark","use"}],"count","max","stats":{found,invalid,...},"replay":{frames,ipv4,invalid,dropped}}
import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { CliError, print, printJson, warn } from "./output.js";
import { AddrError, parseCidr, parseIpv4 } from "../packet/addr.js";
import { readCapture } from "../packet/pcapng.js";
import { Conntrack } from "../netfilter/conntrack.js";
import { formatList, formatStats, formatSummary, tableJson } from "../netfilter/conntrack-format.js";
import { ConntrackReplay, type DnatRule, type SnatRule } from "../netfilter/conntrack-replay.js";
import { parseNatRange } from "../netfilter/nat.js";
import { ConntrackRulesReplay } from "../netfilter/conntrack-rules-replay.js";
import { parseIptablesRestore } from "../netfilter/restore.js";

interface Opts {
  pcap?: string;
  dnat: string[];
  snat: string[];
  randomFully?: boolean;
  max?: string;
  buckets?: string;
  loose: boolean;
  at?: string;
  extended?: boolean;
  stats?: boolean;
  json?: boolean;
  rules?: string;
  localIp?: string;
  iif?: string;
  oif?: string;
}

const collect = (v: string, prev: string[]) => [...prev, v];

function flag<T>(where: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof AddrError || e instanceof Error) throw new CliError((e as Error).message, where);
    throw e;
  }
}

function parseDnat(spec: string, randomFully: boolean): DnatRule {
  return flag(`--dnat ${spec}`, () => {
    const m = /^(?:(tcp|udp|icmp)\/)?(\d+\.\d+\.\d+\.\d+)(?::(\d+))?=(.+)$/.exec(spec);
    if (!m) throw new Error("expected [PROTO/]IP[:PORT]=IP[:PORT]");
    const proto = m[1] === "tcp" ? 6 : m[1] === "udp" ? 17 : m[1] === "icmp" ? 1 : 0;
    return { proto, dst: parseIpv4(m[2]!), dport: m[3] ? Number(m[3]) : 0, to: parseNatRange(m[4]!, { randomFully }) };
  });
}

function parseSnat(spec: string, randomFully: boolean): SnatRule {
  return flag(`--snat ${spec}`, () => {
    const eq = spec.indexOf("=");
    if (eq < 0) throw new Error("expected CIDR=IP[-IP][:PORT[-PORT]]");
    return { from: parseCidr(spec.slice(0, eq)), to: parseNatRange(spec.slice(eq + 1), { randomFully }) };
  });
}

function positiveInt(where: string, v: string | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new CliError(`expected a positive integer, got "${v}"`, where);
  return n;
}

function rulesReplay(ct: Conntrack, o: Opts): ConntrackRulesReplay {
  if (o.dnat.length > 0 || o.snat.length > 0) throw new CliError("--dnat/--snat cannot be combined with --rules", "--rules");
  let text: string;
  try {
    text = readFileSync(o.rules!, "utf8");
  } catch (e) {
    throw new CliError(`cannot read: ${(e as Error).message}`, o.rules);
  }
  const rs = parseIptablesRestore(text, { file: o.rules! });
  const localIps = (o.localIp ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "")
    .map((s) => flag("--local-ip", () => parseIpv4(s)));
  return new ConntrackRulesReplay(ct, rs, { localIps, iif: o.iif, oif: o.oif });
}

export function register(program: Command): void {
  program
    .command("conntrack")
    .description("replay a capture through a conntrack table and list it like `conntrack -L` (or -S, or JSON)")
    .requiredOption("--pcap <file>", "pcap or pcapng capture (Ethernet) to feed through conntrack")
    .option("--dnat <spec>", "DNAT new connections: [tcp|udp|icmp/]VIP[:PORT]=IP[-IP][:PORT[-PORT]] (repeatable)", collect, [])
    .option("--snat <spec>", "SNAT new connections from CIDR: CIDR=IP[-IP][:PORT[-PORT]] (repeatable)", collect, [])
    .option("--random-fully", "NAT ports chosen at random (--random-fully)")
    .option("--rules <file>", "iptables-save ruleset to walk instead of --dnat/--snat (e.g. tcbox kube-proxy output)")
    .option("--local-ip <ips>", "with --rules: this box's addresses, comma-separated (127.0.0.1 is always local)")
    .option("--iif <name>", "with --rules: input device of received packets (default eth0)")
    .option("--oif <name>", "with --rules: output device of forwarded packets (default eth0)")
    .option("--max <n>", "nf_conntrack_max (default 262144)")
    .option("--buckets <n>", "nf_conntrack_buckets")
    .option("--no-loose", "nf_conntrack_tcp_loose=0: do not pick up TCP connections mid-stream")
    .option("--at <seconds>", "list the table this many seconds after the last packet (default 0)")
    .option("--extended", "print like `conntrack -L -o extended`")
    .option("--stats", "print the `conntrack -S` counters instead of the table")
    .option("--json", "print the table, counters and replay summary as JSON")
    .action((o: Opts) => {
      const file = o.pcap!;
      let bytes: Uint8Array;
      try {
        bytes = readFileSync(file);
      } catch (e) {
        throw new CliError(`cannot read: ${(e as Error).message}`, file);
      }
      const rf = !!o.randomFully;
      const max = positiveInt("--max", o.max, 262144);
      const ct = new Conntrack({ max, buckets: positiveInt("--buckets", o.buckets, Math.min(262144, Math.max(16, max))), tcpLoose: o.loose });
      const replay = o.rules ? rulesReplay(ct, o) : new ConntrackReplay(ct, o.dnat.map((s) => parseDnat(s, rf)), o.snat.map((s) => parseSnat(s, rf)));
      const cap = readCapture(bytes, file);
      let last = 0;
      for (const r of cap.records) {
        last = Number(r.tsNs) / 1e9;
        // A copy: NAT rewrites packets in place and the capture stays as read.
        replay.frame(new Uint8Array(r.data), last);
      }
      if (replay instanceof ConntrackRulesReplay) replay.finish();
      const at = o.at === undefined ? 0 : Number(o.at);
      if (!Number.isFinite(at) || at < 0) throw new CliError(`expected seconds >= 0, got "${o.at}"`, "--at");
      ct.setTime(replay.elapsed(last) + at);
      ct.gc();
      if (o.json) printJson({ ...tableJson(ct), replay: replay.stats });
      else if (o.stats) print(formatStats(ct));
      else {
        const text = formatList(ct, { extended: !!o.extended });
        if (text) print(text);
        warn(formatSummary(ct));
      }
    });
}
