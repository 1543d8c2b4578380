// ndots:5 amplification. kubelet writes every pod's resolv.conf as `search NS.svc.cluster.local svc.cluster.local
// cluster.local <node's search domains>` with `options ndots:5`. glibc's res_nsearch tries the search list first
// for any name with fewer than ndots dots, so resolving api.example.com (2 dots) asks for
// api.example.com.NS.svc.cluster.local, ...svc.cluster.local, ...cluster.local and ...<node domain> (each an A
// and an AAAA query, each NXDOMAIN) before the absolute name. A trailing dot (FQDN) skips the search list; a lower
// ndots (2) tries the absolute name first. The resolver below is that algorithm; its queries are real DNS-over-UDP
// packets sent from a pod to the kube-dns ClusterIP through the generation's dataplane (DNAT to a CoreDNS pod and
// back), and CoreDNS answers NXDOMAIN for names it does not know.
import { BUILDERS, buildGeneration } from "../../gens/index.js";
import type { BuiltGeneration, GenNumber } from "../../gens/types.js";
import { IPPROTO_UDP, sendUdp } from "../../net/index.js";
import { loadDemoCluster } from "../../k8s/demo-cluster.js";
import { formatIpv4, get16, get32, parseIpv4 } from "../../packet/index.js";
import { notApplicable, type GenVerdict, type Scenario, type ScenarioResult } from "./types.js";

export const KUBE_DNS = "10.96.0.10";
export const NODE_SEARCH = "ec2.internal";
const RCODE_NXDOMAIN = 3;

export interface ResolvConf {
  search: string[];
  ndots: number;
}

/**
 * kubelet's resolv.conf for a pod with dnsPolicy ClusterFirst: the cluster's three search domains, then the node's
 * own search domains (here an EC2 node's `ec2.internal`; pass [] for a node without any).
 */
export function podResolvConf(namespace: string, ndots = 5, nodeSearch: readonly string[] = [NODE_SEARCH]): ResolvConf {
  return { search: [`${namespace}.svc.cluster.local`, "svc.cluster.local", "cluster.local", ...nodeSearch], ndots };
}

/** glibc res_nsearch: the names tried, in order. */
export function candidates(name: string, rc: ResolvConf): string[] {
  if (name.endsWith(".")) return [name.slice(0, -1)];
  const dots = name.split(".").length - 1;
  const searched = rc.search.map((d) => `${name}.${d}`);
  return dots >= rc.ndots ? [name, ...searched] : [...searched, name];
}

export function dnsQuery(id: number, name: string, qtype: number): Uint8Array {
  const labels = name.split(".").filter((l) => l.length > 0);
  const out = new Uint8Array(12 + labels.reduce((a, l) => a + 1 + l.length, 0) + 1 + 4);
  out[0] = id >> 8;
  out[1] = id & 255;
  out[2] = 0x01; // RD
  out[5] = 1; // QDCOUNT
  let o = 12;
  for (const l of labels) {
    out[o++] = l.length;
    for (let i = 0; i < l.length; i++) out[o++] = l.charCodeAt(i);
  }
  out[o++] = 0;
  out[o++] = 0;
  out[o++] = qtype;
  out[o++] = 0;
  out[o++] = 1;
  return out;
}

function qname(buf: Uint8Array, off: number, end: number): string {
  const parts: string[] = [];
  let o = off;
  while (o < end && buf[o]! !== 0) {
    const n = buf[o]!;
    parts.push(String.fromCharCode(...buf.subarray(o + 1, o + 1 + n)));
    o += 1 + n;
  }
  return parts.join(".");
}

export interface NdotsOutcome {
  name: string;
  ndots: number;
  queries: number;
  nxdomain: number;
  answered_after: number;
  seen_by_coredns: number;
  tried: string[];
}

/** Resolve `name` from a pod with the given resolv.conf, every query a UDP packet through the dataplane. */
export function resolveThrough(g: BuiltGeneration, name: string, ndots: number, known: Set<string>): NdotsOutcome {
  const client = g.pods.find((p) => p.key.startsWith("shop/frontend"))!;
  const coredns = g.pods.filter((p) => p.key.startsWith("kube-system/coredns"));
  let seen = 0;
  for (const d of coredns) {
    const sock = d.ns.bind(IPPROTO_UDP, 0, 53, "coredns");
    sock.onReceive = (p) => {
      seen++;
      const l3 = p.off + 14;
      const l4 = l3 + (p.buf[l3]! & 15) * 4;
      const end = p.off + p.len;
      const q = p.buf.slice(l4 + 8, end);
      const asked = qname(q, 12, q.length);
      const resp = q.slice();
      resp[2] = 0x81; // QR, RD
      resp[3] = 0x80 | (known.has(asked) ? 0 : RCODE_NXDOMAIN); // RA, rcode
      sendUdp(d.ns, { src: get32(p.buf, l3 + 16), dst: get32(p.buf, l3 + 12), sport: 53, dport: get16(p.buf, l4), payload: resp });
    };
  }
  const rcodes: number[] = [];
  const sport = 45000;
  const csock = client.ns.bind(IPPROTO_UDP, 0, sport, "resolver");
  csock.onReceive = (p) => {
    const l3 = p.off + 14;
    if (formatIpv4(get32(p.buf, l3 + 12)) !== KUBE_DNS) return;
    const l4 = l3 + (p.buf[l3]! & 15) * 4;
    rcodes.push(p.buf[l4 + 8 + 3]! & 15);
  };
  const tried = candidates(name, podResolvConf(client.namespace, ndots));
  let queries = 0, nx = 0, after = 0;
  for (const cand of tried) {
    rcodes.length = 0;
    for (const qtype of [1, 28]) {
      sendUdp(client.ns, { dst: parseIpv4(KUBE_DNS), sport, dport: 53, payload: dnsQuery(++queries, cand, qtype) });
    }
    g.world.run();
    nx += rcodes.filter((r) => r === RCODE_NXDOMAIN).length;
    if (rcodes.some((r) => r === 0)) {
      after = queries;
      break;
    }
  }
  for (const d of coredns) d.ns.sockets.close(d.ns.sockets.lookup(IPPROTO_UDP, 0, 53)!);
  client.ns.sockets.close(csock);
  return { name, ndots, queries, nxdomain: nx, answered_after: after, seen_by_coredns: seen, tried };
}

export const CASES: [string, number][] = [["api.example.com", 5], ["api.example.com.", 5], ["api.example.com", 2]];

export const ndotsAmplification: Scenario = {
  name: "ndots",
  title: "ndots:5 amplification: an external name from a pod is first tried under 4 search domains (NXDOMAIN each)",
  gens: [1, 2, 3, 4],
  async run(gens: GenNumber[]): Promise<ScenarioResult> {
    const happened: string[] = [];
    const counters: Record<string, number> = {};
    const verdicts: GenVerdict[] = [];
    const known = new Set(["api.example.com"]);
    for (const gen of gens) {
      if (BUILDERS[gen] === undefined) {
        verdicts.push(notApplicable(gen, "no builder for this generation yet (the query count is the resolver's: the same in every generation)"));
        continue;
      }
      const g = buildGeneration(gen, loadDemoCluster());
      const rows = CASES.map(([n, nd]) => resolveThrough(g, n, nd, known));
      if (happened.length === 0) {
        happened.push(`pod resolv.conf: search ${podResolvConf("shop").search.join(" ")}; options ndots:5 (queries go to kube-dns ${KUBE_DNS})`);
        for (const r of rows) {
          happened.push(`  ${r.name} with ndots:${r.ndots}: ${r.queries} queries (A+AAAA per name), ${r.nxdomain} NXDOMAIN, CoreDNS saw ${r.seen_by_coredns} packets`);
          happened.push(`    tried: ${r.tried.slice(0, r.queries / 2).join(", ")}`);
        }
        rows.forEach((r, i) => Object.assign(counters, { [`case${i + 1}_queries`]: r.queries, [`case${i + 1}_nxdomain`]: r.nxdomain, [`case${i + 1}_coredns_packets`]: r.seen_by_coredns }));
      }
      verdicts.push({ gen, applies: true, verdict: `default: ${rows[0]!.queries} queries (${rows[0]!.nxdomain} NXDOMAIN) for one lookup; FQDN: ${rows[1]!.queries}; ndots:2: ${rows[2]!.queries}`, counters: { default_queries: rows[0]!.queries, default_nxdomain: rows[0]!.nxdomain, fqdn_queries: rows[1]!.queries, ndots2_queries: rows[2]!.queries, coredns_packets: rows.reduce((a, r) => a + r.seen_by_coredns, 0) } });
    }
    return { name: this.name, title: this.title, happened, counters, gens: verdicts };
  },
};
