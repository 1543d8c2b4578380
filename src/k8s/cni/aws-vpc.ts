// The `aws-cni` plugin with ipamd's datastore folded in (aws/amazon-vpc-cni-k8s), Gen 3: every pod gets a VPC
// address, a secondary private IPv4 of one of the node's ENIs. An instance type has a fixed number of ENIs and
// IPv4 addresses per ENI; the first address of each ENI is its primary and not given to pods, so a node has
// ENIs x (IPs - 1) pod addresses and kubelet's --max-pods is that + 2 (the host-network aws-node and kube-proxy
// pods): m5.large 3 x (10 - 1) + 2 = 29.
// Dataplane (driver.SetupPodNetwork): veth eni + 11 hex digits of sha1("namespace.pod") on the host, eth0 in the
// pod with IP/32, a link route to 169.254.1.1, the default route via it and a permanent ARP entry for
// 169.254.1.1 pointing at the host veth's MAC; on the host a /32 route to the pod through the veth.
// Simplified (documented): ENIs are not separate devices (eth1, eth2) and the per-ENI policy routing
// (`from POD lookup <eni table>`) is not installed: every pod's traffic leaves by the primary interface eth0. The
// VPC delivers to the node either way, since it routes each secondary IP to its instance.
// The model's stand-in for the EC2 metadata ipamd reads: the config's instanceType, nodeIP, subnet (and
// optionally the ENI address lists, which the generation builder computes for all nodes of a subnet at once).
import { formatIpv4, parseCidr, parseIpv4 } from "../../packet/addr.js";
import { delContainerLink, macOf, run, sandbox, vethPair, workloadVethName, type CniPlugin, type PluginContext } from "./plugin.js";
import { CniCode, CniError, type CniArgs, type CniResult, type NetConf } from "./types.js";

/** ENIs per instance and IPv4 addresses per ENI (EC2 "IP addresses per network interface per instance type"). */
export const ENI_LIMITS: Record<string, { enis: number; ipv4PerEni: number }> = {
  "t3.micro": { enis: 2, ipv4PerEni: 2 },
  "t3.small": { enis: 3, ipv4PerEni: 4 },
  "t3.medium": { enis: 3, ipv4PerEni: 6 },
  "t3.large": { enis: 3, ipv4PerEni: 12 },
  "m5.large": { enis: 3, ipv4PerEni: 10 },
  "m5.xlarge": { enis: 4, ipv4PerEni: 15 },
  "m5.2xlarge": { enis: 4, ipv4PerEni: 15 },
  "m5.4xlarge": { enis: 8, ipv4PerEni: 30 },
  "c5.large": { enis: 3, ipv4PerEni: 10 },
  "c5.xlarge": { enis: 4, ipv4PerEni: 15 },
  "r5.large": { enis: 3, ipv4PerEni: 10 },
};

/** eni-max-pods.txt's formula: ENIs x (IPv4 per ENI - 1) + 2. */
export function maxPods(instanceType: string): number {
  const l = limitsOf(instanceType, "instanceType");
  return l.enis * (l.ipv4PerEni - 1) + 2;
}

export function limitsOf(instanceType: string, where: string): { enis: number; ipv4PerEni: number } {
  const l = ENI_LIMITS[instanceType];
  if (l === undefined) throw new CniError(CniCode.INVALID_NETWORK_CONFIG, `instance type "${instanceType}" has no known ENI limits (known: ${Object.keys(ENI_LIMITS).join(", ")})`, "", where);
  return l;
}

export interface Eni {
  id: string;
  deviceNumber: number;
  primaryIP: string;
  secondaryIPs: string[];
}

export interface AwsIpamdState {
  /** node -> its ENIs and the pod address each container holds */
  nodes: Record<string, { instanceType: string; enis: Eni[]; assigned: Record<string, string> }>;
}

interface AwsConf extends NetConf {
  instanceType?: string;
  nodeIP?: string;
  subnet?: string;
  enis?: Eni[];
  vethPrefix?: string;
  mtu?: number | string;
}

/**
 * The ENIs of a node as EC2 would attach them: ENI 0's primary is the node IP; every other address comes from the
 * subnet in order, skipping the 4 addresses AWS reserves at the start (.0 network, .1 router, .2 DNS, .3 future),
 * the broadcast address and `exclude` (other nodes' addresses).
 */
export function planEnis(instanceType: string, nodeIP: string, subnet: string, exclude: Set<string>, idSeed = nodeIP, where = "subnet"): Eni[] {
  const l = limitsOf(instanceType, "instanceType");
  const c = parseCidr(subnet);
  const last = c.addr + 2 ** (32 - c.len) - 2;
  let cursor = c.addr + 4;
  const next = (): string => {
    while (cursor <= last) {
      const a = formatIpv4(cursor++);
      if (a !== nodeIP && !exclude.has(a)) {
        exclude.add(a);
        return a;
      }
    }
    throw new CniError(CniCode.INTERNAL, `subnet ${subnet} has no free addresses for another ENI`, "", where);
  };
  const enis: Eni[] = [];
  for (let d = 0; d < l.enis; d++) {
    const primaryIP = d === 0 ? nodeIP : next();
    const secondaryIPs: string[] = [];
    for (let k = 1; k < l.ipv4PerEni; k++) secondaryIPs.push(next());
    const hex = (parseIpv4(idSeed) * 7 + d * 104729).toString(16).padStart(8, "0");
    enis.push({ id: `eni-0${hex}${d.toString(16).padStart(8, "0")}`, deviceNumber: d, primaryIP, secondaryIPs });
  }
  return enis;
}

function nodeState(ctx: PluginContext, conf: AwsConf) {
  const st = (ctx.state.aws ??= { nodes: {} });
  const name = ctx.host.name;
  let n = st.nodes[name];
  if (n === undefined) {
    const instanceType = conf.instanceType ?? "m5.large";
    limitsOf(instanceType, "stdin: instanceType");
    let enis = conf.enis;
    if (enis === undefined) {
      if (conf.nodeIP === undefined || conf.subnet === undefined) throw new CniError(CniCode.INVALID_NETWORK_CONFIG, "aws-cni needs nodeIP and subnet (or enis) to know the node's ENIs", "", "stdin: nodeIP");
      enis = planEnis(instanceType, conf.nodeIP, conf.subnet, new Set(), conf.nodeIP, "stdin: subnet");
    }
    n = { instanceType, enis, assigned: {} };
    st.nodes[name] = n;
  }
  return n;
}

/** ipamd AssignPodIPv4Address: the container's address, or the first free secondary IP in ENI order. */
function assign(ctx: PluginContext, args: CniArgs, conf: AwsConf): { ip: string; eni: Eni } {
  const n = nodeState(ctx, conf);
  for (const eni of n.enis) {
    for (const ip of eni.secondaryIPs) if (n.assigned[ip] === args.containerId) return { ip, eni };
  }
  for (const eni of n.enis) {
    for (const ip of eni.secondaryIPs) {
      if (n.assigned[ip] === undefined) {
        n.assigned[ip] = args.containerId;
        return { ip, eni };
      }
    }
  }
  const l = limitsOf(n.instanceType, "instanceType");
  const inUse = Object.keys(n.assigned).length;
  throw new CniError(
    CniCode.INTERNAL,
    "add cmd: failed to assign an IP address to container",
    `AssignPodIPv4Address: no available IP/Prefix addresses (${n.instanceType}: ${l.enis} ENIs x ${l.ipv4PerEni} IPv4 addresses, ${inUse} pod addresses in use)`,
    ctx.host.name,
  );
}

export const AWS_GATEWAY = "169.254.1.1";

export const awsVpcPlugin: CniPlugin = {
  add(ctx, args, c): CniResult {
    const conf = c as AwsConf;
    const pod = sandbox(ctx, args);
    const { ip } = assign(ctx, args, conf);
    const hostVeth = workloadVethName(conf.vethPrefix ?? "eni", args);
    vethPair(ctx, pod, hostVeth, args.ifname);
    const host = ctx.host;
    if (conf.mtu !== undefined) run(host, `ip link set ${hostVeth} mtu ${conf.mtu}`), run(pod, `ip link set ${args.ifname} mtu ${conf.mtu}`);
    run(
      pod,
      `ip addr add ${ip}/32 dev ${args.ifname}`,
      `ip route add ${AWS_GATEWAY} dev ${args.ifname} scope link`,
      `ip route add default via ${AWS_GATEWAY} dev ${args.ifname}`,
      `ip neigh add ${AWS_GATEWAY} lladdr ${macOf(host, hostVeth)} dev ${args.ifname} nud permanent`,
    );
    run(host, `ip route add ${ip} dev ${hostVeth} scope link`);
    return {
      cniVersion: conf.cniVersion,
      interfaces: [
        { name: hostVeth, mac: macOf(host, hostVeth) },
        { name: args.ifname, mac: macOf(pod, args.ifname), sandbox: args.netns },
      ],
      ips: [{ address: `${ip}/32`, interface: 1 }],
      routes: [{ dst: "0.0.0.0/0", gw: AWS_GATEWAY }],
      dns: {},
    };
  },

  del(ctx, args) {
    const n = ctx.state.aws?.nodes[ctx.host.name];
    if (n !== undefined) for (const [ip, id] of Object.entries(n.assigned)) if (id === args.containerId) delete n.assigned[ip];
    delContainerLink(ctx, args);
  },

  check(ctx, args, c) {
    const conf = c as AwsConf;
    const n = nodeState(ctx, conf);
    if (!Object.values(n.assigned).includes(args.containerId)) throw new CniError(CniCode.INTERNAL, `no pod address assigned to container ${args.containerId}`, "", ctx.host.name);
    const pod = sandbox(ctx, args);
    if (!pod.byName.has(args.ifname)) throw new CniError(CniCode.INTERNAL, `failed to find interface ${args.ifname} in sandbox`, "", args.netns);
  },
};
