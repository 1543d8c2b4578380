// The `bridge` plugin (containernetworking/plugins plugins/main/bridge), as Flannel delegates to it (Gen 1):
// ensure the bridge (default cni0) is up; with isGateway give it the IPAM gateway address and turn on
// ip_forward; create a veth pair, plug the host end into the bridge (hairpin on with hairpinMode, as kubelet
// asks so a pod reaches itself through its Service), put the other end in the sandbox as IFNAME with the IPAM
// address and routes (default via the gateway with isDefaultGateway); with ipMasq add the per-container
// CNI-<hash> masquerade chain. IPAM is host-local.
import { createHash } from "node:crypto";
import { parseCidr, parseIpv4, formatCidr } from "../../packet/addr.js";
import { HostLocal } from "./host-local.js";
import { delContainerLink, macOf, needIpam, randomVethName, run, sandbox, vethPair, type CniPlugin, type PluginContext } from "./plugin.js";
import { CniCode, CniError, type CniArgs, type CniResult, type NetConf } from "./types.js";

interface BridgeConf extends NetConf {
  bridge?: string;
  isGateway?: boolean;
  isDefaultGateway?: boolean;
  ipMasq?: boolean;
  hairpinMode?: boolean;
  mtu?: number;
}

function ipam(ctx: PluginContext, conf: NetConf): HostLocal {
  const cfg = needIpam(conf);
  if (cfg.type !== "host-local") throw new CniError(CniCode.INVALID_NETWORK_CONFIG, `unsupported IPAM plugin type "${cfg.type}" (the model has host-local)`, "", "stdin: ipam.type");
  return new HostLocal(ctx.state.leases, conf.name, cfg);
}

/** utils.FormatChainName: "CNI-" + the first 24 hex digits of sha512(network name + container id). */
export function cniChainName(network: string, containerId: string): string {
  return "CNI-" + createHash("sha512").update(network + containerId).digest("hex").slice(0, 24);
}

export const bridgePlugin: CniPlugin = {
  add(ctx: PluginContext, args: CniArgs, c: NetConf): CniResult {
    const conf = c as BridgeConf;
    const brName = conf.bridge ?? "cni0";
    const isGateway = conf.isGateway === true || conf.isDefaultGateway === true;
    const pod = sandbox(ctx, args);
    const ip = ipam(ctx, conf).add(args.containerId, args.ifname, conf.runtimeConfig?.ips ?? []);
    const { ips, routes } = ip;
    const host = ctx.host;
    // setupBridge: create if missing, bring up.
    if (!host.byName.has(brName)) run(host, `ip link add ${brName} type bridge`);
    run(host, `ip link set ${brName} up`);
    if (conf.mtu !== undefined) run(host, `ip link set ${brName} mtu ${conf.mtu}`);
    const hostVeth = randomVethName(args);
    vethPair(ctx, pod, hostVeth, args.ifname);
    if (conf.mtu !== undefined) {
      run(host, `ip link set ${hostVeth} mtu ${conf.mtu}`);
      run(pod, `ip link set ${args.ifname} mtu ${conf.mtu}`);
    }
    run(host, `ip link set ${hostVeth} master ${brName}`, `ip link set ${hostVeth} up`);
    if (conf.hairpinMode === true) run(host, `ip link set ${hostVeth} type bridge_slave hairpin on`);
    for (const a of ips) run(pod, `ip addr add ${a.address} dev ${args.ifname}`);
    const resRoutes = routes.map((r) => ({ ...r }));
    for (const a of ips) {
      const gw = a.gateway!;
      if (conf.isDefaultGateway === true) {
        resRoutes.push({ dst: "0.0.0.0/0", gw });
      }
      if (isGateway) {
        // ensureAddr: the gateway address on the bridge with the subnet's prefix, once.
        const len = parseCidr(a.address).len;
        if (!host.addrs.some((x) => x.dev.name === brName && x.addr === parseIpv4(gw))) run(host, `ip addr add ${gw}/${len} brd + dev ${brName}`);
        run(host, "sysctl -w net.ipv4.ip_forward=1");
      }
    }
    for (const r of resRoutes) {
      const gw = r.gw ?? ips[0]!.gateway!;
      run(pod, `ip route add ${r.dst === "0.0.0.0/0" ? "default" : r.dst} via ${gw} dev ${args.ifname}`);
    }
    if (conf.ipMasq === true) {
      const chain = cniChainName(conf.name, args.containerId);
      const comment = `"name: \\"${conf.name}\\" id: \\"${args.containerId}\\""`;
      const rules = (ctx.state.iptables[host.name] ??= []);
      for (const a of ips) {
        const cidr = parseCidr(a.address);
        rules.push(`-t nat -N ${chain}`);
        rules.push(`-t nat -A ${chain} -d ${formatCidr({ addr: cidr.addr, len: cidr.len })} -m comment --comment ${comment} -j ACCEPT`);
        rules.push(`-t nat -A ${chain} ! -d 224.0.0.0/4 -m comment --comment ${comment} -j MASQUERADE`);
        rules.push(`-t nat -A POSTROUTING -s ${a.address.split("/")[0]}/32 -m comment --comment ${comment} -j ${chain}`);
      }
    }
    return {
      cniVersion: conf.cniVersion,
      interfaces: [
        { name: brName, mac: macOf(host, brName) },
        { name: hostVeth, mac: macOf(host, hostVeth) },
        { name: args.ifname, mac: macOf(pod, args.ifname), sandbox: args.netns },
      ],
      ips: ips.map((a) => ({ ...a, interface: 2 })),
      routes: resRoutes,
      dns: (conf.dns as CniResult["dns"]) ?? {},
    };
  },

  del(ctx, args, c) {
    const conf = c as BridgeConf;
    ipam(ctx, conf).del(args.containerId, args.ifname);
    delContainerLink(ctx, args);
    if (conf.ipMasq === true) {
      const chain = cniChainName(conf.name, args.containerId);
      const rules = ctx.state.iptables[ctx.host.name];
      if (rules !== undefined) ctx.state.iptables[ctx.host.name] = rules.filter((r) => !r.includes(chain));
    }
  },

  check(ctx, args, c) {
    const conf = c as BridgeConf;
    const held = ipam(ctx, conf).check(args.containerId, args.ifname);
    const pod = sandbox(ctx, args);
    if (!pod.byName.has(args.ifname)) throw new CniError(CniCode.INTERNAL, `failed to find interface ${args.ifname} in sandbox`, "", args.netns);
    const dev = pod.dev(args.ifname);
    for (const a of held) {
      if (!pod.addrsOf(dev).some((x) => x.addr === parseIpv4(a))) throw new CniError(CniCode.INTERNAL, `${args.ifname}: address ${a} not configured`, "", args.netns);
    }
    const peer = (dev as unknown as { peer?: { master: { name: string } | null } }).peer;
    if (peer?.master?.name !== (conf.bridge ?? "cni0")) throw new CniError(CniCode.INTERNAL, `host veth of ${args.ifname} is not a port of ${conf.bridge ?? "cni0"}`, "", ctx.host.name);
  },
};
