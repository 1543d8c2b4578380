// EndpointSlice churn under load. A Service has 4 backends and 200 established connections; then backend 4 is
// removed (pod terminating) and backend 5 added, while the connections keep sending and new ones open.
// Gen 1-3: kube-proxy rewrites KUBE-SVC/KUBE-SEP, but an established connection never walks the nat table again:
// its conntrack entry keeps the DNAT binding, so it stays on its backend, even the removed one (kube-proxy flushes
// conntrack only for UDP endpoints that went away). New connections spread over the new set.
// Gen 4: lb4 follows its CT map entry while the entry's backend still exists; a connection whose backend was
// deleted from the backends map is load-balanced again. Maglev vs random: for a connection that has no CT entry
// (another node, or an entry lost to eviction), Maglev's lookup table moves only about 1/N of the flow space when a
// backend changes, a modulo hash (and any random choice) moves most of it.
import { buildTcp } from "../../packet/index.js";
import { Conntrack, ctIndex } from "../../netfilter/conntrack.js";
import { NF_NAT_MANIP_DST, natSetupInfo, parseNatRange } from "../../netfilter/nat.js";
import { computeMaglevTable } from "../../ebpf/maglev.js";
import { SVC_FLAG2_MAGLEV } from "../../k8s/agent/lb-maps.js";
import type { GenNumber } from "../../gens/types.js";
import { dstOf, loadLb4 } from "./lb4-host.js";
import type { GenVerdict, Scenario, ScenarioResult } from "./types.js";

const L3 = 14;
const BE = (n: number) => `10.244.9.${n}`;
const client = (i: number) => `10.244.1.${1 + (i % 250)}`;
const sportOf = (i: number) => 30000 + i;

/** xorshift for the statistic match's random choice (seeded: same run, same numbers). */
function rand(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 4294967296;
  };
}

export interface ChurnOutcome {
  established: number;
  /** Connections whose backend survived the change. */
  survivors: number;
  kept: number;
  on_removed_backend: number;
  new_flows: number;
  new_spread: Record<string, number>;
}

/** Gen 1-3: conntrack + the DNAT kube-proxy's rules make (backend picked as `-m statistic --mode random` would). */
export function runNetfilterChurn(established = 200, fresh = 400): ChurnOutcome {
  const ct = new Conntrack();
  const r = rand(5);
  let backends = [1, 2, 3, 4];
  const open = (i: number, sport: number): string => {
    const f = buildTcp({ src: client(i), dst: "10.96.0.80", sport, dport: 80, flags: 0x02, seq: 100 });
    const ref = ct.in(f, L3, f.length - L3);
    const be = BE(backends[Math.floor(r() * backends.length)]!);
    natSetupInfo(ct, ctIndex(ref), parseNatRange(`${be}:8080`), NF_NAT_MANIP_DST);
    ct.confirm(ref);
    // The backend's SYN-ACK (reply direction, before un-DNAT) completes the handshake.
    const sa = buildTcp({ src: be, dst: client(i), sport: 8080, dport: sport, flags: 0x12, seq: 500, ack: 101 });
    ct.confirm(ct.in(sa, L3, sa.length - L3));
    return be;
  };
  const first: string[] = [];
  for (let i = 0; i < established; i++) first.push(open(i, sportOf(i)));
  backends = [1, 2, 3, 5]; // EndpointSlice update: pod 4 terminating, pod 5 ready
  let kept = 0, onRemoved = 0;
  for (let i = 0; i < established; i++) {
    const f = buildTcp({ src: client(i), dst: "10.96.0.80", sport: sportOf(i), dport: 80, flags: 0x10, seq: 101, ack: 501 });
    const ref = ct.in(f, L3, f.length - L3);
    ct.confirm(ref);
    // The DNAT target lives in the entry's reply tuple source.
    const be = ref >= 0 ? formatIp(ct.tSrc[ctIndex(ref) * 2 + 1]!) : "";
    if (be === first[i]) kept++;
    if (be === BE(4)) onRemoved++;
  }
  const spread: Record<string, number> = {};
  for (let i = 0; i < fresh; i++) {
    const be = open(established + i, 50000 + i);
    spread[be] = (spread[be] ?? 0) + 1;
  }
  return { established, survivors: first.filter((b) => b !== BE(4)).length, kept, on_removed_backend: onRemoved, new_flows: fresh, new_spread: spread };
}

function formatIp(a: number): string {
  return `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`;
}

/** Gen 4: lb4 with a random and a Maglev Service, same churn. */
export async function runLb4Churn(established = 200, fresh = 400): Promise<{ random: ChurnOutcome; maglev: ChurnOutcome }> {
  const h = await loadLb4(13);
  for (let n = 1; n <= 5; n++) h.lb.upsertBackend({ id: n, address: BE(n), port: 8080, proto: "TCP" });
  const name = (id: number) => `${BE(id)}:8080/TCP`;
  const svc = (vip: string, rev: number, ids: number[], maglev: boolean) =>
    h.lb.upsertFrontend({ address: vip, port: 80, proto: "TCP", revNatIndex: rev, backendIds: ids, flags2: maglev ? SVC_FLAG2_MAGLEV : 0 }, name);
  svc("10.96.0.80", 1, [1, 2, 3, 4], false);
  svc("10.96.0.81", 2, [1, 2, 3, 4], true);
  const send = (vip: string, i: number, sport: number, flags: number) => dstOf(h.prog.run(buildTcp({ src: client(i), dst: vip, sport, dport: 80, flags })).packet).split(":")[0]!;
  const first: Record<string, string[]> = { "10.96.0.80": [], "10.96.0.81": [] };
  for (const vip of Object.keys(first)) for (let i = 0; i < established; i++) first[vip]!.push(send(vip, i, sportOf(i), 0x02));
  svc("10.96.0.80", 1, [1, 2, 3, 5], false);
  svc("10.96.0.81", 2, [1, 2, 3, 5], true);
  h.lb.deleteBackend(4);
  const out: ChurnOutcome[] = [];
  for (const vip of Object.keys(first)) {
    let kept = 0, onRemoved = 0;
    for (let i = 0; i < established; i++) {
      const be = send(vip, i, sportOf(i), 0x10);
      if (be === first[vip]![i]) kept++;
      if (be === BE(4)) onRemoved++;
    }
    const spread: Record<string, number> = {};
    for (let i = 0; i < fresh; i++) {
      const be = send(vip, established + i, 50000 + i, 0x02);
      spread[be] = (spread[be] ?? 0) + 1;
    }
    out.push({ established, survivors: first[vip]!.filter((b) => b !== BE(4)).length, kept, on_removed_backend: onRemoved, new_flows: fresh, new_spread: spread });
  }
  return { random: out[0]!, maglev: out[1]! };
}

/**
 * Fraction of stateless flows (no conntrack / CT entry) that change backend when backend 4 of 4 is removed:
 * Maglev's table, a hash mod N, and a fresh random choice (kube-proxy's statistic match, lb4's random mode).
 */
export function reassignment(m = 16381): { maglev_moved: number; modulo_moved: number; random_moved: number; removed_share: number } {
  const before = [1, 2, 3, 4].map((n) => `${BE(n)}:8080/TCP`);
  const after = [1, 2, 3].map((n) => `${BE(n)}:8080/TCP`);
  const r = rand(9);
  let rnd = 0;
  const a = computeMaglevTable(before, m);
  const b = computeMaglevTable(after, m);
  let mag = 0, mod = 0, removed = 0;
  for (let s = 0; s < m; s++) {
    if (before[a[s]!] !== after[b[s]!]) mag++;
    if (before[a[s]!] === before[3]) removed++;
    // hash mod N over a sorted list: a change of membership renumbers the backends after the change point
    const x = Math.imul(s, 0x9e3779b1) >>> 0;
    if (before[x % before.length] !== after[x % after.length]) mod++;
    if (before[Math.floor(r() * before.length)] !== after[Math.floor(r() * after.length)]) rnd++;
  }
  return { maglev_moved: mag / m, modulo_moved: mod / m, random_moved: rnd / m, removed_share: removed / m };
}

export const endpointChurn: Scenario = {
  name: "endpoint-churn",
  title: "EndpointSlice churn under load: established connections keep their backend (conntrack / CT map), new ones spread; Maglev vs random",
  gens: [1, 2, 3, 4],
  async run(gens: GenNumber[]): Promise<ScenarioResult> {
    const happened: string[] = [];
    const counters: Record<string, number> = {};
    const verdicts: GenVerdict[] = [];
    const fmt = (s: Record<string, number>) => Object.entries(s).sort().map(([k, v]) => `${k}=${v}`).join(" ");
    happened.push("Service 10.96.0.80 with backends 10.244.9.1-4, 200 established connections; then the EndpointSlice drops .4 and adds .5");
    if (gens.some((g) => g !== 4)) {
      const n = runNetfilterChurn();
      happened.push(`  Gen 1-3 (conntrack): established kept their backend ${n.kept}/${n.established} (still on the removed .4: ${n.on_removed_backend}); new ${n.new_flows}: ${fmt(n.new_spread)}`);
      Object.assign(counters, { nf_kept: n.kept, nf_on_removed: n.on_removed_backend, nf_new_to_removed: n.new_spread[BE(4)] ?? 0 });
      for (const g of gens) if (g !== 4) verdicts.push({ gen: g, applies: true, verdict: `conntrack keeps ${n.kept}/${n.established} on their backend (incl. ${n.on_removed_backend} on the removed pod until it closes); new connections use the new set`, counters: { kept: n.kept, on_removed_backend: n.on_removed_backend, new_to_removed: n.new_spread[BE(4)] ?? 0 } });
    }
    if (gens.includes(4)) {
      const l = await runLb4Churn();
      for (const [k, o] of [["random", l.random], ["maglev", l.maglev]] as const) {
        happened.push(`  Gen 4 lb4 (${k}): established kept ${o.kept}/${o.established} (${o.survivors} had a surviving backend; on removed .4 now: ${o.on_removed_backend}); new ${o.new_flows}: ${fmt(o.new_spread)}`);
        Object.assign(counters, { [`lb4_${k}_kept`]: o.kept, [`lb4_${k}_on_removed`]: o.on_removed_backend, [`lb4_${k}_new_to_removed`]: o.new_spread[BE(4)] ?? 0 });
      }
      verdicts.push({ gen: 4, applies: true, verdict: `CT map keeps ${l.random.kept}/${l.random.established} (random) and ${l.maglev.kept}/${l.maglev.established} (Maglev); connections of the deleted backend re-balanced`, counters: { random_kept: l.random.kept, maglev_kept: l.maglev.kept, on_removed_backend: l.random.on_removed_backend + l.maglev.on_removed_backend } });
    }
    const r = reassignment();
    happened.push(`  backend .4 of 4 removed, flows without state (another node, lost entry): Maglev moves ${(r.maglev_moved * 100).toFixed(1)}% of the flow space (the removed backend held ${(r.removed_share * 100).toFixed(1)}%), hash mod N ${(r.modulo_moved * 100).toFixed(1)}%, a fresh random pick ${(r.random_moved * 100).toFixed(1)}%`);
    Object.assign(counters, { maglev_moved_permille: Math.round(r.maglev_moved * 1000), modulo_moved_permille: Math.round(r.modulo_moved * 1000), random_moved_permille: Math.round(r.random_moved * 1000), removed_share_permille: Math.round(r.removed_share * 1000) });
    verdicts.sort((a, b) => a.gen - b.gen);
    return { name: this.name, title: this.title, happened, counters, gens: verdicts };
  },
};
