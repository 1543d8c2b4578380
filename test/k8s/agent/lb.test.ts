// The agent's Service translation (src/k8s/agent/lb.ts) on the demo cluster: every Service kind becomes the
// frontends Cilium would program, lb4 balances real packets to the EndpointSlices' ready endpoints, and one
// Service's update touches only its own map entries.
import { beforeAll, describe, expect, it } from "vitest";
import { BpfKernel, type BpfObject } from "../../../src/ebpf/kernel.js";
import { loadDemoCluster, type Cluster } from "../../../src/k8s/index.js";
import { Lb4Maps, SVC_FLAG_AFFINITY, SVC_FLAG_LOADBALANCER, SVC_FLAG_NODEPORT, SVC_FLAG2_MAGLEV } from "../../../src/k8s/agent/lb-maps.js";
import { backendsFor, ServiceManager } from "../../../src/k8s/agent/lb.js";
import { buildTcp, buildUdp, formatIpv4, get32, get16 } from "../../../src/packet/index.js";

let kernel: BpfKernel;
let obj: BpfObject;
let cluster: Cluster;
let mgr: ServiceManager;

const svc = (ns: string, name: string) => cluster.services.find((s) => s.metadata.namespace === ns && s.metadata.name === name)!;
const slicesOf = (ns: string, name: string) => cluster.endpointSlices.filter((s) => s.metadata.namespace === ns && s.serviceName === name);
const dump = (name: string) => new Map([...obj.map(name).entries()].map(([k, v]) => [Buffer.from(k).toString("hex"), Buffer.from(v).toString("hex")]));

beforeAll(async () => {
  kernel = new BpfKernel({ seed: 7 });
  obj = await kernel.load("programs/lb4.ts");
  cluster = loadDemoCluster();
  mgr = new ServiceManager(new Lb4Maps(kernel), { algorithm: "maglev" });
  mgr.sync(cluster);
}, 120_000);

describe("ServiceManager: Services + EndpointSlices -> lb4 maps", () => {
  it("kube-dns: one frontend per port, backends = ready CoreDNS endpoints; a DNS query is DNATed to one", () => {
    const s = svc("kube-system", "kube-dns");
    const dnsBackends = backendsFor(slicesOf("kube-system", "kube-dns"), s.ports.find((p) => p.name === "dns")!, false);
    expect(dnsBackends.length).toBeGreaterThan(0);
    const services = obj.map("cilium_lb4_services_v2").typed();
    const fe = services.lookup({ address: "10.96.0.10", dport: 53, backend_slot: 0, proto: 17 });
    expect(fe).toMatchObject({ count: dnsBackends.length, rev_nat_index: mgr.revNatIndex("10.96.0.10:53/UDP"), flags: 0, flags2: 0 });
    const r = obj.program().run(buildUdp({ src: "10.244.0.9", dst: "10.96.0.10", sport: 41000, dport: 53, payload: new Uint8Array(20) }));
    const to = `${formatIpv4(get32(r.packet, 30))}:${get16(r.packet, 36)}/UDP`;
    expect(dnsBackends).toContain(to);
  });

  it("NodePort: a frontend on every node InternalIP:nodePort; LoadBalancer: the ingress IP; both routable with Maglev", () => {
    const fe = svc("shop", "frontend");
    const services = obj.map("cilium_lb4_services_v2").typed();
    for (const node of cluster.nodes) {
      const v = services.lookup({ address: node.internalIP, dport: fe.ports[0]!.nodePort, backend_slot: 0, proto: 6 });
      expect((v?.flags as number) & SVC_FLAG_NODEPORT).toBeTruthy();
      expect(v?.flags2).toBe(SVC_FLAG2_MAGLEV);
    }
    const lb = services.lookup({ address: "203.0.113.10", dport: 443, backend_slot: 0, proto: 6 });
    expect((lb?.flags as number) & SVC_FLAG_LOADBALANCER).toBeTruthy();
    // The ClusterIP frontend of the same Service is random-selected (Cilium's bpf_lxc forces LB_SELECTION_RANDOM).
    expect(services.lookup({ address: fe.clusterIP, dport: 80, backend_slot: 0, proto: 6 })?.flags2).toBe(0);
    expect(obj.map("cilium_lb4_maglev").count).toBeGreaterThan(0);
  });

  it("sessionAffinity: ClientIP sets SVC_FLAG_AFFINITY with the Service's timeout", () => {
    const b = svc("shop", "backend");
    const v = obj.map("cilium_lb4_services_v2").typed().lookup({ address: b.clusterIP, dport: 8080, backend_slot: 0, proto: 6 });
    expect(v).toMatchObject({ flags: SVC_FLAG_AFFINITY, affinity_timeout: b.sessionAffinityTimeoutSeconds });
  });

  it("headless Services get no frontend; a second full sync changes nothing", () => {
    const before = dump("cilium_lb4_services_v2");
    const ops = mgr.sync(cluster);
    expect(ops).toEqual({ updates: 0, deletes: 0 });
    expect(dump("cilium_lb4_services_v2")).toEqual(before);
    for (const k of before.keys()) expect(k.startsWith("ffffffff")).toBe(false);
  });

  it("one Service losing an endpoint: syncService writes only that Service's entries", () => {
    const before = dump("cilium_lb4_services_v2");
    const beBefore = dump("cilium_lb4_backends_v3");
    const fe = svc("shop", "frontend");
    const changed: Cluster = {
      ...cluster,
      endpointSlices: cluster.endpointSlices.map((s) =>
        s.metadata.namespace === "shop" && s.serviceName === "frontend" ? { ...s, endpoints: s.endpoints.slice(1) } : s,
      ),
    };
    const n = backendsFor(slicesOf("shop", "frontend"), fe.ports[0]!, false).length;
    const ops = mgr.syncService(changed, "shop", "frontend");
    const after = dump("cilium_lb4_services_v2");
    // Entries of other Services are byte-identical; this Service's frontends (ClusterIP, NodePorts) shrank by one slot each.
    const frontends = 1 + cluster.nodes.reduce((a, nd) => a + nd.internalIPs.length, 0);
    let changedKeys = 0;
    for (const [k, v] of before) if (after.get(k) !== v) changedKeys++;
    expect(changedKeys).toBeLessThanOrEqual(frontends * (n + 1));
    expect(before.size - after.size).toBe(frontends);
    expect(ops.updates).toBeLessThan(frontends * (n + 4));
    expect(ops.deletes).toBeGreaterThanOrEqual(frontends);
    expect(() => new Lb4Maps(new BpfKernel())).toThrow(/load programs\/lb4.ts first/);
    // Backends still used by another Service stay; the removed pod's backend went if nothing else used it.
    const beAfter = dump("cilium_lb4_backends_v3");
    expect(beBefore.size - beAfter.size).toBeGreaterThanOrEqual(0);
    expect(beBefore.size - beAfter.size).toBeLessThanOrEqual(1);
  });
});
