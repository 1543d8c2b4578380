// Gen 4 routing modes: native routing by default (as GKE Dataplane V2: no encapsulation, the underlay routes pod
// CIDRs) and Cilium's VXLAN tunnel mode ({ tunnel: "vxlan" }): cilium_vxlan on every node (UDP 8472), cross-node
// pod traffic carries the 50 bytes of VXLAN encapsulation, same-node traffic none, the underlay never routes pod
// addresses; the programs (lb4, policy) work the same in both. Plus `tcbox topology --gen 4 --tunnel vxlan`.
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { main } from "../../src/cli/main.js";
import { buildGen4, GEN4_VXLAN_DEV, GEN4_VXLAN_PORT, prepareGen4Programs, type BuiltGen4 } from "../../src/gens/gen4.js";
import { installCiliumPolicy } from "../../src/gens/policy-cilium.js";
import { probe } from "../../src/gens/policy-probe.js";
import { nodeOf, type PodPlane } from "../../src/gens/index.js";
import { loadDemoCluster } from "../../src/k8s/demo-cluster.js";
import { IPPROTO_UDP, ipRoute, sendUdp, summarize, VxlanDevice, type NetNamespace } from "../../src/net/index.js";
import { formatIpv4, parseIpv4 } from "../../src/packet/addr.js";
import { get16, get32 } from "../../src/packet/checksum.js";

let native: BuiltGen4;
let vxlan: BuiltGen4;
beforeAll(async () => {
  await prepareGen4Programs();
  native = buildGen4(loadDemoCluster());
  vxlan = buildGen4(loadDemoCluster(), { tunnel: "vxlan" });
  installCiliumPolicy(vxlan);
}, 600_000);

/** A UDP datagram and the receiver's answer: bytes of encapsulation of each, and whether each arrived. */
function exchange(g: BuiltGen4, from: NetNamespace, to: NetNamespace, dst: string, dport: number, sport: number) {
  const srv = to.bind(IPPROTO_UDP, 0, dport);
  const cli = from.bind(IPPROTO_UDP, 0, sport);
  const peer = { addr: 0, port: 0, local: 0, seen: "" };
  let replied = false;
  srv.onReceive = (p) => {
    const l3 = p.off + 14;
    peer.addr = get32(p.buf, l3 + 12);
    peer.port = get16(p.buf, l3 + 20);
    peer.local = get32(p.buf, l3 + 16);
    peer.seen = `${formatIpv4(peer.addr)}:${peer.port}`;
  };
  cli.onReceive = () => (replied = true);
  try {
    const id = sendUdp(from, { dst: parseIpv4(dst), sport, dport, payload: 16 });
    g.world.run();
    const req = summarize(g.world, id);
    let rep = null;
    if (peer.seen !== "") {
      const rid = sendUdp(to, { src: peer.local, dst: peer.addr, sport: dport, dport: peer.port, payload: 16 });
      g.world.run();
      rep = summarize(g.world, rid);
    }
    return { delivered: peer.seen !== "", seen: peer.seen, replied, encap: req.encapBytes, replyEncap: rep?.encapBytes ?? -1 };
  } finally {
    to.sockets.close(srv);
    from.sockets.close(cli);
  }
}

const pod = (g: BuiltGen4, prefix: string, node?: string): PodPlane => g.pods.find((p) => p.key.startsWith(prefix) && (node === undefined || p.node === node))!;

describe("Gen 4 native routing vs VXLAN tunnel", () => {
  it("topology: cilium_vxlan (VNI, UDP 8472, a VTEP per peer in the FDB) only in tunnel mode; pod CIDRs routed through it", () => {
    expect(native.encapsulation).toBe("none");
    expect(vxlan.encapsulation).toBe("vxlan");
    const n1 = nodeOf(vxlan, "node-1");
    const dev = n1.ns.dev(GEN4_VXLAN_DEV);
    expect(dev).toBeInstanceOf(VxlanDevice);
    expect((dev as VxlanDevice).dstport).toBe(GEN4_VXLAN_PORT);
    expect(GEN4_VXLAN_PORT).toBe(8472);
    const routes = ipRoute(n1.ns);
    for (const peer of vxlan.nodes.filter((n) => n !== n1)) {
      for (const r of peer.podRanges) expect(routes).toContain(`${r} via ${r.split("/")[0]} dev ${GEN4_VXLAN_DEV} onlink`);
    }
    expect(() => nodeOf(native, "node-1").ns.dev(GEN4_VXLAN_DEV)).toThrow();
    // The underlay routes pod CIDRs in native mode only.
    const podRange = vxlan.nodes[1]!.podRanges[0]!;
    expect(ipRoute(native.router)).toContain(podRange);
    expect(ipRoute(vxlan.router)).not.toContain(podRange);
  });

  it("the ipcache names the node of each remote pod as tunnel endpoint in tunnel mode", () => {
    const remote = pod(vxlan, "shop/db-0");
    const n1 = vxlan.ebpf.find((n) => n.name === "node-1")!;
    const v = n1.policy.ipcache.lookup(n1.policy.ipcacheKey(`${remote.ip}/32`))!;
    expect(formatIpv4(new DataView(v.buffer, v.byteOffset).getUint32(4, false))).toBe(nodeOf(vxlan, remote.node).ip);
  });

  it("cross-node pod -> pod: 50 bytes of encapsulation each way in tunnel mode, 0 natively; the pod's address kept", () => {
    for (const [g, bytes] of [[native, 0], [vxlan, 50]] as const) {
      const a = pod(g, "shop/frontend", "node-1");
      const b = pod(g, "shop/db-0");
      expect(b.node).not.toBe("node-1");
      const r = exchange(g, a.ns, b.ns, b.ip, 7000, 41000);
      expect(r).toEqual({ delivered: true, seen: `${a.ip}:41000`, replied: true, encap: bytes, replyEncap: bytes });
    }
  });

  it("same-node pod -> pod: no encapsulation in either mode", () => {
    for (const g of [native, vxlan]) {
      const a = pod(g, "shop/frontend", "node-1");
      const b = pod(g, "shop/db-1");
      expect(b.node).toBe("node-1");
      expect(exchange(g, a.ns, b.ns, b.ip, 7001, 41001)).toMatchObject({ delivered: true, replied: true, encap: 0, replyEncap: 0 });
    }
  });

  it("tunnel mode: pod -> Service (lb4 DNAT before the tunnel, reverse NAT after it) and policy work as natively", () => {
    const a = pod(vxlan, "shop/frontend", "node-1");
    const dns = vxlan.cluster.services.find((s) => s.metadata.name === "kube-dns")!;
    const remote = vxlan.pods.filter((p) => p.key.startsWith("kube-system/coredns") && p.node !== "node-1");
    expect(remote.length).toBeGreaterThan(0);
    let hit = false;
    for (let i = 0; i < 20 && !hit; i++) {
      for (const b of remote) {
        const r = exchange(vxlan, a.ns, b.ns, dns.clusterIP, 53, 42000 + i);
        if (r.delivered) {
          hit = true;
          expect(r).toEqual({ delivered: true, seen: `${a.ip}:${42000 + i}`, replied: true, encap: 50, replyEncap: 50 });
        }
      }
    }
    expect(hit, "no remote CoreDNS backend chosen in 20 tries").toBe(true);
    // The demo's policy (backend admits frontend on TCP "api" = containerPort 9090): across the tunnel and on one node.
    for (const b of vxlan.pods.filter((p) => p.key.startsWith("shop/backend"))) {
      expect(probe(vxlan, { from: pod(vxlan, "shop/frontend", "node-1").key, to: b.key, port: 9090, protocol: "TCP" }), b.node).toBe(true);
      expect(probe(vxlan, { from: pod(vxlan, "shop/db-1").key, to: b.key, port: 9090, protocol: "TCP" }), b.node).toBe(false);
    }
    expect(new Set(vxlan.pods.filter((p) => p.key.startsWith("shop/backend")).map((p) => p.node)).size).toBeGreaterThan(1);
  });
});

describe("tcbox topology --gen 4", () => {
  afterEach(() => vi.restoreAllMocks());
  const capture = () => {
    let out = "";
    let err = "";
    vi.spyOn(process.stdout, "write").mockImplementation((s: string | Uint8Array) => ((out += String(s)), true));
    vi.spyOn(process.stderr, "write").mockImplementation((s: string | Uint8Array) => ((err += String(s)), true));
    return { out: () => out, err: () => err };
  };

  it("--tunnel vxlan prints cilium_vxlan, its routes and FDB; native mode has none", async () => {
    const c = capture();
    expect(await main(["topology", "--gen", "4", "--tunnel", "vxlan", "--node", "node-1"])).toBe(0);
    expect(c.out()).toMatch(/\d+: cilium_vxlan: <[^>]*UP[^>]*> mtu 1450/);
    expect(c.out()).toMatch(/ via \S+ dev cilium_vxlan onlink\n/);
    expect(c.out()).toMatch(/dev cilium_vxlan dst 10\.0\.\d+\.\d+ self permanent/);
    const d = capture();
    expect(await main(["topology", "--gen", "4", "--node", "node-1"])).toBe(0);
    expect(d.out()).not.toContain("cilium_vxlan");
  });

  it("errors name the flag: a bad mode, --tunnel on another generation", async () => {
    const c = capture();
    expect(await main(["topology", "--gen", "4", "--tunnel", "geneve"])).toBe(1);
    expect(c.err()).toMatch(/^tcbox: --tunnel: invalid tunnel mode "geneve"/);
    expect(await main(["topology", "--gen", "1", "--tunnel", "vxlan"])).toBe(1);
    expect(c.err()).toContain("tcbox: --tunnel: --tunnel applies to Gen 4 only");
  });
});
