// The UDP DNAT conntrack insertion race (the "5 second DNS delay"): glibc sends the A and AAAA queries of one
// lookup at once from one socket (same 5-tuple). On a node, both reach PREROUTING on different CPUs before either
// is confirmed, so each gets its own unconfirmed conntrack entry, and kube-proxy's KUBE-SVC statistic rule DNATs
// each to a CoreDNS endpoint on its own. The second to reach __nf_conntrack_confirm finds the tuple taken:
// before the clash-resolution fixes it is dropped (insert_failed++), the client hears nothing for that query and
// resends after resolv.conf's timeout (5 s). Linux 6.x resolves UDP clashes (same NAT: attach to the winner;
// different backend: a 1 s NAT_CLASH entry) and both answers arrive. Mitigations: single-request-reopen (the
// second query from a new socket, another source port: two tuples, no clash), NodeLocal DNSCache (queries go to a
// link-local address on the node whose raw-table rules say NOTRACK: no entry, no DNAT, no race), and Gen 4, where
// lb4 load-balances from its own CT map with no confirmation step.
import { buildUdp, parseIpv4 } from "../../packet/index.js";
import { CT_DROP, CT_UNTRACKED, type Conntrack } from "../../netfilter/conntrack.js";
import { NF_NAT_MANIP_DST, natSetupInfo, parseNatRange } from "../../netfilter/nat.js";
import { natPacket } from "../../netfilter/nat-packet.js";
import type { GenNumber } from "../../gens/types.js";
import { conntrackFor, type KernelEra } from "./classic-conntrack.js";
import { dstOf, loadLb4, TC_ACT_OK } from "./lb4-host.js";
import type { GenVerdict, Scenario, ScenarioResult } from "./types.js";

const L3 = 14;
const CLIENT = "10.244.1.5";
const KUBE_DNS = "10.96.0.10";
export const COREDNS = ["10.244.2.7", "10.244.3.8"];
/** resolv.conf `options timeout:5` (glibc's default RES_TIMEOUT). */
export const RES_TIMEOUT_S = 5;
/** Round trip of a cluster DNS answer in this model (node-to-node plus CoreDNS). */
const RTT_S = 0.001;

export type Mitigation = "none" | "single-request-reopen" | "nodelocal-dnscache";

export interface RaceOutcome {
  era: KernelEra;
  mitigation: Mitigation;
  /** Same CoreDNS endpoint chosen for both queries? */
  sameBackend: boolean;
  delivered: number;
  dropped: number;
  insert_failed: number;
  clash_resolve: number;
  /** Time until the client holds both answers (a lost query is resent after RES_TIMEOUT_S). */
  lookup_ms: number;
}

function query(sport: number, dst: string, qtype: number): Uint8Array {
  const payload = new Uint8Array(33);
  payload[1] = qtype; // the DNS id differs per query type; the 5-tuple does not
  return buildUdp({ src: CLIENT, dst, sport, dport: 53, payload });
}

/** PREROUTING for both queries (conntrack + kube-proxy DNAT), then confirmation in arrival order. */
export function runRace(era: KernelEra, mitigation: Mitigation, backends: [number, number]): RaceOutcome {
  const ct: Conntrack = conntrackFor(era);
  const sports = mitigation === "single-request-reopen" ? [41000, 41001] : [41000, 41000];
  const dst = mitigation === "nodelocal-dnscache" ? "169.254.20.10" : KUBE_DNS;
  const frames = [query(sports[0]!, dst, 1), query(sports[1]!, dst, 28)];
  const refs = frames.map((f, k) => {
    if (mitigation === "nodelocal-dnscache") return CT_UNTRACKED; // raw PREROUTING -d 169.254.20.10 -j NOTRACK
    const ref = ct.in(f, L3, f.length - L3);
    if (ref >= 0) {
      // KUBE-SVC-TCOU7JCQXEZGVUNU -> KUBE-SEP-*: DNAT --to-destination COREDNS[k]:53 (statistic picked it)
      natSetupInfo(ct, ref >>> 3, parseNatRange(`${COREDNS[backends[k]!]}:53`), NF_NAT_MANIP_DST);
      natPacket(ct, ref, NF_NAT_MANIP_DST, f, L3);
    }
    return ref;
  });
  let delivered = 0;
  for (const ref of refs) if (ct.confirm(ref) !== CT_DROP) delivered++;
  const dropped = 2 - delivered;
  return {
    era, mitigation, sameBackend: backends[0] === backends[1], delivered, dropped,
    insert_failed: ct.stats.insert_failed, clash_resolve: ct.stats.clash_resolve,
    lookup_ms: Math.round((dropped > 0 ? RES_TIMEOUT_S + RTT_S : RTT_S) * 1000),
  };
}

/** Gen 4: both queries through lb4 (the second finds the first's CT entry and follows it). */
export async function runLb4Race(): Promise<{ delivered: number; dropped: number; backends: string[] }> {
  const h = await loadLb4(3);
  COREDNS.forEach((a, k) => h.lb.upsertBackend({ id: k + 1, address: a, port: 53, proto: "UDP" }));
  h.lb.upsertFrontend({ address: KUBE_DNS, port: 53, proto: "UDP", revNatIndex: 1, backendIds: [1, 2] });
  const out = [query(41000, KUBE_DNS, 1), query(41000, KUBE_DNS, 28)].map((f) => h.prog.run(f));
  const ok = out.filter((r) => r.retval === TC_ACT_OK);
  return { delivered: ok.length, dropped: 2 - ok.length, backends: ok.map((r) => dstOf(r.packet)) };
}

export const udpDnsRace: Scenario = {
  name: "udp-dns-race",
  title: "UDP DNAT conntrack insertion race: A and AAAA from one socket, one dropped at confirmation, 5 s retry",
  gens: [1, 2, 3, 4],
  async run(gens: GenNumber[]): Promise<ScenarioResult> {
    const happened: string[] = [];
    const counters: Record<string, number> = {};
    const verdicts: GenVerdict[] = [];
    const rows: RaceOutcome[] = [];
    for (const era of ["classic", "6.x"] as const) for (const b of [[0, 0], [0, 1]] as [number, number][]) rows.push(runRace(era, "none", b));
    for (const m of ["single-request-reopen", "nodelocal-dnscache"] as const) rows.push(runRace("classic", m, [0, 1]));
    happened.push(`pod ${CLIENT} sends A and AAAA for one name at once from 0.0.0.0:41000 to kube-dns ${KUBE_DNS}:53; both are in PREROUTING before either is confirmed`);
    for (const r of rows) {
      const label = `${r.era === "classic" ? "kernel < 5.0 (classic)" : "Linux 6.x"}, ${r.mitigation === "none" ? "no mitigation" : r.mitigation}, ${r.sameBackend ? "same CoreDNS" : "different CoreDNS"}`;
      happened.push(`  ${label}: ${r.delivered}/2 delivered, insert_failed=${r.insert_failed} clash_resolve=${r.clash_resolve}, answers after ${r.lookup_ms} ms`);
    }
    const classic = rows.filter((r) => r.era === "classic" && r.mitigation === "none");
    Object.assign(counters, {
      classic_insert_failed: classic.reduce((a, r) => a + r.insert_failed, 0),
      classic_dropped: classic.reduce((a, r) => a + r.dropped, 0),
      classic_lookup_ms: Math.max(...classic.map((r) => r.lookup_ms)),
      v6_insert_failed: rows.filter((r) => r.era === "6.x").reduce((a, r) => a + r.insert_failed, 0),
      v6_clash_resolve: rows.filter((r) => r.era === "6.x").reduce((a, r) => a + r.clash_resolve, 0),
      reopen_dropped: rows.find((r) => r.mitigation === "single-request-reopen")!.dropped,
      nodelocal_dropped: rows.find((r) => r.mitigation === "nodelocal-dnscache")!.dropped,
    });
    for (const g of gens) {
      if (g !== 4) {
        verdicts.push({ gen: g, applies: true, verdict: `kube-proxy DNAT + conntrack: classic kernel drops one query (insert_failed=${classic[0]!.insert_failed}), lookup ${classic[0]!.lookup_ms} ms; 6.x resolves the clash; single-request-reopen / NodeLocal DNSCache avoid it`, counters: { classic_dropped: counters.classic_dropped!, v6_insert_failed: counters.v6_insert_failed! } });
        continue;
      }
      const l = await runLb4Race();
      happened.push(`  Gen 4 lb4: ${l.delivered}/2 delivered, both to ${[...new Set(l.backends)].join(" and ")} (the second query found the first's CT entry)`);
      Object.assign(counters, { lb4_delivered: l.delivered, lb4_dropped: l.dropped });
      verdicts.push({ gen: 4, applies: true, verdict: `lb4 (no nf_conntrack for the Service): ${l.delivered}/2 delivered, no confirmation step to lose`, counters: { delivered: l.delivered, dropped: l.dropped, backends: new Set(l.backends).size } });
    }
    return { name: this.name, title: this.title, happened, counters, gens: verdicts };
  },
};
