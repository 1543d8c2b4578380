// Name resolution for compare flows whose destination is a DNS name, through the generation's dataplane:
//  - the client pod's resolv.conf is kubelet's for dnsPolicy ClusterFirst: `nameserver <kube-dns ClusterIP>`,
//    `search <ns>.svc.cluster.local svc.cluster.local cluster.local`, `options ndots:5` (the nodes here carry no
//    search domains of their own); glibc's res_nsearch tries the search list first for a name with fewer than 5
//    dots (ndots.ts `candidates`), one A query per name tried (an IPv4-only resolver);
//  - each query is a real DNS message over UDP from the pod to the kube-dns ClusterIP:53, DNATed by the
//    generation to a CoreDNS pod; the resolver takes an answer only from the address and port it asked (as glibc
//    does) with the query's id;
//  - CoreDNS (each ready backend of kube-dns) is authoritative for cluster.local, as its kubernetes plugin is:
//    <svc>.<ns>.svc.cluster.local -> the ClusterIP (a headless Service: its ready endpoints),
//    <a-b-c-d>.<ns>.pod.cluster.local -> a.b.c.d, anything else in the zone NXDOMAIN; every other name goes to
//    its upstream (the forward plugin) 8.8.8.8:53 on the internet, from the CoreDNS pod through its node's SNAT;
//  - the upstream answers a multi-label name with an address in TEST-NET-3 (203.0.113.0/24, from a hash of the
//    name) and hosts that address in the internet namespace, so the connection that follows reaches it; a
//    single-label name or a .local one does not exist on the internet (NXDOMAIN);
//  - a hostNetwork client (dnsPolicy ClusterFirst falls back to the node's resolv.conf) asks the upstream
//    directly, without search domains, so cluster names do not resolve from it.
import type { BuiltGeneration, PodPlane } from "../gens/types.js";
import { fnv32a } from "../k8s/rand.js";
import { exec, IPPROTO_UDP, sendUdp, type NetNamespace, type Pkt, type Socket } from "../net/index.js";
import { formatIpv4, parseIpv4 } from "../packet/addr.js";
import { get16, get32, set16 } from "../packet/checksum.js";
import { readName } from "../packet/format-dns.js";
import { candidates, dnsQuery, podResolvConf, type ResolvConf } from "./scenarios/ndots.js";
import { StepTrace } from "./steps.js";
import { resolveTarget } from "./target.js";
import { WorkloadError } from "./workload.js";

export const CLUSTER_DOMAIN = "cluster.local";
/** CoreDNS's upstream (its forward plugin's target): a public resolver behind the node's uplink. */
export const UPSTREAM = "8.8.8.8";
/** The forward plugin's source port toward the upstream. */
const FORWARD_PORT = 49153;
const QTYPE_A = 1;
const RCODE_NXDOMAIN = 3;
/** CoreDNS kubernetes plugin's default TTL; a typical TTL from the internet. */
const TTL_CLUSTER = 5;
const TTL_UPSTREAM = 300;


/** The question of the DNS message at `buf[msg, end)`: its id, name (lower case, no final dot) and type. */
export function dnsQuestion(buf: Uint8Array, msg: number, end: number): { id: number; name: string; qtype: number; end: number } | null {
  if (end - msg < 12 || get16(buf, msg + 4) < 1) return null;
  const q = readName(buf, msg, msg + 12, end);
  if (q === undefined || q.next + 4 > end) return null;
  return { id: get16(buf, msg), name: q.name.slice(0, -1).toLowerCase(), qtype: get16(buf, q.next), end: q.next + 4 };
}

/**
 * A response to the query `q`: header and question copied, QR and RA set (AA when authoritative), `rcode`, one A
 * record per address with its name compressed to the question's.
 */
export function dnsResponse(q: Uint8Array, rcode: number, addrs: readonly number[], ttl: number, authoritative: boolean): Uint8Array {
  const qq = dnsQuestion(q, 0, q.length);
  const qend = qq === null ? 12 : qq.end;
  const out = new Uint8Array(qend + 16 * addrs.length);
  out.set(q.subarray(0, qend));
  out[2] = 0x80 | (authoritative ? 0x04 : 0) | (q[2]! & 0x01);
  out[3] = 0x80 | rcode;
  set16(out, 6, addrs.length);
  set16(out, 8, 0);
  set16(out, 10, 0);
  let o = qend;
  for (const a of addrs) {
    out.set([0xc0, 0x0c, 0, QTYPE_A, 0, 1, ttl >>> 24, (ttl >>> 16) & 255, (ttl >>> 8) & 255, ttl & 255, 0, 4], o);
    out[o + 12] = a >>> 24;
    out[o + 13] = (a >>> 16) & 255;
    out[o + 14] = (a >>> 8) & 255;
    out[o + 15] = a & 255;
    o += 16;
  }
  return out;
}

/** The first A record's address in the response at `buf[msg, end)`, 0 when it has none. */
export function firstA(buf: Uint8Array, msg: number, end: number): number {
  const q = dnsQuestion(buf, msg, end);
  if (q === null) return 0;
  let at = q.end;
  for (let i = get16(buf, msg + 6); i > 0; i--) {
    const n = readName(buf, msg, at, end);
    if (n === undefined || n.next + 10 > end) return 0;
    const rdlen = get16(buf, n.next + 8);
    if (get16(buf, n.next) === QTYPE_A && rdlen === 4 && n.next + 14 <= end) return get32(buf, n.next + 10);
    at = n.next + 10 + rdlen;
  }
  return 0;
}

/** CoreDNS's kubernetes plugin: the addresses of a name in the cluster zone ([] = no A record), null = NXDOMAIN. */
export function clusterRecords(g: BuiltGeneration, name: string): number[] | null {
  const l = name.split(".");
  const zone = CLUSTER_DOMAIN.split(".").length;
  if (l.length === 2 + 2 + zone - 1 && l[2] === "svc") {
    const [svcName, ns] = l;
    const svc = g.cluster.services.find((s) => s.metadata.namespace === ns && s.metadata.name === svcName);
    if (svc === undefined) return null;
    if (svc.clusterIP === "") return []; // ExternalName: a CNAME (not modelled), no A record of its own
    if (svc.clusterIP !== "None") return [parseIpv4(svc.clusterIP)];
    const out: number[] = [];
    for (const sl of g.cluster.endpointSlices) {
      if (sl.metadata.namespace !== ns || sl.serviceName !== svcName) continue;
      for (const e of sl.endpoints) if (e.conditions.ready || svc.publishNotReadyAddresses) for (const a of e.addresses) out.push(parseIpv4(a));
    }
    return out.length > 0 ? out : null;
  }
  if (l.length === 2 + 2 + zone - 1 && l[2] === "pod" && /^\d{1,3}(-\d{1,3}){3}$/.test(l[0]!)) return [parseIpv4(l[0]!.replace(/-/g, "."))];
  return null;
}

const inClusterZone = (name: string) => name === CLUSTER_DOMAIN || name.endsWith(`.${CLUSTER_DOMAIN}`);

/** The internet's answer for a name: a TEST-NET-3 host for a multi-label name, hosted on the internet side; none
 *  for a single label or a .local name (RFC 6762: never on the internet, so no cluster name leaks out). */
function upstreamRecord(g: BuiltGeneration, name: string): number | null {
  if (!name.includes(".") || name === "local" || name.endsWith(".local")) return null;
  const addr = ((203 << 24) | (0 << 16) | (113 << 8) | (1 + (fnv32a(name) % 254))) >>> 0;
  const ext = g.external.ns;
  if (!ext.isLocalAddr(addr)) {
    exec(ext, `ip addr add ${formatIpv4(addr)}/32 dev lo`);
    g.external.hosts.push(formatIpv4(addr));
  }
  return addr;
}

export interface DnsOutcome {
  /** The address the client connects to, null when resolution failed. */
  addr: string | null;
  /** A queries the client sent, and the NXDOMAIN answers among them. */
  queries: number;
  nxdomain: number;
  /** Why resolution failed (null when it did not). */
  failure: string | null;
  /** The failure was a policy drop of a DNS packet. */
  denied: boolean;
}

/** The UDP payload of a delivered packet: offset and end in pkt.buf. */
function udpPayload(p: Pkt): { l3: number; l4: number; end: number } {
  const l3 = p.off + 14;
  const l4 = l3 + (p.buf[l3]! & 15) * 4;
  return { l3, l4, end: l4 + get16(p.buf, l4 + 4) };
}

/**
 * Resolve `name` from `client` as its libc would, every packet through the dataplane. `port` is the resolver's
 * UDP source port; `at` names the workload entry for errors in the cluster (no kube-dns Service).
 */
export function resolveName(g: BuiltGeneration, client: PodPlane, name: string, port: number, at: string): DnsOutcome {
  const upstream = parseIpv4(UPSTREAM);
  // A hostNetwork pod with dnsPolicy ClusterFirst gets the node's resolv.conf (kubelet falls back to Default):
  // the node's nameserver, no cluster search domains, glibc's ndots:1.
  const hostNet = client.hostNetwork;
  const dnsSvc = g.cluster.services.find((s) => s.metadata.namespace === "kube-system" && s.metadata.name === "kube-dns");
  if (!hostNet && (dnsSvc === undefined || dnsSvc.clusterIP === "None" || dnsSvc.clusterIP === "")) {
    throw new WorkloadError(`cannot resolve "${name}": the cluster has no kube-dns Service with a ClusterIP (kube-system/kube-dns), so pods have no nameserver`, at);
  }
  const coredns = hostNet ? [] : resolveTarget(g, { kind: "service", namespace: "kube-system", name: "kube-dns", port: 53 }, "UDP", at).receivers;
  const nsText = hostNet ? UPSTREAM : dnsSvc!.clusterIP;
  const nameserver = parseIpv4(nsText);
  // kubelet's ClusterFirst resolv.conf; the model's nodes have no search domain of their own to append.
  const resolvConf: ResolvConf = hostNet ? { search: [], ndots: 1 } : podResolvConf(client.namespace, 5, []);
  const steps = new StepTrace(g.world);
  const socks: [NetNamespace, Socket][] = [];
  const out: DnsOutcome = { addr: null, queries: 0, nxdomain: 0, failure: null, denied: false };
  // What the client got for the query in flight: -1 nothing, else the rcode; the address of the first A record.
  let rcode = -1;
  let answer = 0;
  let stray = "";
  let qid = 0;
  try {
    const bind = (ns: NetNamespace, addr: number, p: number, owner: string): Socket => {
      const s = ns.bind(IPPROTO_UDP, addr, p, owner);
      socks.push([ns, s]);
      return s;
    };
    for (const r of coredns) {
      if (r.ns.sockets.lookup(IPPROTO_UDP, 0, r.port) !== null) continue; // two CoreDNS on one host network: one answers
      const pending = new Map<number, { id: number; src: number; sport: number; local: number }>();
      let nextId = 1;
      bind(r.ns, 0, r.port, "coredns").onReceive = (p) => {
        const u = udpPayload(p);
        const q = dnsQuestion(p.buf, u.l4 + 8, u.end);
        if (q === null) return;
        const src = get32(p.buf, u.l3 + 12);
        const sport = get16(p.buf, u.l4);
        const local = get32(p.buf, u.l3 + 16);
        const query = p.buf.slice(u.l4 + 8, u.end);
        if (inClusterZone(q.name)) {
          const recs = q.qtype === QTYPE_A ? clusterRecords(g, q.name) : [];
          const resp = dnsResponse(query, recs === null ? RCODE_NXDOMAIN : 0, recs ?? [], TTL_CLUSTER, true);
          steps.sent(sendUdp(r.ns, { src: local, dst: src, sport: r.port, dport: sport, payload: resp }), r.ns.name);
          return;
        }
        const fid = nextId++ & 0xffff;
        pending.set(fid, { id: q.id, src, sport, local });
        set16(query, 0, fid);
        steps.sent(sendUdp(r.ns, { dst: upstream, sport: FORWARD_PORT, dport: 53, payload: query }), r.ns.name);
      };
      bind(r.ns, 0, FORWARD_PORT, "coredns forward").onReceive = (p) => {
        const u = udpPayload(p);
        if (get32(p.buf, u.l3 + 12) !== upstream || get16(p.buf, u.l4) !== 53 || u.end - u.l4 < 20) return;
        const c = pending.get(get16(p.buf, u.l4 + 8));
        if (c === undefined) return;
        pending.delete(get16(p.buf, u.l4 + 8));
        const resp = p.buf.slice(u.l4 + 8, u.end);
        set16(resp, 0, c.id);
        resp[2]! &= ~0x04; // not authoritative for what it forwarded
        steps.sent(sendUdp(r.ns, { src: c.local, dst: c.src, sport: r.port, dport: c.sport, payload: resp }), r.ns.name);
      };
    }
    bind(g.external.ns, upstream, 53, "resolver").onReceive = (p) => {
      const u = udpPayload(p);
      const q = dnsQuestion(p.buf, u.l4 + 8, u.end);
      if (q === null) return;
      const a = q.qtype === QTYPE_A ? upstreamRecord(g, q.name) : null;
      const resp = dnsResponse(p.buf.slice(u.l4 + 8, u.end), a === null ? RCODE_NXDOMAIN : 0, a === null ? [] : [a], TTL_UPSTREAM, true);
      steps.sent(sendUdp(g.external.ns, { src: upstream, dst: get32(p.buf, u.l3 + 12), sport: 53, dport: get16(p.buf, u.l4), payload: resp }), g.external.ns.name);
    };
    bind(client.ns, 0, port, "resolver").onReceive = (p) => {
      const u = udpPayload(p);
      const from = get32(p.buf, u.l3 + 12);
      const sport = get16(p.buf, u.l4);
      // glibc's res_send: an answer from another address or port than the nameserver asked is not taken.
      if (from !== nameserver || sport !== 53) {
        stray = `answer from ${formatIpv4(from)}:${sport}, not the nameserver ${nsText}:53 (reverse NAT missing)`;
        return;
      }
      if (u.end - u.l4 < 20 || get16(p.buf, u.l4 + 8) !== qid || (p.buf[u.l4 + 10]! & 0x80) === 0) return;
      rcode = p.buf[u.l4 + 11]! & 15;
      answer = firstA(p.buf, u.l4 + 8, u.end);
    };
    for (const cand of candidates(name, resolvConf)) {
      rcode = -1;
      answer = 0;
      stray = "";
      qid = (port * 31 + out.queries + 1) & 0xffff;
      out.queries++;
      steps.begin();
      steps.sent(sendUdp(client.ns, { dst: nameserver, sport: port, dport: 53, payload: dnsQuery(qid, cand, QTYPE_A) }), client.ns.name);
      g.world.run();
      if (rcode < 0) {
        const loss = steps.loss();
        out.failure = `DNS query ${out.queries} (A ${cand}) to ${nsText}:53 got no answer: ${loss?.text ?? (stray || "not answered")}`;
        out.denied = loss?.policy ?? false;
        return out;
      }
      if (rcode === RCODE_NXDOMAIN) out.nxdomain++;
      if (rcode === 0 && answer !== 0) {
        out.addr = formatIpv4(answer);
        return out;
      }
    }
    out.failure = `DNS: ${name} not found (${out.queries} queries, ${out.nxdomain} NXDOMAIN)`;
    return out;
  } finally {
    for (const [ns, s] of socks) ns.sockets.close(s);
  }
}
