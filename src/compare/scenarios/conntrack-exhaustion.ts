// conntrack table exhaustion. Gen 1-3 track every Service connection in nf_conntrack; once the table holds
// nf_conntrack_max entries, init_conntrack tries early_drop (only entries not ASSURED, in a few buckets) and
// otherwise drops the packet ("nf_conntrack: nf_conntrack: table full, dropping packet", `conntrack -S` drop).
// Short connections fill it with TIME_WAIT entries (ASSURED, 120 s), so NEW connections are refused while the
// ESTABLISHED ones keep flowing. Gen 4's lb4 tracks flows in cilium_ct4_global, a BPF_MAP_TYPE_LRU_HASH: a full
// map never refuses a flow, it forgets the least recently used one, so new flows pass and an idle long-lived
// connection loses its entry (its next packet is load-balanced afresh, possibly to another backend).
import { buildTcp } from "../../packet/index.js";
import { Conntrack, CT_DROP, ctInfo, IP_CT_ESTABLISHED, IP_CT_ESTABLISHED_REPLY } from "../../netfilter/conntrack.js";
import type { GenNumber } from "../../gens/types.js";
import { dstOf, loadLb4, svcCtKey, TC_ACT_OK } from "./lb4-host.js";
import type { GenVerdict, Scenario, ScenarioResult } from "./types.js";

const SYN = 0x02, ACK = 0x10, SYNACK = 0x12, FINACK = 0x11, PSHACK = 0x18;
const L3 = 14;

export const NF_CONNTRACK_MAX = 256;
const LONG_LIVED = 32;
const SHORT = 1000;

/** One client address per connection index, all to one backend pod (the Service already DNATed). */
const client = (i: number) => `10.244.${1 + ((i >> 8) & 63)}.${(i & 255) || 1}`;

function pass(ct: Conntrack, f: Uint8Array): number {
  return ct.confirm(ct.in(f, L3, f.length - L3));
}

export interface NetfilterOutcome {
  established_ok: number;
  new_ok: number;
  new_dropped: number;
  count: number;
  max: number;
  drop: number;
  early_drop: number;
  insert_failed: number;
}

/** The netfilter side: a node's conntrack with a small nf_conntrack_max under short TCP connections. */
export function runNetfilter(max = NF_CONNTRACK_MAX, shortConns = SHORT, longLived = LONG_LIVED): NetfilterOutcome {
  const ct = new Conntrack({ max });
  const srv = "10.244.9.10";
  let t = 0;
  const open = (i: number, sport: number): boolean => {
    const c = client(i);
    if (pass(ct, buildTcp({ src: c, dst: srv, sport, dport: 8080, flags: SYN, seq: 1000 })) === CT_DROP) return false;
    pass(ct, buildTcp({ src: srv, dst: c, sport: 8080, dport: sport, flags: SYNACK, seq: 5000, ack: 1001 }));
    pass(ct, buildTcp({ src: c, dst: srv, sport, dport: 8080, flags: ACK, seq: 1001, ack: 5001 }));
    return true;
  };
  for (let i = 0; i < longLived; i++) open(i, 30000);
  let ok = 0, dropped = 0;
  for (let i = 0; i < shortConns; i++) {
    t += 0.001;
    ct.setTime(t);
    const c = client(longLived + i);
    const sport = 40000 + (i % 20000);
    if (!open(longLived + i, sport)) {
      dropped++;
      continue;
    }
    ok++;
    // An HTTP/1.0-style request and close: the entry sits in TIME_WAIT for 120 s.
    pass(ct, buildTcp({ src: c, dst: srv, sport, dport: 8080, flags: FINACK, seq: 1001, ack: 5001 }));
    pass(ct, buildTcp({ src: srv, dst: c, sport: 8080, dport: sport, flags: FINACK, seq: 5001, ack: 1002 }));
    pass(ct, buildTcp({ src: c, dst: srv, sport, dport: 8080, flags: ACK, seq: 1002, ack: 5002 }));
  }
  let estOk = 0;
  for (let i = 0; i < longLived; i++) {
    const r1 = pass(ct, buildTcp({ src: client(i), dst: srv, sport: 30000, dport: 8080, flags: PSHACK, seq: 1001, ack: 5001, payload: new Uint8Array(10) }));
    const r2 = pass(ct, buildTcp({ src: srv, dst: client(i), sport: 8080, dport: 30000, flags: ACK, seq: 5001, ack: 1011 }));
    if (r1 >= 0 && r2 >= 0 && ctInfo(r1) === IP_CT_ESTABLISHED && ctInfo(r2) === IP_CT_ESTABLISHED_REPLY) estOk++;
  }
  return { established_ok: estOk, new_ok: ok, new_dropped: dropped, count: ct.count, max, drop: ct.stats.drop, early_drop: ct.stats.early_drop, insert_failed: ct.stats.insert_failed };
}

export interface Lb4Outcome {
  ct_map_max: number;
  ct_map_count: number;
  new_flows: number;
  new_ok: number;
  new_dropped: number;
  active_kept: number;
  idle_evicted: number;
  idle_moved_backend: number;
}

/** The Gen 4 side: lb4's LRU CT map, filled past its max_entries by new flows to a ClusterIP. */
export async function runLb4(longLived = LONG_LIVED): Promise<Lb4Outcome> {
  const h = await loadLb4(7);
  for (let n = 1; n <= 8; n++) h.lb.upsertBackend({ id: n, address: `10.244.9.${n}`, port: 8080, proto: "TCP" });
  h.lb.upsertFrontend({ address: "10.96.0.80", port: 80, proto: "TCP", revNatIndex: 1, backendIds: [1, 2, 3, 4, 5, 6, 7, 8] });
  const ctMap = h.obj.map("cilium_ct4_global");
  const ct = ctMap.typed();
  const max = ctMap.spec.maxEntries;
  const first: string[] = [];
  for (let i = 0; i < longLived; i++) first.push(dstOf(h.prog.run(buildTcp({ src: client(i), dst: "10.96.0.80", sport: 30000, dport: 80, flags: SYN })).packet));
  // Each new flow writes two entries (the service entry and the backend entry): max/2 + 10% overflows the map.
  const flows = Math.ceil((max / 2) * 1.1);
  let ok = 0;
  for (let i = 0; i < flows; i++) {
    const r = h.prog.run(buildTcp({ src: `10.${100 + (i >>> 16)}.${(i >>> 8) & 255}.${i & 255}`, dst: "10.96.0.80", sport: 40000, dport: 80, flags: SYN }));
    if (r.retval === TC_ACT_OK) ok++;
    // The even long-lived connections stay busy: a packet every 4096 new flows keeps their entries recent.
    if ((i & 4095) === 0) for (let j = 0; j < longLived; j += 2) h.prog.run(buildTcp({ src: client(j), dst: "10.96.0.80", sport: 30000, dport: 80, flags: PSHACK }));
  }
  let kept = 0, evicted = 0, moved = 0;
  for (let i = 0; i < longLived; i++) {
    const had = ct.lookup(svcCtKey(client(i), 30000, "10.96.0.80", 80, 6)) !== undefined;
    const be = dstOf(h.prog.run(buildTcp({ src: client(i), dst: "10.96.0.80", sport: 30000, dport: 80, flags: PSHACK })).packet);
    if (i % 2 === 0 && had && be === first[i]) kept++;
    if (i % 2 === 1 && !had) {
      evicted++;
      if (be !== first[i]) moved++;
    }
  }
  return { ct_map_max: max, ct_map_count: ctMap.count, new_flows: flows, new_ok: ok, new_dropped: flows - ok, active_kept: kept, idle_evicted: evicted, idle_moved_backend: moved };
}

export const conntrackExhaustion: Scenario = {
  name: "conntrack-exhaustion",
  title: "conntrack table exhaustion: nf_conntrack_max reached under short connections; Gen 4's LRU CT map evicts instead",
  gens: [1, 2, 3, 4],
  async run(gens: GenNumber[]): Promise<ScenarioResult> {
    const happened: string[] = [];
    const counters: Record<string, number> = {};
    const verdicts: GenVerdict[] = [];
    if (gens.some((g) => g !== 4)) {
      const n = runNetfilter();
      happened.push(`Gen 1-3 node conntrack, nf_conntrack_max=${n.max}: ${LONG_LIVED} long-lived connections, then ${SHORT} short ones (handshake, FIN, TIME_WAIT 120 s)`);
      happened.push(`  ${n.new_ok} short connections got an entry; then the table was full of ASSURED entries: ${n.new_dropped} SYNs dropped ("nf_conntrack: table full, dropping packet")`);
      happened.push(`  conntrack -S: drop=${n.drop} early_drop=${n.early_drop} insert_failed=${n.insert_failed}; conntrack -C: ${n.count}`);
      happened.push(`  established connections still flowing both ways: ${n.established_ok}/${LONG_LIVED}`);
      Object.assign(counters, { nf_conntrack_max: n.max, nf_count: n.count, nf_new_ok: n.new_ok, nf_new_dropped: n.new_dropped, nf_drop: n.drop, nf_early_drop: n.early_drop, nf_established_ok: n.established_ok });
      for (const g of gens) if (g !== 4) verdicts.push({ gen: g, applies: true, verdict: `NEW refused once full (${n.new_dropped} dropped, conntrack -S drop=${n.drop}); ${n.established_ok}/${LONG_LIVED} established unaffected`, counters: { ...n } });
    }
    if (gens.includes(4)) {
      const l = await runLb4();
      happened.push(`Gen 4 lb4, cilium_ct4_global (LRU hash, max_entries=${l.ct_map_max}): ${LONG_LIVED} long-lived flows (half busy, half idle), then ${l.new_flows} new flows`);
      happened.push(`  new flows passed: ${l.new_ok}/${l.new_flows} (none refused); map count ${l.ct_map_count}/${l.ct_map_max}`);
      happened.push(`  busy long-lived flows kept their entry and backend: ${l.active_kept}/${LONG_LIVED / 2}; idle ones evicted: ${l.idle_evicted}/${LONG_LIVED / 2}, of which re-balanced to another backend: ${l.idle_moved_backend}`);
      Object.assign(counters, { lb4_ct_max: l.ct_map_max, lb4_ct_count: l.ct_map_count, lb4_new_ok: l.new_ok, lb4_new_dropped: l.new_dropped, lb4_active_kept: l.active_kept, lb4_idle_evicted: l.idle_evicted, lb4_idle_moved: l.idle_moved_backend });
      verdicts.push({ gen: 4, applies: true, verdict: `no flow refused; the LRU forgot ${l.idle_evicted} idle connection(s), ${l.idle_moved_backend} of them now go to another backend`, counters: { ...l } });
    }
    verdicts.sort((a, b) => a.gen - b.gen);
    return { name: this.name, title: this.title, happened, counters, gens: verdicts };
  },
};
