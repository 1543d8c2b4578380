// tcbox run --program FILE(.ts|.wasm) --pcap IN [--out OUT.pcapng] [--maps SEED.json] [--entry NAME] [--budget N] [--json]
// Runs the program at tc ingress over every packet of the capture (in batches), prints each packet's verdict
// and the counters (per verdict, traps by reason, drop reasons the program gave), and writes the packets that
// passed or were redirected, as the program left them, to OUT.pcapng (each with its verdict as a comment).
import { readFileSync, writeFileSync } from "node:fs";
import type { Command } from "commander";
import { formatFrame } from "../packet/format.js";
import { PcapngWriter, readCapture } from "../packet/pcapng.js";
import { runCapture } from "../ebpf/runner.js";
import { MAX_BUDGET } from "../ebpf/instrument.js";
import { loadWithSeed } from "./map.js";
import { CliError, print, printJson } from "./output.js";

interface RunOpts {
  program: string;
  pcap: string;
  out?: string;
  maps?: string;
  entry?: string;
  budget?: string;
  json?: boolean;
}

export function register(program: Command): void {
  program
    .command("run")
    .description("run a tc program at ingress over a capture; print verdicts, write the surviving packets")
    .requiredOption("--program <file>", "program (.ts or a .wasm from tcbox build)")
    .requiredOption("--pcap <file>", "input capture (pcap or pcapng)")
    .option("--out <file>", "write passed and redirected packets to this pcapng")
    .option("--maps <file>", "seed the program's maps from this JSON file")
    .option("--entry <name>", "entry point (default: the first exported one)")
    .option("--budget <n>", "instruction budget per packet (units: loop iterations and calls)")
    .option("--json", "print the verdicts and counters as JSON")
    .action(async (opts: RunOpts) => {
      let bytes: Uint8Array;
      try {
        bytes = readFileSync(opts.pcap);
      } catch (e) {
        throw new CliError(`cannot read: ${(e as Error).message}`, opts.pcap);
      }
      const cap = readCapture(bytes, opts.pcap);
      const { kernel, obj } = await loadWithSeed(opts.program, opts.maps);
      if (opts.budget !== undefined) {
        const b = Number(opts.budget);
        if (!Number.isInteger(b) || b <= 0 || b > MAX_BUDGET) throw new CliError(`--budget must be an integer 1..${MAX_BUDGET}`, opts.program);
        kernel.budget = b;
      }
      const prog = obj.program(opts.entry);
      const summary = runCapture(kernel, prog, cap.records);
      if (opts.out) {
        const w = new PcapngWriter();
        w.addInterface({ name: "tc-ingress", description: `${obj.name}:${prog.name}` });
        for (const p of summary.packets) {
          if (!p.data) continue;
          const rec = cap.records[p.index - 1]!;
          const note = p.redirect ? `${p.verdict} ifindex ${p.redirect.ifindex}${p.redirect.ingress ? " ingress" : ""}${p.redirect.peer ? " peer" : ""}` : p.verdict;
          w.writePacket({ ifIndex: 0, tsNs: rec.tsNs, data: p.data, comment: `frame ${p.index}: ${note}` });
        }
        writeFileSync(opts.out, w.finish());
      }
      if (opts.json) {
        printJson({
          program: obj.name,
          entry: prog.name,
          packets: summary.packets.map(({ data, ...p }) => ({ ...p, len: data?.length ?? cap.records[p.index - 1]!.data.length })),
          counters: { retvals: summary.retvals, traps: summary.traps, dropReasons: summary.dropReasons },
          written: opts.out ? summary.kept : 0,
        });
        return;
      }
      const lines: string[] = [];
      for (const p of summary.packets) {
        const rec = cap.records[p.index - 1]!;
        let v = p.verdict;
        if (p.trap) v += ` (${p.trap})`;
        if (p.dropReason !== undefined) v += ` (reason ${p.dropReason})`;
        if (p.redirect) v += ` -> ifindex ${p.redirect.ifindex}${p.redirect.ingress ? " ingress" : ""}${p.redirect.peer ? " peer" : ""}`;
        if (p.changed) v += " [rewritten]";
        lines.push(`${String(p.index).padStart(4)}  ${v.padEnd(24)}  ${formatFrame(p.data ?? rec.data)}`);
      }
      const counts = Object.entries(summary.retvals).map(([k, n]) => `${k} ${n}`).join(", ") || "none";
      const traps = Object.entries(summary.traps).map(([k, n]) => `${k} ${n}`).join(", ");
      const reasons = Object.entries(summary.dropReasons).filter(([r]) => r !== "0").map(([r, n]) => `reason ${r}: ${n}`).join(", ");
      lines.push(`verdicts: ${counts}`);
      lines.push(`stopped: ${traps}${reasons ? `; drops by reason: ${reasons}` : ""}`);
      if (opts.out) lines.push(`wrote ${summary.kept} of ${summary.packets.length} packets to ${opts.out}`);
      print(lines.join("\n"));
    });
}
