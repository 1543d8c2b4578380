// tcbox topology: one generation's dataplane built from a cluster, printed per node as `ip addr`, `ip route`,
// `bridge fdb`, `ip neigh` would print it, with the routes each node learned (flanneld, BIRD), its pods and the
// events of pods that could not start.
//   tcbox topology [--cluster FILE] --gen 1|2|3|4 [--node NAME] [--seed N] [--vxlan-port P] [--tunnel disabled|vxlan] [--json]
import type { Command } from "commander";
import { CliError, print, printJson } from "./output.js";
import { loadClusterFile } from "../k8s/cluster.js";
import { loadDemoCluster } from "../k8s/demo-cluster.js";
import { BUILDERS, buildGeneration, generationText, nodeView, nsView, type BuiltGeneration, type GenNumber } from "../gens/index.js";
import { buildGen4, GEN4_TUNNELS, prepareGen4Programs, type Gen4Tunnel } from "../gens/gen4.js";

interface Opts {
  cluster?: string;
  gen: string;
  node?: string;
  seed: string;
  vxlanPort?: string;
  tunnel?: string;
  json?: boolean;
}

export function register(program: Command): void {
  program
    .command("topology")
    .description("build one generation's dataplane and print each node's interfaces, routes, FDB, neighbours and learned routes")
    .option("--cluster <file>", "Kubernetes manifests (multi-document YAML); default: the built-in demo cluster")
    .requiredOption("--gen <n>", `generation (${[...Object.keys(BUILDERS), "4"].join(", ")})`)
    .option("--node <name>", "only this node")
    .option("--seed <n>", "seed (allocations, MACs, sandbox ids)", "1")
    .option("--vxlan-port <port>", "Gen 1: VXLAN UDP port (default 4789; Flannel's own default is 8472)")
    .option("--tunnel <mode>", `Gen 4: ${GEN4_TUNNELS.join(" | ")} (default disabled: native routing; vxlan: cilium_vxlan overlay, UDP 8472)`)
    .option("--json", "print JSON")
    .action(async (opts: Opts) => {
      const gen = Number(opts.gen) as GenNumber;
      if (gen !== 4 && BUILDERS[gen] === undefined) throw new CliError(`generation "${opts.gen}" has no builder (have ${[...Object.keys(BUILDERS), "4"].join(", ")})`, "--gen");
      if (opts.tunnel !== undefined && gen !== 4) throw new CliError("--tunnel applies to Gen 4 only", "--tunnel");
      if (opts.tunnel !== undefined && !(GEN4_TUNNELS as readonly string[]).includes(opts.tunnel)) {
        throw new CliError(`invalid tunnel mode "${opts.tunnel}" (have ${GEN4_TUNNELS.join(", ")})`, "--tunnel");
      }
      const seed = Number(opts.seed);
      if (!Number.isInteger(seed) || seed < 0) throw new CliError(`invalid seed "${opts.seed}"`, "--seed");
      const port = opts.vxlanPort === undefined ? undefined : Number(opts.vxlanPort);
      if (port !== undefined && !(Number.isInteger(port) && port > 0 && port < 65536)) throw new CliError(`invalid port "${opts.vxlanPort}"`, "--vxlan-port");
      const cluster = opts.cluster ? loadClusterFile(opts.cluster, { seed }) : loadDemoCluster({ seed });
      let g: BuiltGeneration;
      if (gen === 4) {
        await prepareGen4Programs();
        g = buildGen4(cluster, { seed, tunnel: opts.tunnel as Gen4Tunnel | undefined });
      } else g = buildGeneration(gen, cluster, { seed, vxlanPort: port });
      if (opts.node !== undefined && !g.nodes.some((n) => n.name === opts.node)) {
        throw new CliError(`node "${opts.node}" not found (nodes: ${g.nodes.map((n) => n.name).join(", ")})`, "--node");
      }
      const names = opts.node !== undefined ? [opts.node] : g.nodes.map((n) => n.name);
      if (opts.json) {
        printJson({
          gen: g.gen,
          title: g.title,
          encapsulation: g.encapsulation,
          nodes: names.map((n) => nodeView(g, n)),
          router: nsView(g.router),
          external: { ...nsView(g.external.ns), hosts: g.external.hosts },
          events: g.events,
        });
      } else print(generationText(g, opts.node));
    });
}
