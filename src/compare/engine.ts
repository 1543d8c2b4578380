// The compare engine: one workload connection, every packet of it through one built generation.
//  - TCP: the three-way handshake (SYN, SYN-ACK, ACK), `packets` data segments each way (the client's request,
//    the server's answer acknowledging it; sequence and acknowledgement numbers advance by the payload), then the
//    client closes (FIN, the server's ACK), the server closes (FIN, the client's ACK): conntrack walks
//    SYN_SENT, SYN_RECV, ESTABLISHED, FIN_WAIT, CLOSE_WAIT, LAST_ACK and stays in TIME_WAIT.
//  - UDP: `packets` datagrams each way, each answered. ICMP: `packets` echo requests, each answered by the
//    receiver's kernel (echo reply, same id and sequence).
//  - A DNS-name destination is first resolved by the client pod through CoreDNS (dns.ts); the result then counts
//    the connection to the resolved address and says how many queries it took.
// The receiver is a socket in every namespace that may receive the connection (the Service's backends, the named
// pod, the internet namespace); the one that gets the first packet is the server, and it answers from the address
// and port it received on, to the peer it saw, as a real socket does. The client takes an answer only from the
// address and port it sent to (a connected socket), so a missing reverse NAT is a lost packet. The conversation is
// lock-step: each packet is sent, the world runs until it settles, and the receiver checks it got exactly that
// packet; the first packet that does not arrive ends the connection and is named in drop_reason.
// Recorded per connection as the compare JSON contract names them (issue 5, item 6).
import type { BuiltGen4 } from "../gens/gen4.js";
import type { BuiltGeneration } from "../gens/types.js";
import { Ev, IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, renderRecord, sendIcmpEcho, sendTcp, sendUdp, type NetNamespace, type Pkt, type Socket, type TcpOpts } from "../net/index.js";
import { IptablesHooks } from "../net/iptables.js";
import { formatIpv4, parseIpv4 } from "../packet/addr.js";
import { get16, get32 } from "../packet/checksum.js";
import { resolveName } from "./dns.js";
import { appPayloads, type AppPayloads } from "./payload.js";
import { StepTrace, type Loss } from "./steps.js";
import { resolveTarget, targetForAddress, type Target } from "./target.js";
import { parseDestination, WorkloadError, type FlowProtocol } from "./workload.js";

export { WorkloadError } from "./workload.js";

export interface FlowSpec {
  from: string;
  /** service/NS/NAME:PORT | pod/NS/NAME:PORT | IP:PORT | NAME:PORT (a DNS name) */
  to: string;
  protocol: FlowProtocol;
  /** Data packets each way (default 1). */
  packets?: number;
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
  /** Only for a DNS-name destination: A queries the client sent, NXDOMAIN answers, the address it connected to. */
  dns_queries?: number;
  dns_nxdomain?: number;
  resolved?: string | null;
}

/** Echo payload (ping's default 56 bytes). */
const ECHO_BYTES = 56;

const TCP_FIN = 0x01;
const TCP_SYN = 0x02;
const TCP_RST = 0x04;
const TCP_PSH = 0x08;
const TCP_ACK = 0x10;
const ICMP_ECHOREPLY = 0;
const ICMP_ECHO = 8;

/** Ephemeral ports (net.ipv4.ip_local_port_range 32768 60999). */
const EPHEMERAL_LO = 32768;
const EPHEMERAL_N = 28232;
const ephemeral = (p: number) => EPHEMERAL_LO + ((((p - EPHEMERAL_LO) % EPHEMERAL_N) + EPHEMERAL_N) % EPHEMERAL_N);

/** The last packet one side received, as numbers (written by the socket callback, read by the driver). */
class Rx {
  n = 0;
  /** Receiver index (server side). */
  recv = -1;
  src = 0;
  sport = 0;
  daddr = 0;
  dport = 0;
  /** TCP flags, or the ICMP type. */
  flags = 0;
  /** TCP seq/ack; ICMP echo id/sequence. */
  seq = 0;
  ack = 0;
  len = 0;

  /** Exactly one packet arrived, the one sent. */
  is(flags: number, seq: number, ack: number, len: number): boolean {
    return this.n === 1 && this.flags === flags && this.seq === seq && this.ack === ack && this.len === len;
  }

  read(p: Pkt, proto: number, recv: number): void {
    const b = p.buf;
    const l3 = p.off + 14;
    const ihl = (b[l3]! & 15) * 4;
    const l4 = l3 + ihl;
    const tot = get16(b, l3 + 2);
    this.n++;
    this.recv = recv;
    this.src = get32(b, l3 + 12);
    this.daddr = get32(b, l3 + 16);
    if (proto === IPPROTO_ICMP) {
      this.sport = this.dport = 0;
      this.flags = b[l4]!;
      this.seq = get16(b, l4 + 4);
      this.ack = get16(b, l4 + 6);
      this.len = tot - ihl - 8;
      return;
    }
    this.sport = get16(b, l4);
    this.dport = get16(b, l4 + 2);
    if (proto === IPPROTO_TCP) {
      this.flags = b[l4 + 13]!;
      this.seq = get32(b, l4 + 4);
      this.ack = get32(b, l4 + 8);
      this.len = tot - ihl - (b[l4 + 12]! >>> 4) * 4;
    } else {
      this.flags = 0;
      this.seq = this.ack = 0;
      this.len = get16(b, l4 + 4) - 8;
    }
  }
}

/** What a step sends: its name for drop_reason (built only when it fails). */
const enum Step {
  SYN,
  SYNACK,
  ACK,
  DATA_C,
  DATA_S,
  FIN_C,
  ACK_S,
  FIN_S,
  ACK_C,
  DGRAM_C,
  DGRAM_S,
  ECHO,
  ECHO_REPLY,
}

function stepName(s: Step, i: number, n: number): string {
  switch (s) {
    case Step.SYN:
      return "SYN";
    case Step.SYNACK:
      return "SYN-ACK";
    case Step.ACK:
      return "handshake ACK";
    case Step.DATA_C:
      return `data segment ${i}/${n} client->server`;
    case Step.DATA_S:
      return `data segment ${i}/${n} server->client`;
    case Step.FIN_C:
      return "client FIN";
    case Step.ACK_S:
      return "server ACK of the client FIN";
    case Step.FIN_S:
      return "server FIN";
    case Step.ACK_C:
      return "client ACK of the server FIN";
    case Step.DGRAM_C:
      return `datagram ${i}/${n} client->server`;
    case Step.DGRAM_S:
      return `datagram ${i}/${n} server->client`;
    case Step.ECHO:
      return `echo request ${i}/${n}`;
    case Step.ECHO_REPLY:
      return `echo reply ${i}/${n}`;
  }
}

/** One connection's lock-step driver. */
class Conversation {
  readonly srv = new Rx();
  readonly cli = new Rx();
  readonly steps: StepTrace;
  /** The receiver that got the first packet, and the connection as it saw it. */
  server = -1;
  sLocal = 0;
  sPort = 0;
  sPeer = 0;
  sPeerPort = 0;
  firstId = 0;
  /** The failed step (-1: none), its index, why. */
  failed = -1;
  failedIndex = 0;
  why = "";
  loss: Loss | null = null;
  private readonly dst: number;

  constructor(
    private readonly g: BuiltGeneration,
    private readonly client: NetNamespace,
    private readonly t: Target,
    private readonly proto: number,
    private readonly cport: number,
    private readonly app: AppPayloads,
  ) {
    this.steps = new StepTrace(g.world);
    this.dst = parseIpv4(t.addr);
  }

  private fail(s: Step, i: number, why: string): false {
    this.failed = s;
    this.failedIndex = i;
    this.loss = this.steps.loss();
    this.why = this.loss?.text ?? why;
    return false;
  }

  /** Send one packet from `ns` and run the world until it settles; both sides' receive state starts empty. */
  private exchange(ns: NetNamespace, o: TcpOpts): number {
    this.srv.n = 0;
    this.cli.n = 0;
    this.steps.begin();
    const id = this.proto === IPPROTO_TCP ? sendTcp(ns, o) : sendUdp(ns, o);
    this.steps.sent(id, ns.name);
    this.g.world.run();
    return id;
  }

  /** Client to server: the server must receive exactly this packet (the first one picks the server). */
  toServer(s: Step, i: number, flags: number, seq: number, ack: number, len: number): boolean {
    const id = this.exchange(this.client, { dst: this.dst, sport: this.cport, dport: this.t.port, flags, seq, ack, payload: len > 0 ? this.app.request : undefined });
    if (this.firstId === 0) this.firstId = id;
    const srv = this.srv;
    if (srv.n === 0) return this.fail(s, i, this.cli.n > 0 && this.cli.flags & TCP_RST ? `reset by ${formatIpv4(this.cli.src)}:${this.cli.sport}` : "not delivered");
    if (this.server < 0) {
      this.server = srv.recv;
      this.sLocal = srv.daddr;
      this.sPort = srv.dport;
      this.sPeer = srv.src;
      this.sPeerPort = srv.sport;
    } else if (srv.recv !== this.server || srv.src !== this.sPeer || srv.sport !== this.sPeerPort) {
      const other = this.t.receivers[srv.recv]!;
      return this.fail(s, i, `arrived at ${other.pod ?? other.ns.name} from ${formatIpv4(srv.src)}:${srv.sport}, not on the connection's server`);
    }
    return srv.is(flags, seq, ack, len) || this.fail(s, i, "arrived changed (flags, sequence or length)");
  }

  /** Server to client, from the address and port the server received on: the client must get it from its peer. */
  toClient(s: Step, i: number, flags: number, seq: number, ack: number, len: number): boolean {
    const r = this.t.receivers[this.server]!;
    this.exchange(r.ns, { src: this.sLocal, dst: this.sPeer, sport: this.sPort, dport: this.sPeerPort, flags, seq, ack, payload: len > 0 ? this.app.response : undefined });
    return this.checkClient(s, i, flags, seq, ack, len);
  }

  private checkClient(s: Step, i: number, flags: number, seq: number, ack: number, len: number): boolean {
    const cli = this.cli;
    if (cli.n === 0) return this.fail(s, i, "not delivered");
    if (this.proto === IPPROTO_ICMP ? cli.src !== this.dst : cli.src !== this.dst || cli.sport !== this.t.port) {
      const port = (p: number) => (this.proto === IPPROTO_ICMP ? "" : `:${p}`);
      return this.fail(s, i, `came from ${formatIpv4(cli.src)}${port(cli.sport)}, not ${this.t.addr}${port(this.t.port)} (no reverse NAT)`);
    }
    return cli.is(flags, seq, ack, len) || this.fail(s, i, "arrived changed (flags, sequence or length)");
  }

  /** RFC 793 conversation; sequence numbers modulo 2^32. */
  tcp(n: number, isnC: number, isnS: number): void {
    if (!this.toServer(Step.SYN, 0, TCP_SYN, isnC, 0, 0)) return;
    let c = (isnC + 1) >>> 0;
    if (!this.toClient(Step.SYNACK, 0, TCP_SYN | TCP_ACK, isnS, c, 0)) return;
    let s = (isnS + 1) >>> 0;
    if (!this.toServer(Step.ACK, 0, TCP_ACK, c, s, 0)) return;
    const qlen = this.app.request.length;
    const rlen = this.app.response.length;
    for (let i = 1; i <= n; i++) {
      if (!this.toServer(Step.DATA_C, i, TCP_PSH | TCP_ACK, c, s, qlen)) return;
      c = (c + qlen) >>> 0;
      if (!this.toClient(Step.DATA_S, i, TCP_PSH | TCP_ACK, s, c, rlen)) return;
      s = (s + rlen) >>> 0;
    }
    if (!this.toServer(Step.FIN_C, 0, TCP_FIN | TCP_ACK, c, s, 0)) return;
    c = (c + 1) >>> 0;
    if (!this.toClient(Step.ACK_S, 0, TCP_ACK, s, c, 0)) return;
    if (!this.toClient(Step.FIN_S, 0, TCP_FIN | TCP_ACK, s, c, 0)) return;
    s = (s + 1) >>> 0;
    this.toServer(Step.ACK_C, 0, TCP_ACK, c, s, 0);
  }

  udp(n: number): void {
    for (let i = 1; i <= n; i++) {
      if (!this.toServer(Step.DGRAM_C, i, 0, 0, 0, this.app.request.length)) return;
      if (!this.toClient(Step.DGRAM_S, i, 0, 0, 0, this.app.response.length)) return;
    }
  }

  /** Echo requests; the receiver's kernel answers each (icmp_echo), in the same run. */
  icmp(n: number, id: number): void {
    const srv = this.srv;
    for (let i = 1; i <= n; i++) {
      srv.n = 0;
      this.cli.n = 0;
      this.steps.begin();
      const pid = sendIcmpEcho(this.client, { dst: this.dst, id, seq: i, payload: ECHO_BYTES });
      this.steps.sent(pid, this.client.name);
      if (this.firstId === 0) this.firstId = pid;
      this.g.world.run();
      if (srv.n === 0) {
        this.fail(Step.ECHO, i, "not delivered");
        return;
      }
      if (this.server < 0) {
        this.server = srv.recv;
        this.sLocal = srv.daddr;
        this.sPeer = srv.src;
      }
      if (this.cli.n === 0) {
        // icmp_reply sends nothing when the receiver has no route back to the source it saw.
        const r = this.t.receivers[srv.recv]!;
        if (r.ns.routeLookup(srv.src, srv.daddr, null, 0) === null) {
          this.fail(Step.ECHO_REPLY, i, `${r.pod ?? r.ns.name} has no route back to ${formatIpv4(srv.src)} (the source it saw)`);
          return;
        }
      }
      if (!this.checkClient(Step.ECHO_REPLY, i, ICMP_ECHOREPLY, id, i, ECHO_BYTES)) return;
    }
  }
}

/** Counters summed over every node: netfilter rules evaluated, programs' map lookups, conntrack entries. */
function counters(g: BuiltGeneration): { rules: number; lookups: number; ct: number } {
  let rules = 0;
  let lookups = 0;
  let ct = 0;
  for (const n of g.nodes) {
    const nf = n.ns.netfilter;
    if (nf instanceof IptablesHooks) {
      rules += nf.path.result.rulesEvaluated;
      ct += nf.conntrack.count;
    }
  }
  for (const n of (g as Partial<BuiltGen4>).ebpf ?? []) {
    // Every map of the node's kernel once (a pinned map shared by several objects counts once): the programs'
    // bpf_map_lookup_elem calls, a wrapping u32 per map.
    for (const m of n.kernel.maps()) lookups = (lookups + m.lookups) >>> 0;
    ct += n.kernel.pinned.get("cilium_ct4_global")?.count ?? 0;
  }
  return { rules, lookups, ct };
}

/** The path as short readable strings: rx/tx/encap/decap/local hops only. */
const HOP = / (rx|tx) \d+$| vxlan | tc_(ingress|egress) | socket /;

/** One pass over the connection's trace records: the first packet's hops and the largest encapsulation. */
function scanTrace(g: BuiltGeneration, start: number, firstId: number, res: FlowResult): void {
  const t = g.world.trace;
  for (let i = start; i < t.count; i++) {
    const r = t.get(i);
    if (r.ev === Ev.VXLAN_ENCAP) res.encap_bytes = 50; // outer Ethernet + IPv4 + UDP + VXLAN headers
    if (r.pkt === firstId) {
      const h = renderRecord(g.world, r);
      if (HOP.test(h)) res.hops.push(h);
    }
  }
}

/**
 * Run one connection (the caller builds one generation and runs its connections in order). `sport` is the
 * client's source port (ICMP: the echo id); `where` names the workload entry in errors.
 */
export function runConnection(g: BuiltGeneration, spec: FlowSpec, sport: number, where: string): FlowResult {
  const from = g.pods.find((p) => p.key === spec.from);
  if (from === undefined) throw new WorkloadError(`no running pod ${spec.from}`, `${where}, from`);
  const d = parseDestination(spec.to, spec.protocol);
  if (typeof d === "string") throw new WorkloadError(d, `${where}, to`);
  const n = spec.packets ?? 1;
  if (!Number.isInteger(n) || n < 1) throw new WorkloadError(`packets must be a positive integer, got ${n}`, `${where}, packets`);
  const cport = ephemeral(sport);
  const res: FlowResult = { delivered: false, dst_pod: null, dst: null, src_seen: null, verdict: "dropped", drop_reason: null, encap_bytes: 0, rules_evaluated: 0, map_lookups: 0, conntrack_entries: 0, hops: [] };
  let t: Target;
  if (d.kind === "name") {
    // The resolver's own socket: another ephemeral port, half the range away from the connection's.
    const dns = resolveName(g, from, d.name, ephemeral(cport + (EPHEMERAL_N >> 1)), `${where}, to`);
    res.dns_queries = dns.queries;
    res.dns_nxdomain = dns.nxdomain;
    res.resolved = dns.addr;
    if (dns.addr === null) {
      res.drop_reason = dns.failure;
      res.verdict = dns.denied ? "denied" : "dropped";
      return res;
    }
    t = targetForAddress(g, dns.addr, d.port, spec.protocol, `${where}, to`);
  } else t = resolveTarget(g, d, spec.protocol, `${where}, to`);

  const proto = spec.protocol === "TCP" ? IPPROTO_TCP : spec.protocol === "UDP" ? IPPROTO_UDP : IPPROTO_ICMP;
  const before = counters(g);
  const traceStart = g.world.trace.count;
  const conv = new Conversation(g, from.ns, t, proto, proto === IPPROTO_ICMP ? 0 : cport, appPayloads(g, proto === IPPROTO_TCP, d.kind === "name" ? d.name : t.addr, t.port, cport));
  const socks: [NetNamespace, Socket][] = [];
  try {
    // ICMP: one socket per namespace sees both roles (echo requests in, replies back); TCP/UDP: listeners on the
    // receivers' ports and the client's own port.
    const icmpSock = new Map<NetNamespace, Socket>();
    const bind = (ns: NetNamespace, port: number, owner: string): Socket | null => {
      if (proto === IPPROTO_ICMP) {
        const have = icmpSock.get(ns);
        if (have !== undefined) return have;
      }
      try {
        const s = ns.bind(proto, 0, port, owner);
        socks.push([ns, s]);
        if (proto === IPPROTO_ICMP) icmpSock.set(ns, s);
        return s;
      } catch {
        return null; // a hostNetwork pod's port held by the node: that receiver cannot be told apart
      }
    };
    const serverOf = new Map<NetNamespace, number>();
    t.receivers.forEach((r, i) => {
      const s = bind(r.ns, proto === IPPROTO_ICMP ? 0 : r.port, "compare server");
      if (s === null) return;
      serverOf.set(r.ns, i);
      if (proto !== IPPROTO_ICMP) s.onReceive = (p) => conv.srv.read(p, proto, i);
    });
    const cli = bind(from.ns, proto === IPPROTO_ICMP ? 0 : cport, "compare client");
    if (cli === null) throw new WorkloadError(`client port ${cport} is in use in ${from.key}`, `${where}, from`);
    if (proto === IPPROTO_ICMP) {
      for (const [ns, s] of icmpSock) {
        const recv = serverOf.get(ns) ?? -1;
        const isClient = ns === from.ns;
        s.onReceive = (p) => {
          const type = p.buf[p.off + 14 + (p.buf[p.off + 14]! & 15) * 4]!;
          if (type === ICMP_ECHO && recv >= 0) conv.srv.read(p, proto, recv);
          else if (type === ICMP_ECHOREPLY && isClient) conv.cli.read(p, proto, -1);
        };
      }
    } else cli.onReceive = (p) => conv.cli.read(p, proto, -1);

    const isn = (Math.imul(cport, 0x9e3779b1) ^ from.ns.id) >>> 0;
    if (proto === IPPROTO_TCP) conv.tcp(n, isn, Math.imul(isn, 0x85ebca6b) >>> 0);
    else if (proto === IPPROTO_UDP) conv.udp(n);
    else conv.icmp(n, cport);
  } finally {
    for (const [ns, s] of socks) ns.sockets.close(s);
  }

  scanTrace(g, traceStart, conv.firstId, res);
  if (conv.server >= 0) {
    const r = t.receivers[conv.server]!;
    res.delivered = true;
    res.dst_pod = r.pod;
    res.dst = proto === IPPROTO_ICMP ? formatIpv4(conv.sLocal) : `${formatIpv4(conv.sLocal)}:${conv.sPort}`;
    res.src_seen = proto === IPPROTO_ICMP ? formatIpv4(conv.sPeer) : `${formatIpv4(conv.sPeer)}:${conv.sPeerPort}`;
  }
  if (conv.failed < 0) res.verdict = "allowed";
  else {
    const what = stepName(conv.failed as Step, conv.failedIndex, n);
    const established = proto === IPPROTO_TCP && conv.failed !== Step.SYN && conv.failed !== Step.SYNACK && conv.failed !== Step.ACK;
    res.drop_reason = `${established ? "handshake completed, then " : ""}${what} lost: ${conv.why}`;
    // A first packet dropped by a policy rule or program is a denial; anything lost later is a broken connection.
    res.verdict = !res.delivered && conv.loss?.policy === true ? "denied" : "dropped";
  }
  const after = counters(g);
  res.rules_evaluated = after.rules - before.rules;
  res.map_lookups = (after.lookups - before.lookups) >>> 0;
  res.conntrack_entries = after.ct - before.ct;
  return res;
}
