// programs/policy.ts: verdict tables (PKTGEN packet -> verdict and drop reason) over endpoints with and without
// policy, replies passing through conntrack, and lb4 -> policy chained over the shared pinned maps.
import { beforeAll, describe, expect, it } from "vitest";
import { buildIcmpEcho, buildTcp, buildUdp } from "../../src/packet/index.js";
import { BpfKernel, type BpfObject } from "../../src/ebpf/kernel.js";
import type { BpfProgram } from "../../src/ebpf/program.js";
import { Lb4Maps } from "../../src/k8s/agent/lb-maps.js";
import { PolicyMaps } from "../../src/k8s/agent/policy-maps.js";
import { IdentityAllocator, RESERVED_IDENTITIES } from "../../src/k8s/agent/identity.js";
import { checksumsValid, hdr } from "./lb4-helpers.js";

const OK = 0;
const SHOT = 2;
const DROP_POLICY = 133;
const DROP_POLICY_DENY = 181;
const SYN = 0x02;
const ACK = 0x10;

let kernel: BpfKernel;
let policyObj: BpfObject;
let policy: BpfProgram;
let lb4: BpfProgram;
const ids = new IdentityAllocator();
const FRONTEND = ids.allocate({ app: "frontend" }, "shop");
const BACKEND = ids.allocate({ app: "backend" }, "shop");
const CLIENT = ids.allocate({ app: "client" }, "shop");
const OTHER = ids.allocate({ app: "other" }, "shop");
const A = "10.244.1.10"; // frontend, no policy
const B = "10.244.1.20"; // backend: ingress from FRONTEND on TCP 8080 only; CLIENT denied outright
const C = "10.244.1.30"; // client: egress only UDP 53 (anywhere); ingress enforced, no rules
const D = "10.244.1.40"; // other: no policy
const E = "10.244.1.50"; // another CLIENT pod, no policy of its own

beforeAll(async () => {
  kernel = new BpfKernel({ seed: 3 });
  lb4 = (await kernel.load("programs/lb4.ts")).program();
  policyObj = await kernel.load("programs/policy.ts");
  policy = policyObj.program();
  kernel.ktimeNs = 500n * 1_000_000_000n;
  const pm = new PolicyMaps(kernel);
  pm.upsertIpcache("0.0.0.0/0", RESERVED_IDENTITIES.world);
  for (const [ip, id] of [[A, FRONTEND], [B, BACKEND], [C, CLIENT], [D, OTHER], [E, CLIENT]] as const) pm.upsertIpcache(`${ip}/32`, id);
  pm.upsertEndpoint({ ip: A, id: 10, identity: FRONTEND });
  pm.upsertEndpoint({ ip: B, id: 20, identity: BACKEND, enforceIngress: true });
  pm.upsertEndpoint({ ip: C, id: 30, identity: CLIENT, enforceIngress: true, enforceEgress: true });
  pm.upsertEndpoint({ ip: D, id: 40, identity: OTHER });
  pm.upsertEndpoint({ ip: E, id: 50, identity: CLIENT });
  pm.upsertPolicy({ endpointId: 20, direction: "ingress", identity: FRONTEND, port: 8080, protocol: "TCP" });
  pm.upsertPolicy({ endpointId: 20, direction: "ingress", identity: CLIENT, deny: true });
  pm.upsertPolicy({ endpointId: 30, direction: "egress", port: 53, protocol: "UDP" });
  const lb = new Lb4Maps(kernel);
  lb.upsertBackend({ id: 1, address: B, port: 8080, proto: "TCP" });
  lb.upsertFrontend({ address: "10.96.0.80", port: 80, proto: "TCP", revNatIndex: 1, backendIds: [1] });
}, 120_000);

describe("policy: new connections", () => {
  const table = [
    { name: "FRONTEND -> backend TCP 8080 (allowed by an L3/L4 entry)", pkt: () => buildTcp({ src: A, dst: B, sport: 40001, dport: 8080, flags: SYN }), verdict: OK, reason: 0 },
    { name: "FRONTEND -> backend TCP 9090 (default deny at ingress)", pkt: () => buildTcp({ src: A, dst: B, sport: 40002, dport: 9090, flags: SYN }), verdict: SHOT, reason: DROP_POLICY },
    { name: "FRONTEND -> backend UDP 8080 (protocol differs)", pkt: () => buildUdp({ src: A, dst: B, sport: 40003, dport: 8080 }), verdict: SHOT, reason: DROP_POLICY },
    { name: "OTHER -> backend TCP 8080 (identity not allowed)", pkt: () => buildTcp({ src: D, dst: B, sport: 40004, dport: 8080, flags: SYN }), verdict: SHOT, reason: DROP_POLICY },
    { name: "world -> backend TCP 8080", pkt: () => buildTcp({ src: "198.51.100.7", dst: B, sport: 40005, dport: 8080, flags: SYN }), verdict: SHOT, reason: DROP_POLICY },
    { name: "CLIENT (unenforced pod) -> backend TCP 8080 (deny entry)", pkt: () => buildTcp({ src: E, dst: B, sport: 40006, dport: 8080, flags: SYN }), verdict: SHOT, reason: DROP_POLICY_DENY },
    { name: "client -> backend TCP 8080 (client's egress allows only UDP 53)", pkt: () => buildTcp({ src: C, dst: B, sport: 40007, dport: 8080, flags: SYN }), verdict: SHOT, reason: DROP_POLICY },
    { name: "client -> other UDP 53 (egress {any, 53, UDP}; other unenforced)", pkt: () => buildUdp({ src: C, dst: D, sport: 40008, dport: 53 }), verdict: OK, reason: 0 },
    { name: "client -> world UDP 53", pkt: () => buildUdp({ src: C, dst: "8.8.8.8", sport: 40009, dport: 53 }), verdict: OK, reason: 0 },
    { name: "client -> world TCP 443", pkt: () => buildTcp({ src: C, dst: "8.8.8.8", sport: 40010, dport: 443, flags: SYN }), verdict: SHOT, reason: DROP_POLICY },
    { name: "client -> world ICMP echo (no ICMP rule)", pkt: () => buildIcmpEcho({ src: C, dst: "8.8.8.8", id: 9, seq: 1 }), verdict: SHOT, reason: DROP_POLICY },
    { name: "other -> frontend (neither enforced)", pkt: () => buildTcp({ src: D, dst: A, sport: 40011, dport: 80, flags: SYN }), verdict: OK, reason: 0 },
    { name: "world -> client UDP 5000 (client ingress enforced, no rules)", pkt: () => buildUdp({ src: "8.8.4.4", dst: C, sport: 53, dport: 5000 }), verdict: SHOT, reason: DROP_POLICY },
  ];
  it.each(table)("$name", ({ pkt, verdict, reason }) => {
    const p = pkt();
    const r = policy.run(p);
    expect(r.retval).toBe(verdict);
    if (verdict === SHOT) expect(r.dropReason).toBe(reason);
    else expect(Buffer.from(r.packet).equals(Buffer.from(p))).toBe(true);
  });

  it("drops are counted per reason and direction in cilium_metrics; allow entries count their packets", () => {
    const m = policyObj.map("cilium_metrics").typed();
    expect((m.lookup({ reason: DROP_POLICY, dir: 1 })?.count as number) ?? 0).toBe(5); // ingress default denies
    expect((m.lookup({ reason: DROP_POLICY, dir: 2 })?.count as number) ?? 0).toBe(3); // client's egress
    expect((m.lookup({ reason: DROP_POLICY_DENY, dir: 1 })?.count as number) ?? 0).toBe(1);
    expect(new PolicyMaps(kernel).packets({ endpointId: 20, direction: "ingress", identity: FRONTEND, port: 8080, protocol: "TCP" })).toBe(1);
  });
});

describe("policy: connections and replies", () => {
  it("replies of allowed connections pass although the replying side's direction is enforced", () => {
    // client -> world UDP 53 was allowed; the answer enters the client whose ingress allows nothing.
    expect(policy.run(buildUdp({ src: C, dst: "1.1.1.1", sport: 41000, dport: 53 })).retval).toBe(OK);
    expect(policy.run(buildUdp({ src: "1.1.1.1", dst: C, sport: 53, dport: 41000 })).retval).toBe(OK);
    // The same packet without the request first is dropped.
    expect(policy.run(buildUdp({ src: "1.1.1.1", dst: C, sport: 53, dport: 41001 })).retval).toBe(SHOT);
    // ICMP: an echo reply matches its request by the identifier.
    expect(policy.run(buildIcmpEcho({ src: D, dst: A, id: 77, seq: 1 })).retval).toBe(OK);
  });

  it("later packets of an allowed connection pass from conntrack; the CT entry carries the source identity", () => {
    for (let i = 0; i < 5; i++) expect(policy.run(buildTcp({ src: A, dst: B, sport: 40001, dport: 8080, flags: ACK })).retval).toBe(OK);
    const e = policyObj.map("cilium_ct4_global").typed().lookup({ saddr: A, daddr: B, sport: 40001, dport: 8080, nexthdr: 6, flags: 0 });
    expect(e).toMatchObject({ src_sec_id: FRONTEND, packets: 6 });
  });

  it("lb4 -> policy over shared maps: the DNATed packet is checked against the backend's policy; replies pass both", () => {
    const chain = (p: Uint8Array) => {
      const a = lb4.run(p);
      if (a.retval !== OK) return a;
      return policy.run(a.packet);
    };
    const ok = chain(buildTcp({ src: A, dst: "10.96.0.80", sport: 42000, dport: 80, flags: SYN }));
    expect(ok.retval).toBe(OK);
    expect(hdr(ok.packet)).toMatchObject({ daddr: B, dport: 8080 });
    expect(checksumsValid(ok.packet)).toBe(true);
    const denied = chain(buildTcp({ src: D, dst: "10.96.0.80", sport: 42001, dport: 80, flags: SYN }));
    expect(denied.retval).toBe(SHOT);
    expect(denied.dropReason).toBe(DROP_POLICY);
    // The reply: policy first (egress side of the backend), then lb4's reverse NAT.
    const rp = policy.run(buildTcp({ src: B, dst: A, sport: 8080, dport: 42000, flags: 0x12 }));
    expect(rp.retval).toBe(OK);
    const back = lb4.run(rp.packet);
    expect(hdr(back.packet)).toMatchObject({ saddr: "10.96.0.80", sport: 80 });
  });
});
