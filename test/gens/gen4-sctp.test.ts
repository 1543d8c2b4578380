// SCTP through Gen 4: lb4 balances SCTP Services (DNAT of the destination port to the targetPort and the reverse NAT
// of replies, with the CRC32c recomputed over the packet since SCTP has no pseudo-header checksum), and policy
// matches SCTP ports; the same NetworkPolicy verdicts in Gen 1-4.
import { beforeAll, describe, expect, it } from "vitest";
import { BpfKernel } from "../../src/ebpf/kernel.js";
import type { BpfProgram } from "../../src/ebpf/program.js";
import { buildGen4, prepareGen4Programs } from "../../src/gens/gen4.js";
import { installCiliumPolicy } from "../../src/gens/policy-cilium.js";
import { buildWithPolicy } from "../../src/gens/policy-iptables.js";
import { crc32c, probe, sctpInit } from "../../src/gens/policy-probe.js";
import { podOf, type BuiltGeneration } from "../../src/gens/types.js";
import { Lb4Maps } from "../../src/k8s/agent/lb-maps.js";
import { Ev, sendIpv4 } from "../../src/net/index.js";
import { parseIpv4 } from "../../src/packet/addr.js";
import { xyzCluster } from "../fixtures/netpol/xyz.js";
import { checksumsValid, hdr, IP } from "../programs/lb4-helpers.js";

const OK = 0;

/** An Ethernet frame around sctpInit's IPv4 packet. */
function frame(src: string, dst: string, sport: number, dport: number): Uint8Array {
  const ip = sctpInit(parseIpv4(src), parseIpv4(dst), sport, dport);
  const f = new Uint8Array(14 + ip.length);
  f[12] = 0x08;
  f.set(ip, 14);
  return f;
}

/** The SCTP checksum in the packet (little-endian bytes, as Linux stores it) equals a fresh CRC32c. */
function sctpCrcValid(p: Uint8Array): boolean {
  const ihl = (p[IP]! & 15) << 2;
  const l4 = IP + ihl;
  const len = ((p[IP + 2]! << 8) | p[IP + 3]!) - ihl;
  const c = p.slice(l4, l4 + len);
  const stored = (c[8]! | (c[9]! << 8) | (c[10]! << 16) | (c[11]! << 24)) >>> 0;
  c.fill(0, 8, 12);
  return crc32c(c, 0, len) === stored;
}

describe("lb4: SCTP Services", () => {
  let lb4: BpfProgram;
  beforeAll(async () => {
    const kernel = new BpfKernel({ seed: 5 });
    lb4 = (await kernel.load("programs/lb4.ts")).program();
    kernel.ktimeNs = 100n * 1_000_000_000n;
    const lb = new Lb4Maps(kernel);
    lb.upsertBackend({ id: 1, address: "10.244.2.7", port: 3868, proto: "SCTP" });
    lb.upsertFrontend({ address: "10.96.0.90", port: 38680, proto: "SCTP", revNatIndex: 9, backendIds: [1] });
  }, 120_000);

  it("the test's CRC32c is RFC 9260's (check value of '123456789' is 0xE3069283)", () => {
    expect(crc32c(new TextEncoder().encode("123456789"), 0, 9)).toBe(0xe3069283);
  });

  it("an INIT to the frontend is DNATed to the backend's address and port, CRC32c and IPv4 checksum valid", () => {
    const p = frame("10.244.1.5", "10.96.0.90", 5000, 38680);
    expect(sctpCrcValid(p)).toBe(true);
    const r = lb4.run(p);
    expect(r.retval).toBe(OK);
    expect(hdr(r.packet)).toEqual({ saddr: "10.244.1.5", daddr: "10.244.2.7", sport: 5000, dport: 3868, proto: 132 });
    expect(checksumsValid(r.packet)).toBe(true);
    expect(sctpCrcValid(r.packet)).toBe(true);
  });

  it("the backend's reply is reverse-NATed to the frontend, CRC32c valid; an unrelated SCTP packet passes untouched", () => {
    const r = lb4.run(frame("10.244.2.7", "10.244.1.5", 3868, 5000));
    expect(r.retval).toBe(OK);
    expect(hdr(r.packet)).toEqual({ saddr: "10.96.0.90", daddr: "10.244.1.5", sport: 38680, dport: 5000, proto: 132 });
    expect(checksumsValid(r.packet)).toBe(true);
    expect(sctpCrcValid(r.packet)).toBe(true);
    const other = frame("10.244.1.5", "10.244.3.3", 5001, 9999);
    const o = lb4.run(other);
    expect(Buffer.from(o.packet).equals(Buffer.from(other))).toBe(true);
  });

  it("a truncated SCTP header is dropped as invalid", () => {
    const p = frame("10.244.1.5", "10.96.0.90", 5002, 38680).slice(0, 14 + 20 + 8);
    expect(lb4.run(p).retval).toBe(2);
  });
});

// x/a allows SCTP 80 in from anywhere; everything else to x/a is denied. x/a, x/c on n1; x/b, y/a on n2.
const MANIFESTS = `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: sctp-80, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{ports: [{protocol: SCTP, port: 80}]}]
---
apiVersion: v1
kind: Service
metadata: {name: sig, namespace: x}
spec: {selector: {pod: a}, ports: [{name: s, port: 3868, targetPort: 80, protocol: SCTP}]}
`;

describe("SCTP NetworkPolicy verdicts, Gen 1-4", () => {
  const gens: BuiltGeneration[] = [];
  beforeAll(async () => {
    await prepareGen4Programs();
    const cluster = () => xyzCluster(MANIFESTS, { protocols: ["TCP", "SCTP"], ports: [80, 81] });
    for (const gen of [1, 2, 3] as const) gens.push(buildWithPolicy(gen, cluster()));
    const g4 = buildGen4(cluster());
    installCiliumPolicy(g4);
    gens.push(g4);
  }, 600_000);

  it.each([1, 2, 3, 4])("Gen %i: SCTP 80 to x/a passes (same node and cross node), SCTP 81 and TCP 80 are denied", (gen) => {
    const g = gens[gen - 1]!;
    const verdicts = ["x/c", "x/b", "y/a"].flatMap((from) => [
      probe(g, { from, to: "x/a", port: 80, protocol: "SCTP" }),
      probe(g, { from, to: "x/a", port: 81, protocol: "SCTP" }),
      probe(g, { from, to: "x/a", port: 80, protocol: "TCP" }),
    ]);
    expect(verdicts).toEqual([true, false, false, true, false, false, true, false, false]);
    // A pod no policy selects takes any SCTP port.
    expect(probe(g, { from: "x/a", to: "x/b", port: 81, protocol: "SCTP" })).toBe(true);
  });

  it("Gen 4: an SCTP INIT to the Service reaches x/a on the targetPort through lb4 and policy (cross node)", () => {
    const g = gens[3]!;
    const vip = g.cluster.services.find((s) => s.metadata.name === "sig")!.clusterIP;
    const from = podOf(g, "x/b");
    const to = podOf(g, "x/a");
    const trace = g.world.trace;
    trace.enabled = true;
    trace.clear();
    sendIpv4(from.ns, sctpInit(parseIpv4(from.ip), parseIpv4(vip), 5100, 3868));
    g.world.run();
    let delivered = false;
    for (let i = 0; i < trace.count; i++) {
      const r = trace.get(i);
      if (r.ev === Ev.LOCAL_DELIVER && r.ns === to.ns.id && r.a === 132) delivered = true;
    }
    trace.clear();
    expect(delivered).toBe(true);
    const n = (g as ReturnType<typeof buildGen4>).ebpf.find((x) => x.name === from.node)!;
    // The connection's service entry and the translated one are in the client node's CT map.
    const ct = n.chains.lxc.map("cilium_ct4_global").typed();
    const e = ct.lookup({ saddr: from.ip, daddr: to.ip, sport: 5100, dport: 80, nexthdr: 132, flags: 0 });
    expect(e).toBeDefined();
  });
});
