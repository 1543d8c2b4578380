// A Gen 1 node from the generation builder, checked against the same node built in real namespaces (and the same
// for Gen 2 and Gen 3 nodes: /32 routes with BGP-learned and blackhole routes; VPC addresses with static ARP).
// The builder's own iproute2/sysctl commands (recorded through commandLog: flanneld's flannel.1, routes, ARP and
// FDB entries; the bridge plugin's cni0, veths, addresses, pod routes) are replayed with `ip netns exec` for two
// nodes on one subnet (their eth0s joined by a veth pair instead of the model's switch) and their pods, with each
// device given the MAC the model gave it. Then on node a the kernel's `ip route`, `bridge fdb` and the flannel.1
// neighbours must equal the model's printers (MACs labelled by owning device; kernel-only multicast/VLAN FDB lines
// dropped), and pings pod -> pod on the node, pod -> gateway/node and pod -> pod across nodes (VXLAN in Gen 1)
// must succeed in both.
// Skips when not root or when `ip netns add` fails; deletes every namespace it made.
import { execFileSync, spawnSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadCluster } from "../../src/k8s/cluster.js";
import { commandLog } from "../../src/k8s/cni/plugin.js";
import { buildGeneration, nodeOf, nodeView, type BuiltGeneration } from "../../src/gens/index.js";
import { ipNeigh, macToString, sendIcmpEcho, summarize } from "../../src/net/index.js";
import { parseIpv4 } from "../../src/packet/addr.js";
import { normFdb, normNeigh } from "./net-topology.js";

const PID = `tcbx${process.pid}g`;
const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
const made: string[] = [];
let skipReason = "";

const YAML = ["a:192.168.77.10", "b:192.168.77.11"]
  .map((s) => {
    const [n, ip] = s.split(":");
    return `apiVersion: v1\nkind: Node\nmetadata: {name: ${n}}\nstatus: {addresses: [{type: InternalIP, address: ${ip}}]}\n`;
  })
  .concat(
    [
      ["p1", "a"],
      ["p2", "a"],
      ["p3", "b"],
    ].map(([p, n]) => `apiVersion: v1\nkind: Pod\nmetadata: {name: ${p}, namespace: default}\nspec:\n  nodeName: ${n}\n  containers: [{name: c, image: c}]\n`),
  )
  .join("---\n");

/** One ICMP echo through a raw socket (no ping binary on the machine); exit 0 when the reply comes back. */
const PING = `
import socket, struct, sys, time
def csum(b):
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xffff); s += s >> 16
    return ~s & 0xffff
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
s.settimeout(2)
hdr = struct.pack("!BBHHH", 8, 0, 0, 0x7463, 1) + b"tcbox-gen1-ping!"
pkt = hdr[:2] + struct.pack("!H", csum(hdr)) + hdr[4:]
s.sendto(pkt, (sys.argv[1], 0))
end = time.time() + 2
while time.time() < end:
    try: data, addr = s.recvfrom(2048)
    except socket.timeout: break
    ihl = (data[0] & 15) * 4
    if addr[0] == sys.argv[1] and data[ihl] == 0 and data[ihl + 4:ihl + 6] == b"\\x74\\x63": sys.exit(0)
sys.exit(1)
`;

class Lab {
  g!: BuiltGeneration;
  readonly log: Array<[string, string]> = [];
  /** model namespace name -> kernel namespace name */
  readonly kname = new Map<string, string>();
  readonly kernel: { route: string[]; fdb: string[]; neigh: string[]; pings: boolean[] } = { route: [], fdb: [], neigh: [], pings: [] };
  constructor(readonly gen: 1 | 2 | 3) {}
  get P() {
    return `${PID}${this.gen}`;
  }
}

const sh = (args: string[]) => execFileSync(args[0]!, args.slice(1), { encoding: "utf8", stdio: ["pipe", "pipe", "pipe"] });
const inNs = (ns: string, cmd: string) => sh(["ip", "netns", "exec", ns, ...cmd.split(" ")]);

function buildModel(lab: Lab): void {
  commandLog.on = (ns, cmd) => lab.log.push([ns, cmd]);
  try {
    lab.g = buildGeneration(lab.gen, loadCluster(YAML, "gen-node.yaml"), { installNetfilter: null });
  } finally {
    commandLog.on = null;
  }
  let i = 0;
  for (const n of lab.g.nodes) lab.kname.set(n.name, `${lab.P}${n.name}`);
  for (const p of lab.g.pods) if (!p.hostNetwork) lab.kname.set(p.ns.name, `${lab.P}p${++i}`);
}

/** The device whose neighbours are compared: flannel.1's VTEP entries (Gen 1), none on the node otherwise. */
const NEIGH_DEV: Record<number, string | null> = { 1: "flannel.1", 2: null, 3: null };

function buildKernel(lab: Lab): void {
  const { g, kname, kernel } = lab;
  for (const k of kname.values()) {
    sh(["ip", "netns", "add", k]);
    made.push(k);
    // The model has no IPv6: without this, DAD and router solicitations teach the bridge the pods' MACs.
    inNs(k, "sysctl -q -w net.ipv6.conf.all.disable_ipv6=1");
    inNs(k, "sysctl -q -w net.ipv6.conf.default.disable_ipv6=1");
  }
  const A = kname.get("a")!;
  const B = kname.get("b")!;
  const macOf = (ns: string, dev: string) => macToString(g.world.ns(ns).dev(dev).mac);
  // The underlay: the model's switch becomes a veth pair between the two nodes' eth0.
  sh(["ip", "-n", A, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", B]);
  sh(["ip", "-n", A, "link", "set", "eth0", "address", macOf("a", "eth0")]);
  sh(["ip", "-n", B, "link", "set", "eth0", "address", macOf("b", "eth0")]);
  for (const [ns, cmd0] of lab.log) {
    const k = kname.get(ns);
    if (k === undefined) continue; // the router and the internet are not part of this test
    // br_netfilter may not be loaded, and loading it would change the host: the sysctl is model-only here.
    if (cmd0.includes("bridge-nf-call-iptables")) continue;
    const cmd = cmd0.replace(/ netns (\S+)/, (_m, n: string) => ` netns ${kname.get(n) ?? n}`);
    inNs(k, cmd);
    const add = /^ip link add (\S+) type (\S+)(?:.* peer name (\S+) netns (\S+))?/.exec(cmd0);
    if (add !== null) {
      inNs(k, `ip link set ${add[1]} address ${macOf(ns, add[1]!)}`);
      if (add[3] !== undefined) inNs(kname.get(add[4]!)!, `ip link set ${add[3]} address ${macOf(add[4]!, add[3])}`);
    }
  }
  kernel.route = inNs(A, "ip route").replace(/ +$/gm, "").trim().split("\n").sort();
  kernel.fdb = normFdb(inNs(A, "bridge fdb show"), macLabels(g));
  const dev = NEIGH_DEV[lab.gen];
  if (dev !== null) kernel.neigh = normNeigh(inNs(A, `ip neigh show dev ${dev}`).replace(/^(\S+) lladdr/gm, `$1 dev ${dev} lladdr`), macLabels(g));
  for (const [from, to] of pingPairs(lab)) {
    const r = spawnSync("ip", ["netns", "exec", kname.get(from)!, "/usr/bin/python3", "-c", PING, to], { encoding: "utf8" });
    kernel.pings.push(r.status === 0);
  }
}

function macLabels(g: BuiltGeneration): Map<string, string> {
  const m = new Map<string, string>();
  for (const ns of g.world.namespaces) for (const d of ns.deviceList()) if (d.mac !== 0 && !m.has(macToString(d.mac))) m.set(macToString(d.mac), `${ns.name}/${d.name}`);
  return m;
}

/** (from namespace, to address): on node a, to the gateway (Gen 1) or node a, across to node b and back. */
function pingPairs(lab: Lab): Array<[string, string]> {
  const g = lab.g;
  const [p1, p2, p3] = ["default/p1", "default/p2", "default/p3"].map((k) => g.pods.find((p) => p.key === k)!);
  return [
    [p1!.ns.name, p2!.ip],
    [p1!.ns.name, lab.gen === 1 ? "10.244.0.1" : "192.168.77.10"],
    [p1!.ns.name, p3!.ip],
    [p3!.ns.name, p2!.ip],
  ];
}

const labs = [new Lab(1), new Lab(2), new Lab(3)];

beforeAll(() => {
  for (const lab of labs) buildModel(lab);
  if (!isRoot) {
    skipReason = "not root";
    return;
  }
  const probe = spawnSync("ip", ["netns", "add", `${PID}probe`], { encoding: "utf8" });
  if (probe.status !== 0) {
    skipReason = `ip netns add failed: ${(probe.stderr ?? "").trim()}`;
    return;
  }
  spawnSync("ip", ["netns", "del", `${PID}probe`]);
  for (const lab of labs) {
    try {
      buildKernel(lab);
    } finally {
      for (const ns of made) spawnSync("ip", ["netns", "del", ns]);
      made.length = 0;
    }
  }
}, 120_000);

afterAll(() => {
  for (const ns of made) spawnSync("ip", ["netns", "del", ns]);
});

describe("Gen 1 node: the builder's commands", () => {
  it("are the ones flanneld and the bridge plugin run", () => {
    const { g, log } = labs[0]!;
    const onA = log.filter(([ns]) => ns === "a").map(([, c]) => c);
    expect(onA).toContain("ip link add flannel.1 type vxlan id 1 local 192.168.77.10 dev eth0 dstport 4789 nolearning");
    expect(onA).toContain(`bridge fdb append ${macToString(nodeOf(g, "b").ns.dev("flannel.1").mac)} dev flannel.1 dst 192.168.77.11`);
    expect(onA.filter((c) => / master cni0$/.test(c))).toHaveLength(2);
  });
});

describe.each(labs.map((l) => [l.gen, l] as const))("Gen %i node: model vs kernel", (_gen, lab) => {
  it("ip route on node a is the kernel's", (ctx) => {
    if (skipReason) return ctx.skip(`kernel generation test skipped: ${skipReason}`);
    expect(nodeView(lab.g, "a").ipRoute.trim().split("\n").sort()).toEqual(lab.kernel.route);
  });

  it("bridge fdb (and flannel.1's neighbours) on node a are the kernel's", (ctx) => {
    if (skipReason) return ctx.skip(`kernel generation test skipped: ${skipReason}`);
    expect(normFdb(nodeView(lab.g, "a").bridgeFdb, macLabels(lab.g))).toEqual(lab.kernel.fdb);
    const dev = NEIGH_DEV[lab.gen];
    if (dev !== null) expect(normNeigh(ipNeigh(nodeOf(lab.g, "a").ns), macLabels(lab.g))).toEqual(lab.kernel.neigh);
  });

  it("pings on the node, to the node and across nodes succeed in both", (ctx) => {
    const g = lab.g;
    const model = pingPairs(lab).map(([from, to]) => {
      const id = sendIcmpEcho(g.world.ns(from), { dst: parseIpv4(to) });
      g.world.run();
      const reply = summarize(g.world, id);
      return reply.deliveredIn.length > 0 && reply.dropped === null;
    });
    expect(model).toEqual([true, true, true, true]);
    if (skipReason) return ctx.skip(`kernel generation test skipped: ${skipReason}`);
    expect(lab.kernel.pings).toEqual(model);
  });
});
