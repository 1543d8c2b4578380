// The compare engine (first cut): one connection = the client's first packet (TCP SYN or a UDP datagram) and the
// receiver's answer (SYN-ACK / a datagram back to the peer it saw), moved through one built generation. The
// receiver is a socket bound in every namespace that may receive the connection (the Service's backends, the
// named pod, the internet namespace); it answers what it saw as its peer, so NAT is visible both ways.
// Recorded per connection as the compare JSON contract names them (issue 5, item 6).
// Not yet: the full TCP conversation (data, FIN), ICMP, DNS names, pcapng; see the report.
import type { BuiltGeneration } from "../gens/types.js";
import { Ev, IPPROTO_TCP, IPPROTO_UDP, sendTcp, sendUdp, summarize, type NetNamespace, type Socket } from "../net/index.js";
import { IptablesHooks } from "../net/iptables.js";
import { formatIpv4, parseIpv4 } from "../packet/addr.js";
import { get16, get32 } from "../packet/checksum.js";
import type { Cluster } from "../k8s/types.js";

export interface FlowSpec {
  from: string;
  /** service/NS/NAME:PORT | pod/NS/NAME:PORT | IP:PORT */
  to: string;
  protocol: "TCP" | "UDP";
}

export interface FlowResult {
  delivered: boolean;
  dst_pod: string | null;
  dst: string | null;
  src_seen: string | null;
  verdict: "allowed" | "denied" | "dropped";
  drop_reason: string | null;
  encap_bytes: number;
  rules_evaluated: number;
  map_lookups: number;
  conntrack_entries: number;
  hops: string[];
}

interface Target {
  /** Address and port the client sends to. */
  addr: string;
  port: number;
  /** Where a receiver listens: namespace, port, and the pod key it stands for (null: outside the cluster). */
  receivers: { ns: NetNamespace; port: number; pod: string | null }[];
}

export class WorkloadError extends Error {
  constructor(
    message: string,
    readonly where: string,
  ) {
    super(message);
  }
}

function resolveTarget(g: BuiltGeneration, spec: FlowSpec, where: string): Target {
  const c: Cluster = g.cluster;
  const m = /^(service|pod)\/([^/]+)\/([^:]+):(\d+)$/.exec(spec.to);
  if (m !== null) {
    const [, kind, ns, name, portS] = m;
    const port = Number(portS);
    if (kind === "pod") {
      const p = g.pods.find((x) => x.key === `${ns}/${name}`);
      if (p === undefined) throw new WorkloadError(`no running pod ${ns}/${name}`, `${where}, to`);
      return { addr: p.ip, port, receivers: [{ ns: p.ns, port, pod: p.key }] };
    }
    const svc = c.services.find((s) => s.metadata.namespace === ns && s.metadata.name === name);
    if (svc === undefined) throw new WorkloadError(`no Service ${ns}/${name}`, `${where}, to`);
    const sp = svc.ports.find((x) => x.port === port && x.protocol === spec.protocol);
    if (sp === undefined) throw new WorkloadError(`Service ${ns}/${name} has no ${spec.protocol} port ${port}`, `${where}, to`);
    const receivers: Target["receivers"] = [];
    for (const sl of c.endpointSlices.filter((s) => s.metadata.namespace === ns && s.serviceName === name)) {
      const ep = sl.ports.find((x) => x.name === sp.name && x.protocol === sp.protocol);
      if (ep === undefined) continue;
      for (const e of sl.endpoints) {
        const key = e.targetRef?.replace(/^Pod /, "");
        const p = g.pods.find((x) => x.key === key);
        if (p !== undefined) receivers.push({ ns: p.ns, port: ep.port, pod: p.key });
      }
    }
    return { addr: svc.clusterIP, port, receivers };
  }
  const ip = /^(\d+\.\d+\.\d+\.\d+):(\d+)$/.exec(spec.to);
  if (ip === null) throw new WorkloadError(`destination "${spec.to}" is not service/NS/NAME:PORT, pod/NS/NAME:PORT or IP:PORT`, `${where}, to`);
  const port = Number(ip[2]);
  const pod = g.pods.find((p) => p.ip === ip[1] && !p.hostNetwork);
  const receivers = pod !== undefined ? [{ ns: pod.ns, port, pod: pod.key }] : [{ ns: g.external.ns, port, pod: null }];
  return { addr: ip[1]!, port, receivers };
}

/** Counters summed over every node: netfilter rules evaluated, tc program runs (Gen 4), conntrack entries. */
function counters(g: BuiltGeneration): { rules: number; runs: number; ct: number } {
  let rules = 0;
  let runs = 0;
  let ct = 0;
  for (const n of g.nodes) {
    const nf = n.ns.netfilter;
    if (nf instanceof IptablesHooks) {
      rules += nf.path.result.rulesEvaluated;
      ct += nf.conntrack.entries().length;
    }
  }
  const ebpf = (g as { ebpf?: { chains: Record<string, { programs: Map<string, { stats: { runs: number } }> }>; kernel: { pinned: Map<string, { count: number }> } }[] }).ebpf;
  for (const n of ebpf ?? []) {
    for (const o of Object.values(n.chains)) for (const p of o.programs.values()) runs += p.stats.runs;
    ct += n.kernel.pinned.get("cilium_ct4_global")?.count ?? 0;
  }
  return { rules, runs, ct };
}

const TCP_SYN = 0x02;
const TCP_ACK = 0x10;

/** Run one connection from a fresh-enough state (the caller builds one generation per run). */
export function runConnection(g: BuiltGeneration, spec: FlowSpec, sport: number, where: string): FlowResult {
  const from = g.pods.find((p) => p.key === spec.from);
  if (from === undefined) throw new WorkloadError(`no running pod ${spec.from}`, `${where}, from`);
  const t = resolveTarget(g, spec, where);
  const proto = spec.protocol === "TCP" ? IPPROTO_TCP : IPPROTO_UDP;
  const before = counters(g);
  type Got = { pod: string | null; ns: NetNamespace; port: number; src: number; sport: number; dst: string; daddr: number };
  const box: { got: Got | null } = { got: null };
  const socks: [NetNamespace, Socket][] = [];
  const res: FlowResult = { delivered: false, dst_pod: null, dst: null, src_seen: null, verdict: "dropped", drop_reason: null, encap_bytes: 0, rules_evaluated: 0, map_lookups: 0, conntrack_entries: 0, hops: [] };
  try {
    for (const r of t.receivers) {
      let s: Socket;
      try {
        s = r.ns.bind(proto, 0, r.port, "compare");
      } catch {
        continue; // a hostNetwork pod's port held by the node: that receiver cannot be told apart
      }
      socks.push([r.ns, s]);
      s.onReceive = (p) => {
        const l3 = p.off + 14;
        const l4 = l3 + (p.buf[l3]! & 15) * 4;
        box.got ??= { pod: r.pod, ns: r.ns, port: r.port, src: get32(p.buf, l3 + 12), sport: get16(p.buf, l4), daddr: get32(p.buf, l3 + 16), dst: `${formatIpv4(get32(p.buf, l3 + 16))}:${get16(p.buf, l4 + 2)}` };
      };
    }
    const cli = from.ns.bind(proto, 0, sport, "compare client");
    socks.push([from.ns, cli]);
    let replied = false;
    cli.onReceive = () => {
      replied = true;
    };
    const dst = parseIpv4(t.addr);
    const id = proto === IPPROTO_TCP ? sendTcp(from.ns, { dst, sport, dport: t.port, flags: TCP_SYN, seq: 1000 }) : sendUdp(from.ns, { dst, sport, dport: t.port, payload: 32 });
    g.world.run();
    const ids = [id];
    const g2 = box.got;
    if (g2 !== null) {
      const rid = proto === IPPROTO_TCP ? sendTcp(g2.ns, { src: g2.daddr, dst: g2.src, sport: g2.port, dport: g2.sport, flags: TCP_SYN | TCP_ACK, seq: 5000, ack: 1001 }) : sendUdp(g2.ns, { src: g2.daddr, dst: g2.src, sport: g2.port, dport: g2.sport, payload: 32 });
      g.world.run();
      ids.push(rid);
    }
    const s0 = summarize(g.world, id);
    res.hops = compactHops(s0.hops);
    for (const i of ids) if (i > 0) res.encap_bytes = Math.max(res.encap_bytes, summarize(g.world, i).encapBytes);
    if (g2 !== null) {
      res.delivered = true;
      res.dst_pod = g2.pod;
      res.dst = g2.dst;
      res.src_seen = `${formatIpv4(g2.src)}:${g2.sport}`;
      res.verdict = replied ? "allowed" : "dropped";
      if (!replied) res.drop_reason = "reply not delivered";
    } else {
      res.drop_reason = s0.dropped ?? (id < 0 ? "no route" : "not delivered");
      res.verdict = isPolicyDrop(g, id) ? "denied" : "dropped";
    }
  } finally {
    for (const [ns, s] of socks) ns.sockets.close(s);
  }
  const after = counters(g);
  res.rules_evaluated = after.rules - before.rules;
  res.map_lookups = after.runs - before.runs;
  res.conntrack_entries = after.ct - before.ct;
  return res;
}

/** A drop by policy: a tc program's drop in Gen 4 (policy.ts is the only program that drops a valid flow), or a
 *  netfilter drop in Gen 1-3 (Service rules never drop a Service with endpoints; policy chains do). */
function isPolicyDrop(g: BuiltGeneration, id: number): boolean {
  if (id < 0) return false;
  for (const r of g.world.trace.forPacket(id)) if (r.ev === Ev.DROP) return r.a === 3 || r.a === 4; // Drop.NETFILTER, Drop.TC_SHOT
  return false;
}

/** The path as short readable strings: rx/tx/encap/decap/local hops only. */
function compactHops(hops: string[]): string[] {
  return hops.filter((h) => / (rx|tx) \d+$| vxlan | tc_(ingress|egress) | socket /.test(h));
}
