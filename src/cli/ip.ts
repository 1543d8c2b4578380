// tcbox ip --topology FILE [-n NS] (addr|link|route|rule|neigh|fdb) [--details] [--table ID] [--json]
// tcbox ip --topology FILE send --from NS --to IP [--proto udp|tcp|icmp] [--dport N] [--ttl N] [--json]
// Builds the kernel model from a topology script (src/net/script.ts: namespace-prefixed iproute2 commands) and
// prints a namespace as iproute2 would, or sends one packet and prints its path hop by hop (and the paths of the
// packets it caused: ARP, ICMP errors, replies).
import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { RT_TABLE_LOCAL, RT_TABLE_MAIN } from "../net/constants.js";
import { bridgeFdb, ipAddr, ipLink, ipNeigh, ipRoute, ipRule } from "../net/print.js";
import { summarize, type PacketSummary } from "../net/render.js";
import { sendIcmpEcho, sendTcp, sendUdp } from "../net/local.js";
import { loadTopology } from "../net/script.js";
import type { World } from "../net/world.js";
import { parseIpv4 } from "../packet/addr.js";
import { CliError, print, printJson } from "./output.js";

const SHOW = ["addr", "link", "route", "rule", "neigh", "fdb"] as const;

function load(file: string | undefined): World {
  if (file === undefined) throw new CliError("--topology FILE is required");
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new CliError(`cannot read: ${(e as Error).message}`, file);
  }
  return loadTopology(text, file).world;
}

function render(what: string, w: World, ns: string, opts: { details?: boolean; table?: string }): string {
  const n = w.ns(ns);
  switch (what) {
    case "addr":
      return ipAddr(n);
    case "link":
      return ipLink(n, { details: opts.details ?? false });
    case "route":
      return ipRoute(n, opts.table === "local" ? RT_TABLE_LOCAL : opts.table === undefined || opts.table === "main" ? RT_TABLE_MAIN : Number(opts.table));
    case "rule":
      return ipRule(n);
    case "neigh":
      return ipNeigh(n);
    default:
      return bridgeFdb(n);
  }
}

/** The packet and everything it caused, depth first. */
function collect(w: World, id: number, out: PacketSummary[] = [], seen = new Set<number>()): PacketSummary[] {
  if (seen.has(id)) return out;
  seen.add(id);
  const s = summarize(w, id);
  out.push(s);
  for (const d of s.derived) collect(w, d, out, seen);
  return out;
}

export function register(program: Command): void {
  const ip = program
    .command("ip")
    .description("build the kernel model from a topology script and inspect it like iproute2, or trace a packet")
    .option("-t, --topology <file>", "topology script: `netns add NS`, `wire SEG NS IF`, `NS ip|bridge|sysctl ...` lines")
    .option("-n, --netns <ns>", "namespace to show");
  for (const what of SHOW) {
    ip.command(what)
      .description(what === "fdb" ? "bridge fdb show" : `ip ${what} show`)
      .option("-d, --details", "details (link: vxlan/veth/bridge attributes)")
      .option("--table <id>", "routing table (route): main, local or a number")
      .option("--json", "print as JSON: {netns, lines}")
      .action((opts: { details?: boolean; table?: string; json?: boolean }) => {
        const g = ip.opts<{ topology?: string; netns?: string }>();
        const w = load(g.topology);
        const nsNames = g.netns !== undefined ? [g.netns] : w.namespaces.map((n) => n.name);
        const out = nsNames.map((ns) => ({ netns: ns, lines: render(what, w, ns, opts).split("\n").filter((l) => l !== "") }));
        if (opts.json) printJson(out);
        else for (const o of out) print(`# ${o.netns}\n${o.lines.join("\n")}`);
      });
  }
  ip.command("send")
    .description("send one packet from a namespace and print its path")
    .requiredOption("--from <ns>", "sending namespace")
    .requiredOption("--to <ip>", "destination address")
    .option("--proto <p>", "udp, tcp (a SYN) or icmp (echo request)", "icmp")
    .option("--dport <n>", "destination port (udp, tcp)", "80")
    .option("--ttl <n>", "IP TTL", "64")
    .option("--json", "print as JSON: [{id, deliveredIn, socket, dropped, hops}]")
    .action((opts: { from: string; to: string; proto: string; dport: string; ttl: string; json?: boolean }) => {
      const w = load(ip.opts<{ topology?: string }>().topology);
      const ns = w.ns(opts.from);
      const dst = parseIpv4(opts.to);
      const ttl = Number(opts.ttl);
      const dport = Number(opts.dport);
      let id: number;
      if (opts.proto === "udp") id = sendUdp(ns, { dst, sport: 40000, dport, ttl, payload: 16 });
      else if (opts.proto === "tcp") id = sendTcp(ns, { dst, sport: 40000, dport, ttl, flags: 0x02, seq: 1 });
      else if (opts.proto === "icmp") id = sendIcmpEcho(ns, { dst, ttl });
      else throw new CliError(`unknown protocol "${opts.proto}" (udp, tcp, icmp)`, "--proto");
      if (id < 0) throw new CliError(`sendto: Network is unreachable`, `${opts.from}`);
      w.run();
      const all = collect(w, id);
      if (opts.json) {
        printJson(all.map((s) => ({ id: s.id, deliveredIn: s.deliveredIn, socket: s.socket, dropped: s.dropped, hops: s.hops })));
        return;
      }
      for (const s of all) {
        print(`packet ${s.id}${s.dropped !== null ? ` (dropped: ${s.dropped})` : s.deliveredIn.length ? ` (delivered in ${s.deliveredIn.join(", ")})` : ""}`);
        for (const h of s.hops) print(`  ${h}`);
      }
    });
}
