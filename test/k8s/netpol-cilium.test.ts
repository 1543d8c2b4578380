// Gen 4's enforcement: the Cilium-style translation written into the maps of programs/policy.ts, and the program
// run on the first packet of every probe (all pods as endpoints of one node, so the one program checks the
// source's egress and the destination's ingress), against the reference semantics. Known difference: ipBlock
// peers do not select pods in Cilium (pods keep their own identity in the ipcache), so those cells are expected
// to follow Cilium, not the address-based reference.
import { beforeAll, describe, expect, it } from "vitest";
import { BpfKernel } from "../../src/ebpf/kernel.js";
import { IdentityAllocator, RESERVED_IDENTITIES } from "../../src/k8s/agent/identity.js";
import { PolicyMaps } from "../../src/k8s/agent/policy-maps.js";
import { ciliumPolicy, IDENTITY_SCOPE_LOCAL, writeCiliumPolicy } from "../../src/k8s/netpol/cilium.js";
import { connectionAllowed, podKeyOf, probeCases } from "../../src/k8s/netpol/semantics.js";
import { buildTcp, buildUdp } from "../../src/packet/index.js";
import { CASES } from "../fixtures/netpol/cases.js";
import { xyzCluster } from "../fixtures/netpol/xyz.js";

const OK = 0;
const SYN = 0x02;

beforeAll(async () => {
  // Compile once (the loader caches the build); each case loads its own kernel and maps.
  await new BpfKernel({ seed: 1 }).load("programs/policy.ts");
}, 120_000);

describe("Gen 4 policy program with the Cilium-style translation vs the reference", () => {
  it.each(CASES.map((c) => [c.name, c] as const))("%s", async (_n, c) => {
    const cluster = xyzCluster(c.policies, { protocols: ["TCP", "UDP"] });
    const kernel = new BpfKernel({ seed: 7 });
    const prog = (await kernel.load("programs/policy.ts")).program();
    kernel.ktimeNs = 100n * 1_000_000_000n;
    const maps = new PolicyMaps(kernel);
    const ids = new IdentityAllocator();
    maps.upsertIpcache("0.0.0.0/0", RESERVED_IDENTITIES.world);
    for (const p of cluster.pods) maps.upsertIpcache(`${p.podIP}/32`, ids.allocate(p.metadata.labels, p.metadata.namespace));
    const state = ciliumPolicy(cluster, ids, cluster.pods.map((pod, i) => ({ pod, id: i + 1 })));
    writeCiliumPolicy(maps, state);
    const ipBlock = c.policies.includes("ipBlock");
    if (ipBlock) expect(state.cidrs.every((x) => x.identity > IDENTITY_SCOPE_LOCAL)).toBe(true);
    const wrong: string[] = [];
    let sport = 30000;
    for (const p of probeCases(cluster)) {
      const o = { src: p.from.podIP, dst: p.to.podIP, sport: sport++, dport: p.port };
      const got = prog.run(p.protocol === "TCP" ? buildTcp({ ...o, flags: SYN }) : buildUdp(o)).retval === OK;
      // Cilium: an ipBlock peer never selects a pod, so it adds nothing pod to pod.
      const want = ipBlock ? connectionAllowed({ ...cluster, networkPolicies: cluster.networkPolicies.map((pol) => ({ ...pol, egress: pol.egress.map((r) => ({ ...r, peers: r.peers.filter((x) => x.ipBlock === null) })).filter((r) => r.peers.length > 0) })) }, p.from, p.to, p.port, p.protocol) : connectionAllowed(cluster, p.from, p.to, p.port, p.protocol);
      if (got !== want) wrong.push(`${podKeyOf(p.from)} -> ${podKeyOf(p.to)} ${p.port}/${p.protocol}: got ${got ? "allow" : "deny"}`);
    }
    expect(wrong).toEqual([]);
  });
});
