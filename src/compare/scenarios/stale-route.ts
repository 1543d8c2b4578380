// Stale point-to-point route (Gen 2, Calico): each pod is reached through a /32 route on the node pointing at
// its host-side veth (`10.x.y.z dev caliXXXX scope link`). When a pod is deleted and the CNI DEL does not clean
// up (the plugin timed out, the netns was torn down under it), the host end of the veth can survive with its peer
// gone and the route stays. Traffic to that IP is routed into the dead veth and dropped there: veth_xmit with no
// live peer counts tx_dropped, and nothing tells the sender (no ICMP; the client just times out). Gen 1 reaches
// pods over the cni0 bridge with no per-pod route; Gen 3's aws-node also installs /32 routes to the veth.
import { BUILDERS, buildGeneration } from "../../gens/index.js";
import type { GenNumber, PodPlane } from "../../gens/types.js";
import { DROP_NAMES, Ev, exec, ipRoute, macToString, sendIcmpEcho, type VethDevice } from "../../net/index.js";
import { loadDemoCluster } from "../../k8s/demo-cluster.js";
import { parseIpv4 } from "../../packet/index.js";
import { notApplicable, type GenVerdict, type Scenario, type ScenarioResult } from "./types.js";

export interface StaleOutcome {
  routeLine: string;
  lastHop: string;
  dropReason: string;
  icmpBack: number;
  txDropped: number;
  pings: number;
  delivered: number;
}

export function runStale(gen: GenNumber, pings = 3): StaleOutcome & { victim: PodPlane; hops: string[] } {
  const g = buildGeneration(gen, loadDemoCluster());
  const victim = g.pods.find((p) => p.hostIf !== null && p.key.startsWith("shop/backend"))!;
  const client = g.pods.find((p) => p.hostIf !== null && p.node !== victim.node)!;
  const node = g.nodes.find((n) => n.name === victim.node)!;
  // The pod is gone: its namespace (and eth0) torn down; the host-side veth and the /32 route were not removed.
  const podEth = victim.ns.dev("eth0");
  // Felix (and aws-node) pin the workload's MAC with a permanent neighbour entry next to the /32 route, so the
  // node never ARPs for a pod: a packet for it goes straight to veth_xmit.
  if (gen !== 1) exec(node.ns, `ip neigh replace ${victim.ip} lladdr ${macToString(podEth.mac)} dev ${victim.hostIf} nud permanent`);
  victim.ns.setLink(podEth, false);
  const hostVeth = node.ns.dev(victim.hostIf!) as VethDevice;
  const routeLine = ipRoute(node.ns).split("\n").find((l) => l.startsWith(victim.ip + " ") || l.startsWith(victim.ip + "/")) ?? "";
  let icmpBack = 0, delivered = 0, lastHop = "", dropReason = "", hops: string[] = [];
  for (let i = 0; i < pings; i++) {
    g.world.trace.clear();
    const id = sendIcmpEcho(client.ns, { dst: parseIpv4(victim.ip), id: 77, seq: i + 1 });
    g.world.run();
    const tr = g.world.trace;
    for (let k = 0; k < tr.count; k++) {
      const r = tr.get(k);
      if (r.ev === Ev.ICMP_SENT) icmpBack++;
      if ((r.ev === Ev.SOCKET_RX || r.ev === Ev.LOCAL_DELIVER) && r.pkt === id) delivered++;
      if (r.ev === Ev.DROP && r.pkt === id) {
        dropReason = DROP_NAMES[r.a] ?? String(r.a);
        lastHop = `${g.world.namespaces[r.ns]?.name ?? "?"} ${g.world.namespaces[r.ns]?.devByIndex(r.ifindex)?.name ?? ""}`.trim();
      }
    }
    if (i === 0) hops = g.world.renderTrace(id);
  }
  return { victim, hops, routeLine, lastHop, dropReason, icmpBack, txDropped: hostVeth.txDropped, pings, delivered };
}

export const staleRoute: Scenario = {
  name: "stale-route",
  title: "stale point-to-point route (Gen 2): a deleted pod's /32 route left behind, traffic silently dropped into a dead veth",
  gens: [2],
  async run(gens: GenNumber[]): Promise<ScenarioResult> {
    const happened: string[] = [];
    const counters: Record<string, number> = {};
    const verdicts: GenVerdict[] = [];
    for (const gen of gens) {
      if (gen === 1 || BUILDERS[gen] === undefined) {
        verdicts.push(notApplicable(gen, gen === 1 ? "no per-pod routes (pods sit behind the cni0 bridge)" : "no builder for this generation yet"));
        continue;
      }
      const s = runStale(gen);
      const c = { pings: s.pings, delivered: s.delivered, icmp_back: s.icmpBack, veth_tx_dropped: s.txDropped, route_present: s.routeLine === "" ? 0 : 1 };
      if (gen === 2) {
        Object.assign(counters, c);
        happened.push(`pod ${s.victim.key} (${s.victim.ip}) deleted on ${s.victim.node}; CNI DEL did not run: host veth ${s.victim.hostIf} left without its peer`);
        happened.push(`  ip route on ${s.victim.node} still has: ${s.routeLine || "(none)"}`);
        happened.push(`  ${s.pings} pings from another node: the last hop is ${s.lastHop} (${s.dropReason}), ${s.delivered} delivered, ${s.icmpBack} ICMP errors back`);
        happened.push("  path of the first ping:");
        for (const h of s.hops) happened.push(`    ${h}`);
      }
      verdicts.push({ gen, applies: gen === 2, verdict: `route ${c.route_present ? "still present" : "gone"}; ${s.pings - s.delivered}/${s.pings} pings dropped at ${s.lastHop} (${s.dropReason}), ${s.icmpBack} ICMP back${s.icmpBack === 0 ? ": the client only times out" : ""}`, counters: c });
    }
    return { name: this.name, title: this.title, happened, counters, gens: verdicts };
  },
};
