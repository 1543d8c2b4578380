// What every plugin shares: the context it runs in (the model world, the host namespace the binary runs in, the
// on-node state it keeps between invocations) and the iproute2 steps each plugin takes, run through the kernel
// model's command parser so a plugin reads like the commands the real one performs through netlink.
import { createHash } from "node:crypto";
import { exec, macToString, type NetNamespace, type World } from "../../net/index.js";
import { NetError } from "../../net/error.js";
import type { LeaseStore } from "./host-local.js";
import { CniCode, CniError, netnsName, type CniArgs, type CniResult, type NetConf } from "./types.js";

/** State a plugin keeps on the node between invocations (files under /var/lib/cni, ipamd's datastore, ...). */
export interface PluginState {
  leases: LeaseStore;
  /** calico-ipam blocks and aws ipamd ENI datastore, by plugin. */
  calico?: import("./calico-ipam.js").CalicoIpamState;
  aws?: import("./aws-vpc.js").AwsIpamdState;
  /** iptables rules plugins asked for (bridge ipMasq), per host namespace: `-t nat -A CHAIN ...` lines. */
  iptables: Record<string, string[]>;
}

export function emptyPluginState(): PluginState {
  return { leases: { networks: {} }, iptables: {} };
}

export interface PluginContext {
  world: World;
  /** The namespace the plugin binary runs in: the node. */
  host: NetNamespace;
  state: PluginState;
}

export interface CniPlugin {
  add(ctx: PluginContext, args: CniArgs, conf: NetConf): CniResult;
  /** Must succeed when the container or its resources are already gone (SPEC.md: DEL is idempotent). */
  del(ctx: PluginContext, args: CniArgs, conf: NetConf): void;
  check(ctx: PluginContext, args: CniArgs, conf: NetConf): void;
}

/**
 * Every iproute2/sysctl command the plugins and the generation builders run, as (namespace, command): set `on`
 * to record a build (the kernel differential tests replay it against real namespaces). Setup only.
 */
export const commandLog: { on: ((ns: string, cmd: string) => void) | null } = { on: null };

/** Run iproute2 commands in `ns`; a refusal from the kernel model becomes a CNI error naming the command. */
export function run(ns: NetNamespace, ...cmds: string[]): void {
  for (const c of cmds) {
    commandLog.on?.(ns.name, c);
    try {
      exec(ns, c);
    } catch (e) {
      if (e instanceof NetError) throw new CniError(CniCode.INTERNAL, e.message, c, e.where);
      throw e;
    }
  }
}

/** The container's namespace (the runtime created it before calling ADD). */
export function sandbox(ctx: PluginContext, args: CniArgs): NetNamespace {
  const name = netnsName(args.netns);
  const found = ctx.world.namespaces.find((n) => n.name === name);
  if (found === undefined) throw new CniError(CniCode.INTERNAL, `failed to open netns "${args.netns}": no such file or directory`, "", "CNI_NETNS");
  return found;
}

/** The sandbox if it still exists (DEL after the runtime removed it). */
export function sandboxIfAny(ctx: PluginContext, args: CniArgs): NetNamespace | null {
  return ctx.world.namespaces.find((n) => n.name === netnsName(args.netns)) ?? null;
}

/**
 * Calico's and aws-vpc-cni's host veth name: prefix + the first 11 hex digits of sha1("namespace.podname")
 * (Calico VethNameForWorkload, aws-vpc-cni GenerateHostVethName), 15 characters = IFNAMSIZ-1. Without pod
 * arguments the container id stands in for the workload.
 */
export function workloadVethName(prefix: string, args: CniArgs): string {
  const ns = args.args.K8S_POD_NAMESPACE;
  const pod = args.args.K8S_POD_NAME;
  const id = ns !== undefined && pod !== undefined ? `${ns}.${pod}` : args.containerId;
  return prefix + createHash("sha1").update(id).digest("hex").slice(0, 11);
}

/** The bridge plugin's host veth name: `veth` + 8 hex digits. Upstream uses 4 random bytes; the model derives them from the container id and ifname so builds repeat. */
export function randomVethName(args: CniArgs): string {
  return "veth" + createHash("sha1").update(`${args.containerId}/${args.ifname}`).digest("hex").slice(0, 8);
}

/** ip link add HOST type veth peer name IFNAME netns SANDBOX; both ends up. Returns [host, container] MACs. */
export function vethPair(ctx: PluginContext, pod: NetNamespace, hostName: string, ifname: string): void {
  if (ctx.host.byName.has(hostName)) throw new CniError(CniCode.INTERNAL, `container veth name provided (${ifname}) already exists`, hostName, `${ctx.host.name}/${hostName}`);
  run(ctx.host, `ip link add ${hostName} type veth peer name ${ifname} netns ${pod.name}`);
  run(pod, "ip link set lo up", `ip link set ${ifname} up`);
  run(ctx.host, `ip link set ${hostName} up`);
}

export function macOf(ns: NetNamespace, dev: string): string {
  return macToString(ns.dev(dev).mac);
}

/** Remove the container's interface if the sandbox still exists (deleting one veth end removes its peer). */
export function delContainerLink(ctx: PluginContext, args: CniArgs): void {
  const pod = sandboxIfAny(ctx, args);
  if (pod !== null && pod.byName.has(args.ifname)) run(pod, `ip link del ${args.ifname}`);
}

/** The conf's ipam section, or a config error naming the field. */
export function needIpam(conf: NetConf): NonNullable<NetConf["ipam"]> {
  if (conf.ipam === undefined || typeof conf.ipam.type !== "string") throw new CniError(CniCode.INVALID_NETWORK_CONFIG, "IPAM config missing 'type' key", "", "stdin: ipam.type");
  return conf.ipam;
}
