// The `calico` plugin's dataplane steps (projectcalico/calico cni-plugin, linux dataplane), Gen 2: a veth pair
// per pod with the host end named cali + 11 hex digits of sha1("namespace.pod") and MAC ee:ee:ee:ee:ee:ee
// (Calico gives every host-side veth that MAC), no bridge and no address on the host end; proxy_arp on it so
// the host answers the pod's ARP for the link-local gateway 169.254.1.1; in the pod a /32 address, a link route
// to 169.254.1.1 and the default route via it; on the host a /32 route to the pod through its cali veth.
// IPAM is calico-ipam (blocks per node), or host-local when configured so.
import { HostLocal } from "./host-local.js";
import { calicoAssign, calicoRelease, type CalicoIpamState } from "./calico-ipam.js";
import { delContainerLink, macOf, needIpam, run, sandbox, vethPair, workloadVethName, type CniPlugin, type PluginContext } from "./plugin.js";
import { CniCode, CniError, type CniArgs, type CniResult, type NetConf } from "./types.js";

/** The link-local next hop every Calico pod routes through (answered by proxy ARP on the host veth). */
export const CALICO_GATEWAY = "169.254.1.1";
/** Calico's fixed MAC for host-side workload veths. */
export const CALICO_HOST_MAC = "ee:ee:ee:ee:ee:ee";

interface CalicoConf extends NetConf {
  nodename?: string;
  mtu?: number;
}

function assign(ctx: PluginContext, args: CniArgs, conf: CalicoConf): string {
  const ipam = needIpam(conf);
  if (ipam.type === "host-local") {
    const r = new HostLocal(ctx.state.leases, conf.name, ipam).add(args.containerId, args.ifname, conf.runtimeConfig?.ips ?? []);
    return r.ips[0]!.address.split("/")[0]!;
  }
  if (ipam.type !== "calico-ipam") throw new CniError(CniCode.INVALID_NETWORK_CONFIG, `unsupported IPAM plugin type "${ipam.type}"`, "", "stdin: ipam.type");
  const state: CalicoIpamState = (ctx.state.calico ??= { blocks: [] });
  return calicoAssign(
    state,
    {
      pool: typeof ipam.pool === "string" ? ipam.pool : "192.168.0.0/16",
      blockSize: typeof ipam.blockSize === "number" ? ipam.blockSize : 26,
      node: conf.nodename ?? ctx.host.name,
      hint: typeof ipam.hint === "string" ? ipam.hint : undefined,
    },
    args.containerId,
  );
}

export const calicoPlugin: CniPlugin = {
  add(ctx, args, c): CniResult {
    const conf = c as CalicoConf;
    const pod = sandbox(ctx, args);
    const addr = assign(ctx, args, conf);
    const hostVeth = workloadVethName("cali", args);
    vethPair(ctx, pod, hostVeth, args.ifname);
    const host = ctx.host;
    run(host, `ip link set ${hostVeth} address ${CALICO_HOST_MAC}`, `sysctl -w net.ipv4.conf.${hostVeth}.proxy_arp=1`);
    if (conf.mtu !== undefined) run(host, `ip link set ${hostVeth} mtu ${conf.mtu}`), run(pod, `ip link set ${args.ifname} mtu ${conf.mtu}`);
    run(pod, `ip addr add ${addr}/32 dev ${args.ifname}`, `ip route add ${CALICO_GATEWAY} dev ${args.ifname} scope link`, `ip route add default via ${CALICO_GATEWAY} dev ${args.ifname}`);
    run(host, `ip route add ${addr} dev ${hostVeth} scope link`);
    return {
      cniVersion: conf.cniVersion,
      interfaces: [
        { name: hostVeth, mac: macOf(host, hostVeth) },
        { name: args.ifname, mac: macOf(pod, args.ifname), sandbox: args.netns },
      ],
      ips: [{ address: `${addr}/32`, interface: 1 }],
      routes: [{ dst: "0.0.0.0/0", gw: CALICO_GATEWAY }],
      dns: {},
    };
  },

  del(ctx, args, c) {
    const conf = c as CalicoConf;
    const ipam = needIpam(conf);
    if (ipam.type === "host-local") new HostLocal(ctx.state.leases, conf.name, ipam).del(args.containerId, args.ifname);
    else if (ctx.state.calico !== undefined) calicoRelease(ctx.state.calico, args.containerId);
    // Deleting the veth removes the host end and with it the /32 route through it.
    delContainerLink(ctx, args);
  },

  check(ctx, args) {
    const pod = sandbox(ctx, args);
    const hostVeth = workloadVethName("cali", args);
    if (!pod.byName.has(args.ifname) || !ctx.host.byName.has(hostVeth)) throw new CniError(CniCode.INTERNAL, `workload interface ${hostVeth} / ${args.ifname} missing`, "", ctx.host.name);
    if (!ctx.host.dev(hostVeth).proxyArp) throw new CniError(CniCode.INTERNAL, `proxy_arp is off on ${hostVeth}`, "", ctx.host.name);
  },
};
