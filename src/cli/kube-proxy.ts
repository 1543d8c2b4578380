// tcbox kube-proxy: the ruleset kube-proxy programs on one node, from manifests.
// Contract (issue 3): tcbox kube-proxy --manifests FILE --node-name NAME --node-ip IP[,IP...] --cluster-cidr CIDR
//                     [--mode iptables|ipvs|nftables]
// iptables mode prints `iptables-save` text that `iptables-restore` accepts; nftables mode prints the table as
// `nft list ruleset` shows it (--restore-payload: the transaction kube-proxy runs with `nft -f`); ipvs mode prints
// the IPVS table like `ipvsadm -Ln`, a blank line, the ipsets like `ipset save`, a blank line, and the iptables
// rules the IPVS proxier installs as `iptables-save` text (--restore-payload: its iptables-restore input).
import type { Command } from "commander";
import { CliError, print, printJson } from "./output.js";
import { loadClusterFile } from "../k8s/cluster.js";
import { loadDemoCluster } from "../k8s/demo-cluster.js";
import { generateIptables, restorePayload, type KubeProxyTables } from "../k8s/kube-proxy/iptables.js";
import { iptablesSave, jumpRules, saveRule } from "../k8s/kube-proxy/iptables-save.js";
import { generateNftables, nftTransaction } from "../k8s/kube-proxy/nftables.js";
import { nftListRuleset } from "../k8s/kube-proxy/nftables-list.js";
import { generateIpvs, type IpvsState } from "../k8s/kube-proxy/ipvs.js";
import { ipvsIptablesSave, ipvsRestorePayload } from "../k8s/kube-proxy/ipvs-rules.js";
import { ipvsadmList } from "../netfilter/ipvs-format.js";
import { AddrError, formatIpv4, parseCidr, parseIpv4 } from "../packet/addr.js";

interface Opts {
  manifests?: string;
  nodeName: string;
  nodeIp: string;
  clusterCidr: string;
  mode: string;
  seed: string;
  restorePayload?: boolean;
  nfacct?: boolean;
  json?: boolean;
}

function checkFlag<T>(flag: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof AddrError) throw new CliError(e.message, flag);
    throw e;
  }
}

function tablesJson(t: KubeProxyTables) {
  const table = (chains: string[], rules: { chain: string; args: string }[], name: "filter" | "nat") => ({
    chains,
    jumps: jumpRules(name).map(saveRule),
    rules: rules.map(saveRule),
  });
  return { filter: table(t.filterChains, t.filterRules, "filter"), nat: table(t.natChains, t.natRules, "nat") };
}

/** --mode ipvs --json: virtual servers (ipvsadm's fields), kube-ipvs0 addresses, ipsets and the iptables-save text. */
function ipvsJson(node: string, st: IpvsState) {
  const proto = (p: number) => (p === 6 ? "TCP" : p === 17 ? "UDP" : "SCTP");
  return {
    mode: "ipvs",
    node,
    stats: st.stats,
    kubeIpvs0: st.kubeIpvs0,
    virtualServers: st.ipvs.services.map((s) => ({
      protocol: proto(s.proto),
      address: formatIpv4(s.addr),
      port: s.port,
      scheduler: s.scheduler,
      persistentTimeout: s.persistent ? s.timeout : null,
      realServers: s.dests.map((d) => ({ address: formatIpv4(d.addr), port: d.port, weight: d.weight, forward: "Masq" })),
    })),
    ipsets: Object.fromEntries([...st.ipsets.sets.values()].map((x) => [x.name, { type: x.type, members: x.save().slice(1).map((l) => l.split(" ")[2]) }])),
    iptables: ipvsIptablesSave(st),
  };
}

export function register(program: Command): void {
  program
    .command("kube-proxy")
    .description("print the ruleset kube-proxy programs on one node (iptables: iptables-save text; nftables: nft list ruleset; ipvs: ipvsadm -Ln, ipset save, iptables-save)")
    .option("--manifests <file>", "Kubernetes manifests (multi-document YAML); default: the built-in demo cluster")
    .requiredOption("--node-name <name>", "the node kube-proxy runs on (a Node in the manifests)")
    .requiredOption("--node-ip <ip[,ip...]>", "the node's IPs (the first is the primary node IP)")
    .requiredOption("--cluster-cidr <cidr>", "pod network CIDR: sources outside it are masqueraded to ClusterIPs")
    .option("--mode <mode>", "proxy mode: iptables, ipvs or nftables", "iptables")
    .option("--seed <n>", "seed for allocations (ClusterIPs, node ports, generated names)", "1")
    .option("--restore-payload", "print kube-proxy's own input (iptables-restore text, or the nft -f transaction) instead of the saved/listed ruleset")
    .option("--nfacct", "the nfacct counters exist on the node (adds kube-proxy's -m nfacct rules)")
    .option("--json", "print the tables as JSON")
    .action((opts: Opts) => {
      if (!["iptables", "ipvs", "nftables"].includes(opts.mode)) {
        throw new CliError(`unknown mode "${opts.mode}" (iptables, ipvs or nftables)`, "--mode");
      }
      const nodeIPs = opts.nodeIp.split(",").map((s) => s.trim());
      for (const ip of nodeIPs) checkFlag("--node-ip", () => parseIpv4(ip));
      checkFlag("--cluster-cidr", () => {
        if (!opts.clusterCidr.includes("/")) throw new AddrError(`invalid CIDR "${opts.clusterCidr}" (expected ADDRESS/PREFIX)`);
        return parseCidr(opts.clusterCidr);
      });
      const seed = Number(opts.seed);
      if (!Number.isInteger(seed) || seed < 0) throw new CliError(`invalid seed "${opts.seed}"`, "--seed");
      const cluster = opts.manifests ? loadClusterFile(opts.manifests, { seed }) : loadDemoCluster({ seed });
      if (!cluster.nodes.some((n) => n.metadata.name === opts.nodeName)) {
        const names = cluster.nodes.map((n) => n.metadata.name).join(", ") || "none";
        throw new CliError(`node "${opts.nodeName}" not found in ${opts.manifests ?? "the demo cluster"} (nodes: ${names})`, "--node-name");
      }
      if (opts.mode === "ipvs") {
        const state = generateIpvs(cluster, { nodeName: opts.nodeName, nodeIPs, clusterCIDR: opts.clusterCidr });
        if (opts.json) printJson(ipvsJson(opts.nodeName, state));
        else if (opts.restorePayload) print(ipvsRestorePayload(state));
        else print(`${ipvsadmList(state.ipvs)}\n${state.ipsets.save()}\n${ipvsIptablesSave(state, `# Generated by tcbox kube-proxy (ipvs mode) for node ${opts.nodeName}`)}`);
        return;
      }
      if (opts.mode === "nftables") {
        const table = generateNftables(cluster, { nodeName: opts.nodeName, nodeIPs, clusterCIDR: opts.clusterCidr });
        if (opts.json) printJson({ mode: "nftables", node: opts.nodeName, table });
        else if (opts.restorePayload) print(nftTransaction(table));
        else print(nftListRuleset(table));
        return;
      }
      const tables = generateIptables(cluster, { nodeName: opts.nodeName, nodeIPs, clusterCIDR: opts.clusterCidr, nfacct: opts.nfacct ?? false });
      if (opts.json) printJson({ mode: "iptables", node: opts.nodeName, stats: tables.stats, tables: tablesJson(tables) });
      else if (opts.restorePayload) print(restorePayload(tables));
      else print(iptablesSave(tables, `# Generated by tcbox kube-proxy (iptables mode) for node ${opts.nodeName}`));
    });
}
