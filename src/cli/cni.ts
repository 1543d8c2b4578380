// tcbox cni: a CNI plugin invocation exactly as kubelet's runtime makes one: CNI_COMMAND, CNI_CONTAINERID,
// CNI_NETNS, CNI_IFNAME, CNI_PATH (and CNI_ARGS) in the environment, the network configuration JSON on stdin, the
// result or the spec's error object on stdout, exit 0 or 1. The plugin is chosen by the config's `type`
// (bridge, calico, aws-cni). The kernel model persists between invocations in a state file (--state FILE or
// TCBOX_CNI_STATE; JSON journal of successful ADD/DEL, replayed on load) so consecutive runs see each other.
// Without a state file each run starts from an empty node. --show NS prints a namespace of the replayed model.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import type { Command } from "commander";
import { CliError, print, printJson } from "./output.js";
import { emptyStateFile, openSession, parseStateFile } from "../k8s/cni/state.js";
import { CniError } from "../k8s/cni/types.js";
import { nsView } from "../gens/topology.js";

interface Opts {
  state?: string;
  host: string;
  config?: string;
  show?: string;
  json?: boolean;
}

export function register(program: Command): void {
  program
    .command("cni")
    .description("run a CNI plugin as kubelet does: CNI_* environment + network config on stdin -> result JSON on stdout")
    .option("--state <file>", "model state kept between invocations (default: $TCBOX_CNI_STATE; none = a fresh node)")
    .option("--host <name>", "name of the node namespace the plugin runs in (a new state file only)", "node")
    .option("--config <file>", "read the network configuration from FILE instead of stdin")
    .option("--show <netns>", "print a namespace of the model (ip addr, ip route, ip neigh, bridge fdb) instead of invoking")
    .option("--json", "with --show: print JSON")
    .action((opts: Opts) => {
      const statePath = opts.state ?? process.env.TCBOX_CNI_STATE;
      let file = emptyStateFile(opts.host);
      if (statePath !== undefined && existsSync(statePath)) {
        try {
          file = parseStateFile(readFileSync(statePath, "utf8"), statePath);
        } catch (e) {
          if (e instanceof CniError) throw new CliError(e.message, statePath, 5);
          throw e;
        }
      }
      const session = (() => {
        try {
          return openSession(file);
        } catch (e) {
          if (e instanceof CniError) throw new CliError(e.message, statePath ?? "state", 5);
          throw e;
        }
      })();
      if (opts.show !== undefined) {
        const ns = session.ctx.world.namespaces.find((n) => n.name === opts.show);
        if (ns === undefined) throw new CliError(`no namespace "${opts.show}" (have: ${session.ctx.world.namespaces.map((n) => n.name).join(", ")})`, "--show");
        const v = nsView(ns);
        if (opts.json) printJson(v);
        else print(`# ip addr\n${v.ipAddr}# ip route\n${v.ipRoute}# ip neigh\n${v.ipNeigh}# bridge fdb\n${v.bridgeFdb}`);
        return;
      }
      const stdin = opts.config !== undefined ? readFileSync(opts.config, "utf8") : process.env.CNI_COMMAND === "VERSION" && process.stdin.isTTY ? "" : readFileSync(0, "utf8");
      const before = session.file.journal.length;
      const out = session.run(process.env, stdin);
      if (out.stdout !== "") process.stdout.write(out.stdout);
      if (statePath !== undefined && session.file.journal.length !== before) writeFileSync(statePath, JSON.stringify(session.file, null, 2) + "\n");
      if (out.exitCode !== 0) {
        // The plugin layer names the config "stdin"; with --config the file is where it came from.
        const where = out.error!.where.replace(/^stdin(?=$|:)/, opts.config ?? "stdin");
        throw new CliError(`CNI error ${out.error!.code}: ${out.error!.message}`, where || `CNI_COMMAND=${process.env.CNI_COMMAND ?? ""}`, 1);
      }
    });
}
