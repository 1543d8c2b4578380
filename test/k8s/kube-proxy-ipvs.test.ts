// kube-proxy IPVS mode against kube-proxy's own packet-flow expectations (the same upstream flow data the iptables
// mode is checked with: test/fixtures/k8s/kube-proxy/flows/): manifests → tcbox's IPVS state → the virtual server a
// packet hits and its real servers (every one a new connection can reach), and masquerade decided by the IPVS
// proxier's iptables rules with their ipsets (nat PREROUTING marks, KUBE-LOOP-BACK hairpin in POSTROUTING).
// Where IPVS mode differs from iptables mode by design the expectation is mapped, with the reason:
//   - a filter verdict (REJECT/DROP: no usable endpoint) becomes "no real server" (IPVS refuses the connection,
//     ip_vs_leave sends port unreachable), unless the IPVS proxier's filter rules drop the packet on its way to
//     the virtual server (loadBalancerSourceRanges: KUBE-PROXY-FIREWALL in filter INPUT, before IPVS at LOCAL_IN);
//     every accepted flow must pass those filter rules.
//   - an externalTrafficPolicy: Local Service with no endpoint on this node: iptables mode drops external
//     traffic; the IPVS proxier gives those virtual servers the cluster's endpoints instead (kubernetes#97081),
//     so such a DROP flow must find exactly the ClusterIP's real servers.
//   - localhost NodePorts (127.0.0.1): IPVS mode has none (virtual servers sit on the node's addresses only): skipped.
//   - pod or node traffic to an externally visible address of an externalTrafficPolicy: Local Service: iptables mode
//     short-circuits it to all endpoints (KUBE-EXT "pod traffic"/"masquerade LOCAL traffic" rules); IPVS mode has
//     one virtual server per address with the node-local endpoints only: its real servers must be a subset.
// Virtual servers for NodePorts are made on every node address (kube-proxy reads them from the host).
import { describe, expect, it } from "vitest";
import { loadCluster } from "../../src/k8s/cluster.js";
import { generateIpvs, type IpvsState } from "../../src/k8s/kube-proxy/ipvs.js";
import { ipvsIptablesSave, ipvsRestorePayload } from "../../src/k8s/kube-proxy/ipvs-rules.js";
import { compileRuleset } from "../../src/netfilter/compile.js";
import { AddrType } from "../../src/netfilter/ctstate.js";
import { NF_ACCEPT } from "../../src/netfilter/eval.js";
import { NetfilterPath, PathResult } from "../../src/netfilter/hooks.js";
import { IpvsPath, IPVS_REJECT, IPVS_STOLEN } from "../../src/netfilter/ipvs-conn.js";
import { ipvsadmList } from "../../src/netfilter/ipvs-format.js";
import { PacketState } from "../../src/netfilter/packet-state.js";
import { RecentTables } from "../../src/netfilter/recent.js";
import { parseIptablesRestore } from "../../src/netfilter/restore.js";
import { printIptablesSave } from "../../src/netfilter/save.js";
import { Hook } from "../../src/netfilter/tables.js";
import { buildTcp, buildUdp } from "../../src/packet/build.js";
import { checksumsOk } from "../netfilter/conntrack-fixtures.js";
import { formatIpv4, parseIpv4 } from "../../src/packet/addr.js";
import { get16, get32 } from "../../src/packet/checksum.js";
import { describeFlowFixtures, LOCAL_IPS, PROTO, type Flow, type FlowFile } from "./kube-proxy-flow-fixtures.js";


/** The IPVS proxier's iptables rules as a netfilter path, and a flow's first packet arriving from outside. */
function flowPath(st: IpvsState, f: Flow): { path: NetfilterPath; p: PacketState } {
  const recent = new RecentTables();
  const rules = compileRuleset(parseIptablesRestore(ipvsRestorePayload(st)), { ipsets: st.ipsets, recent });
  const local = (a: number) => LOCAL_IPS.includes(a) || st.kubeIpvs0.includes(formatIpv4(a));
  const path = new NetfilterPath(rules, {
    randomMatch: () => false, addrType: (a) => (local(a) ? AddrType.LOCAL : AddrType.UNICAST), now: () => 0, recent,
    isLocal: local, masqueradeAddr: () => LOCAL_IPS[0]!,
  });
  const p = new PacketState();
  p.proto = PROTO[f.proto ?? "tcp"]!;
  p.src = parseIpv4(f.src);
  p.dst = parseIpv4(f.dst);
  p.sport = 40000;
  p.dport = f.dport;
  p.iif = 1;
  return { path, p };
}

/** Do the filter rules drop the packet before it reaches IPVS (PREROUTING, then INPUT for a local virtual address)? */
function firewallDrops(st: IpvsState, f: Flow): boolean {
  const { path, p } = flowPath(st, f);
  return path.receive(p, new PathResult()) !== NF_ACCEPT;
}

/** Did the nat rules mark the packet for masquerade (KUBE-MARK-MASQ in PREROUTING), or would KUBE-LOOP-BACK hairpin it? */
function masquerades(st: IpvsState, f: Flow, backend: { ip: number; port: number } | null): boolean {
  const { path, p } = flowPath(st, f);
  path.hook(Hook.PREROUTING, p, new PathResult());
  if ((p.mark & 0x4000) !== 0) return true;
  if (!backend) return false;
  return st.ipsets.get("KUBE-LOOP-BACK")!.test(backend.ip, p.proto, backend.port, p.src);
}

function runFlows(file: string, spec: FlowFile, manifests: string, flows: Flow[]): void {
  const cluster = loadCluster(manifests, file, { serviceCIDR: "172.30.0.0/16", nodePortRange: [1, 65535], kubernetesService: false });
  const st = generateIpvs(cluster, { ...spec.proxier, nodeIPs: LOCAL_IPS.map(formatIpv4) });
  const clusterIPs = new Set(st.ipsets.get("KUBE-CLUSTER-IP")!.save().slice(1).map((l) => l.split(" ")[2]!.split(",")[0]!));
  const inCluster = (ip: string) => spec.proxier.clusterCIDR === "" || (parseIpv4(ip) & 0xff000000) === (parseIpv4(spec.proxier.clusterCIDR.split("/")[0]!) & 0xff000000);
  const reachOf = (s: number) =>
    s < 0 ? "" : st.ipvs.services[s]!.dests.filter((d) => d.weight > 0).map((d) => `${formatIpv4(d.addr)}:${d.port}`).sort().join(", ");
  /** The ClusterIP's real servers when `f` goes to an external address of an externalTrafficPolicy: Local Service. */
  const localFallback = (f: Flow, proto: number): string | null => {
    for (const svc of cluster.services) {
      if (svc.externalTrafficPolicy !== "Local") continue;
      const ext = svc.loadBalancerIngress.includes(f.dst) || svc.externalIPs.includes(f.dst);
      const port = svc.ports.find((p) => (ext && p.port === f.dport) || (LOCAL_IPS.includes(parseIpv4(f.dst)) && p.nodePort === f.dport));
      if (port) return reachOf(st.ipvs.lookup(proto, parseIpv4(svc.clusterIP), port.port));
    }
    return null;
  };
  for (const f of flows) {
    if (f.dst === "127.0.0.1") continue;
    it(f.name, () => {
      const proto = PROTO[f.proto ?? "tcp"]!;
      const s = st.ipvs.lookup(proto, parseIpv4(f.dst), f.dport);
      const svc = s >= 0 ? st.ipvs.services[s]! : null;
      const reach = svc ? svc.dests.filter((d) => d.weight > 0).map((d) => `${formatIpv4(d.addr)}:${d.port}`).sort().join(", ") : "";
      const dropped = firewallDrops(st, f);
      if (f.output === "REJECT" || f.output === "DROP") {
        const fallback = reach !== "" ? localFallback(f, proto) : null;
        if (fallback) expect(reach, "Local policy without local endpoints: the ClusterIP's real servers").toBe(fallback);
        else if (!dropped) {
          expect(reach, "no usable real server (nor a firewall drop)").toBe("");
          // ip_vs_leave: a virtual server without a real server answers port unreachable.
          const synPkt = buildTcp({ src: f.src, dst: f.dst, sport: 40000, dport: f.dport, flags: 0x02, seq: 1 });
          if (proto === 6 && s >= 0) expect(new IpvsPath(st.ipvs).inbound(synPkt, 14, 0)).toBe(IPVS_REJECT);
        }
        return;
      }
      if (f.output === "") {
        // No Service port: iptables mode lets the packet pass untouched; the IPVS proxier's KUBE-IPVS-FILTER
        // rejects new connections to a kube-ipvs0 address on a port that is not a Service's (kubernetes#72236).
        expect(reach).toBe("");
        expect(dropped, "KUBE-IPVS-FILTER").toBe(st.kubeIpvs0.includes(f.dst));
        return;
      }
      expect(dropped, "filter rules let the flow through").toBe(false);
      const localOnly = svc !== null && !clusterIPs.has(f.dst) && (inCluster(f.src) || LOCAL_IPS.includes(parseIpv4(f.src))) && st.ipsets.get("KUBE-IPVS-IPS") !== undefined &&
        cluster.services.some((x) => x.externalTrafficPolicy === "Local");
      if (localOnly && reach !== f.output) {
        for (const r of reach ? reach.split(", ") : []) expect(f.output.split(", ")).toContain(r);
        return;
      }
      expect(reach).toBe(f.output);
      // The first packet through ip_vs_in: scheduled to one of those real servers, DNATed, checksums intact.
      if (proto !== 132) {
        const pkt = proto === 6
          ? buildTcp({ src: f.src, dst: f.dst, sport: 40000, dport: f.dport, flags: 0x02, seq: 1 })
          : buildUdp({ src: f.src, dst: f.dst, sport: 40000, dport: f.dport, payload: new Uint8Array(4) });
        expect(new IpvsPath(st.ipvs).inbound(pkt, 14, 0)).toBe(IPVS_STOLEN);
        expect(reach.split(", ")).toContain(`${formatIpv4(get32(pkt, 30))}:${get16(pkt, 36)}`);
        expect(checksumsOk(pkt)).toBe(true);
      }
      const first = svc?.dests.length ? { ip: [...svc.dests].sort((a, b) => a.addr - b.addr)[0]!.addr, port: [...svc.dests].sort((a, b) => a.addr - b.addr)[0]!.port } : null;
      // Masquerade is compared for ClusterIP traffic, where both modes decide it the same way (off-cluster source
      // or hairpin). For node ports, LB and external IPs the IPVS proxier masquerades by set membership
      // (KUBE-NODE-PORT-*, KUBE-LOAD-BALANCER, KUBE-EXTERNAL-IP) rather than iptables mode's per-source rules,
      // and without a LocalTrafficDetector it writes the `src,dst` form: those are checked in the rules tests below.
      if (clusterIPs.has(f.dst) && spec.proxier.clusterCIDR !== "") {
        expect(masquerades(st, f, f.output.includes(",") ? null : first), "masquerade").toBe(f.masq ?? false);
      }
    });
  }
}

describeFlowFixtures("ipvs ", runFlows);

const MANIFESTS = `apiVersion: v1
kind: Service
metadata: {namespace: ns1, name: svc1}
spec:
  clusterIP: 172.30.0.41
  type: NodePort
  sessionAffinity: ClientIP
  ports: [{name: p80, port: 80, protocol: TCP, nodePort: 3001}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {namespace: ns1, name: svc1-1, labels: {kubernetes.io/service-name: svc1}}
addressType: IPv4
endpoints:
  - {addresses: [10.180.0.1], nodeName: test-node}
  - {addresses: [10.180.1.1], nodeName: node2}
ports: [{name: p80, port: 80, protocol: TCP}]
`;

describe("ipvs proxier output", () => {
  const cluster = loadCluster(MANIFESTS, "m.yaml", { serviceCIDR: "172.30.0.0/16", nodePortRange: [1, 65535], kubernetesService: false });
  const st = generateIpvs(cluster, { nodeName: "test-node", nodeIPs: ["192.168.0.2"], clusterCIDR: "10.0.0.0/8" });

  it("virtual servers per ClusterIP and node IP × port, persistent for sessionAffinity (upstream TestNodePort / TestSessionAffinity shape)", () => {
    const text = ipvsadmList(st.ipvs);
    expect(text.split("\n").filter((l) => !l.startsWith("  ->"))).toEqual([
      "IP Virtual Server version 1.2.1 (size=4096)",
      "Prot LocalAddress:Port Scheduler Flags",
      "TCP  172.30.0.41:80 rr persistent 10800",
      "TCP  192.168.0.2:3001 rr persistent 10800",
      "",
    ]);
    expect(text).toContain("  -> 10.180.0.1:80                Masq    1      0          0         \n");
    expect(st.kubeIpvs0).toEqual(["172.30.0.41"]);
  });

  it("ipsets hold the Service entries (upstream: KUBE-CLUSTER-IP 172.30.0.41,tcp:80; KUBE-NODE-PORT-TCP 3001; KUBE-LOOP-BACK for the local endpoint)", () => {
    const save = st.ipsets.save();
    for (const line of ["add KUBE-CLUSTER-IP 172.30.0.41,tcp:80", "add KUBE-NODE-PORT-TCP 3001", "add KUBE-LOOP-BACK 10.180.0.1,tcp:80,10.180.0.1", "add KUBE-IPVS-IPS 172.30.0.41"]) {
      expect(save).toContain(`${line}\n`);
    }
    expect(save).not.toContain("10.180.1.1,tcp:80,10.180.1.1"); // not local
  });

  it("iptables rules: the upstream shapes, restorable and stable under save → restore → save", () => {
    const text = ipvsIptablesSave(st);
    for (const rule of [
      '-A KUBE-SERVICES ! -s 10.0.0.0/8 -m comment --comment "Kubernetes service cluster ip + port for masquerade purpose" -m set --match-set KUBE-CLUSTER-IP dst,dst -j KUBE-MARK-MASQ',
      "-A KUBE-SERVICES -m addrtype --dst-type LOCAL -j KUBE-NODE-PORT",
      "-A KUBE-SERVICES -m set --match-set KUBE-CLUSTER-IP dst,dst -j ACCEPT",
      '-A KUBE-NODE-PORT -p tcp -m comment --comment "Kubernetes nodeport TCP port for masquerade purpose" -m set --match-set KUBE-NODE-PORT-TCP dst -j KUBE-MARK-MASQ',
      '-A KUBE-POSTROUTING -m comment --comment "Kubernetes endpoints dst ip:port, source ip for solving hairpin purpose" -m set --match-set KUBE-LOOP-BACK dst,dst,src -j MASQUERADE',
      "-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000",
      "-A KUBE-IPVS-FILTER -m conntrack --ctstate NEW -m set --match-set KUBE-IPVS-IPS dst -j REJECT --reject-with icmp-port-unreachable",
      '-A INPUT -m comment --comment "kubernetes ipvs access filter" -j KUBE-IPVS-FILTER',
    ]) expect(text).toContain(`${rule}\n`);
    const body = text.slice(text.indexOf("\n") + 1);
    expect(printIptablesSave(parseIptablesRestore(body), { generateComments: false })).toBe(body);
    // The rule count does not depend on the number of Services (sets do the matching).
    expect(compileRuleset(parseIptablesRestore(body), { ipsets: st.ipsets }).tables.length).toBe(2);
  });

  it("packet path: a SYN to the ClusterIP is scheduled to a real server and DNATed; the reply is un-DNATed", () => {
    const path = new IpvsPath(st.ipvs);
    const syn = buildTcp({ src: "10.180.2.9", dst: "172.30.0.41", sport: 40000, dport: 80, flags: 0x02, seq: 1 });
    expect(path.inbound(syn, 14, 0)).toBe(IPVS_STOLEN);
    const backend = formatIpv4(get32(syn, 30));
    expect(["10.180.0.1", "10.180.1.1"]).toContain(backend);
    expect(get16(syn, 36)).toBe(80);
    const reply = buildTcp({ src: backend, dst: "10.180.2.9", sport: 80, dport: 40000, flags: 0x12, seq: 5, ack: 2 });
    expect(path.outbound(reply, 14, 0)).toBe(true);
    expect([formatIpv4(get32(reply, 26)), get16(reply, 34)]).toEqual(["172.30.0.41", 80]);
    // Persistent: the same client's next connection goes to the same real server.
    const syn2 = buildTcp({ src: "10.180.2.9", dst: "172.30.0.41", sport: 40001, dport: 80, flags: 0x02, seq: 1 });
    path.inbound(syn2, 14, 5);
    expect(formatIpv4(get32(syn2, 30))).toBe(backend);
  });
});

describe("loadBalancerSourceRanges (upstream TestLoadBalanceSourceRanges shape)", () => {
  const manifests = (ranges: string) => `apiVersion: v1
kind: Service
metadata: {namespace: ns1, name: lb}
spec:
  type: LoadBalancer
  clusterIP: 172.30.0.50
  loadBalancerSourceRanges: ${ranges}
  ports: [{name: p80, port: 80, protocol: TCP, nodePort: 3050}]
status: {loadBalancer: {ingress: [{ip: 1.2.3.4}]}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {namespace: ns1, name: lb-1, labels: {kubernetes.io/service-name: lb}}
addressType: IPv4
endpoints: [{addresses: [10.180.0.1], nodeName: test-node}]
ports: [{name: p80, port: 80, protocol: TCP}]
`;
  const gen = (ranges: string) =>
    generateIpvs(loadCluster(manifests(ranges), "lb.yaml", { serviceCIDR: "172.30.0.0/16", nodePortRange: [1, 65535], kubernetesService: false }), {
      nodeName: "test-node", nodeIPs: ["192.168.0.2"], clusterCIDR: "10.0.0.0/8",
    });

  it("FW and SOURCE-CIDR members (networks normalised); the node's own range adds the LB address as allowed source", () => {
    const st = gen("[100.101.102.0/24, 192.168.0.9/16]");
    const save = st.ipsets.save();
    for (const line of [
      "add KUBE-LOAD-BALANCER-FW 1.2.3.4,tcp:80",
      "add KUBE-LOAD-BALANCER-SOURCE-CIDR 1.2.3.4,tcp:80,100.101.102.0/24",
      "add KUBE-LOAD-BALANCER-SOURCE-CIDR 1.2.3.4,tcp:80,192.168.0.0/16",
      "add KUBE-LOAD-BALANCER-SOURCE-IP 1.2.3.4,tcp:80,1.2.3.4",
    ]) expect(save).toContain(`${line}\n`);
    expect(st.lbNoNodeAccess).toEqual([]);
    const text = ipvsIptablesSave(st);
    for (const rule of [
      '-A KUBE-PROXY-FIREWALL -m comment --comment "Kubernetes service load balancer ip + port for load balancer with sourceRange" -m set --match-set KUBE-LOAD-BALANCER-FW dst,dst -j KUBE-SOURCE-RANGES-FIREWALL',
      '-A KUBE-SOURCE-RANGES-FIREWALL -m comment --comment "Kubernetes service load balancer ip + port + source cidr for packet filter purpose" -m set --match-set KUBE-LOAD-BALANCER-SOURCE-CIDR dst,dst,src -j RETURN',
      '-A KUBE-SOURCE-RANGES-FIREWALL -m comment --comment "Kubernetes service load balancer ip + port + source IP for packet filter purpose" -m set --match-set KUBE-LOAD-BALANCER-SOURCE-IP dst,dst,src -j RETURN',
      "-A KUBE-SOURCE-RANGES-FIREWALL -j DROP",
      "-A KUBE-SERVICES -s 127.0.0.0/8 -j RETURN",
    ]) expect(text).toContain(`${rule}\n`);
    // ipsetWithIptablesChain order: the CIDR RETURN comes before the source-IP RETURN, then the DROP.
    const chain = text.split("\n").filter((l) => l.startsWith("-A KUBE-SOURCE-RANGES-FIREWALL"));
    expect(chain.map((l) => l.split(" ").at(-1))).toEqual(["RETURN", "RETURN", "DROP"]);
    expect(chain[0]).toContain("SOURCE-CIDR");
  });

  it("ranges without the node IP: no SOURCE-IP member, the LB is listed for kube-proxy's node-access DROP; 0.0.0.0/0 adds no member", () => {
    const st = gen("[100.101.102.0/24]");
    expect(st.ipsets.get("KUBE-LOAD-BALANCER-SOURCE-IP")!.size).toBe(0);
    expect(st.lbNoNodeAccess).toEqual([{ ip: "1.2.3.4", proto: "tcp", port: 80 }]);
    expect(ipvsIptablesSave(st)).not.toContain("KUBE-LOAD-BALANCER-SOURCE-IP dst,dst,src");
    const all = gen("[0.0.0.0/0]");
    expect(all.ipsets.get("KUBE-LOAD-BALANCER-SOURCE-CIDR")!.size).toBe(0);
    expect(all.ipsets.get("KUBE-LOAD-BALANCER-SOURCE-IP")!.size).toBe(1);
  });
});

describe("kube-ipvs0 addresses", () => {
  it("an externalIP that is a node address gets a virtual server but is not bound to kube-ipvs0 (syncService shouldBind)", () => {
    const cluster = loadCluster(
      `apiVersion: v1
kind: Service
metadata: {namespace: ns1, name: ext}
spec:
  clusterIP: 172.30.0.60
  externalIPs: [192.168.0.2, 192.168.99.20]
  ports: [{name: p80, port: 80, protocol: TCP}]
`,
      "ext.yaml",
      { serviceCIDR: "172.30.0.0/16", nodePortRange: [1, 65535], kubernetesService: false },
    );
    const st = generateIpvs(cluster, { nodeName: "test-node", nodeIPs: ["192.168.0.2"], clusterCIDR: "10.0.0.0/8" });
    expect(st.kubeIpvs0).toEqual(["172.30.0.60", "192.168.99.20"]);
    expect(st.ipsets.get("KUBE-IPVS-IPS")!.test(parseIpv4("192.168.0.2"), 0, 0, 0)).toBe(false);
    expect(st.ipvs.lookup(6, parseIpv4("192.168.0.2"), 80)).toBeGreaterThanOrEqual(0);
  });
});

describe("SCTP NodePorts", () => {
  it("one hash:ip,port member per node IP, the -p sctp dst,dst rules, and a virtual server per node IP", () => {
    const cluster = loadCluster(
      `apiVersion: v1
kind: Service
metadata: {namespace: ns1, name: sig}
spec:
  type: NodePort
  clusterIP: 172.30.0.70
  externalTrafficPolicy: Local
  ports: [{name: sig, port: 2905, protocol: SCTP, nodePort: 3905}]
`,
      "sig.yaml",
      { serviceCIDR: "172.30.0.0/16", nodePortRange: [1, 65535], kubernetesService: false },
    );
    const st = generateIpvs(cluster, { nodeName: "test-node", nodeIPs: ["192.168.0.2", "192.168.1.2"], clusterCIDR: "10.0.0.0/8" });
    const save = st.ipsets.save();
    for (const set of ["KUBE-NODE-PORT-SCTP-HASH", "KUBE-NODE-PORT-LOCAL-SCTP-HASH"]) {
      for (const ip of ["192.168.0.2", "192.168.1.2"]) expect(save).toContain(`add ${set} ${ip},sctp:3905\n`);
    }
    const text = ipvsIptablesSave(st);
    expect(text).toContain(`-A KUBE-NODE-PORT -p sctp -m comment --comment "Kubernetes nodeport SCTP port with externalTrafficPolicy=local with type \\'hash ip:port\\'" -m set --match-set KUBE-NODE-PORT-LOCAL-SCTP-HASH dst,dst -j RETURN\n`);
    expect(text).toContain(`-A KUBE-NODE-PORT -p sctp -m comment --comment "Kubernetes nodeport SCTP port for masquerade purpose with type \\'hash ip:port\\'" -m set --match-set KUBE-NODE-PORT-SCTP-HASH dst,dst -j KUBE-MARK-MASQ\n`);
    expect(ipvsadmList(st.ipvs)).toContain("SCTP  192.168.1.2:3905 rr\n");
  });
});
