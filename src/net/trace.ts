// Per-packet event trace: fixed-width records of numbers in one growing Int32Array (no strings, no objects on the
// hot path). Each record: packet id, event code, namespace id, ifindex, and two arguments. Rendering to text is
// for humans and tests only (see World.renderTrace).

export const Ev = {
  /** A device received a frame. a = frame length. */
  RX: 1,
  /** A device transmitted a frame. a = frame length. */
  TX: 2,
  /** tc clsact ingress ran. a = TC_ACT_*. */
  TC_INGRESS: 3,
  /** tc clsact egress ran. a = TC_ACT_*. */
  TC_EGRESS: 4,
  /** A netfilter hook ran. a = NF_INET_* hook, b = verdict | (bridged ? 0x100 : 0). */
  NF_HOOK: 5,
  /** Routing decision. a = RTN_* type, b = next hop (gateway or destination), ifindex = output device. */
  ROUTE: 6,
  /** ip_forward: TTL decremented. a = new TTL. */
  FORWARD: 7,
  /** Delivered to the local stack. a = IP protocol, b = destination port (0 for ICMP). */
  LOCAL_DELIVER: 8,
  /** Bridge forwarded to a port. ifindex = output port. */
  BR_FORWARD: 9,
  /** Bridge flooded (unknown unicast or broadcast). a = number of ports. */
  BR_FLOOD: 10,
  /** Bridge passed the frame up to its own device (local). */
  BR_LOCAL: 11,
  /** ARP request sent. b = target IP. */
  ARP_REQUEST: 12,
  /** ARP reply sent. b = target IP answered for; a = 1 when proxy ARP answered. */
  ARP_REPLY: 13,
  /** Packet queued on an unresolved neighbour. b = next hop. */
  NEIGH_QUEUE: 14,
  /** Neighbour resolved (or was already); b = next hop. */
  NEIGH_OUTPUT: 15,
  /** ICMP error or reply generated. a = type << 8 | code, b = id of the new packet. */
  ICMP_SENT: 16,
  /** TCP RST generated because nothing listens. b = id of the new packet. */
  TCP_RST: 17,
  /** VXLAN encapsulation. a = VNI, b = remote VTEP IP. */
  VXLAN_ENCAP: 18,
  /** VXLAN decapsulation. a = VNI. */
  VXLAN_DECAP: 19,
  /** tc redirect. a = target ifindex, b = BPF_F_* flags. */
  REDIRECT: 20,
  /** Dropped. a = Drop.* reason. */
  DROP: 21,
  /** A socket received the packet. a = IP protocol, b = port. */
  SOCKET_RX: 22,
  /** Locally generated: a = IP protocol. */
  LOCAL_OUT: 23,
  /** L2 segment (physical switch) forwarded the frame. a = number of ports it went to. */
  WIRE: 24,
  /** Encapsulated copy: packet `b` was created from this one (flood copy). */
  CLONE: 25,
} as const;

export const EV_NAMES: Record<number, string> = Object.fromEntries(Object.entries(Ev).map(([k, v]) => [v, k.toLowerCase()]));

/** Drop reasons (in the spirit of enum skb_drop_reason). */
export const Drop = {
  NO_ROUTE: 1,
  TTL_EXPIRED: 2,
  NETFILTER: 3,
  TC_SHOT: 4,
  FORWARDING_DISABLED: 5,
  NEIGH_FAILED: 6,
  NO_SOCKET: 7,
  BLACKHOLE: 8,
  UNREACHABLE: 9,
  PROHIBIT: 10,
  LINK_DOWN: 11,
  OTHERHOST: 12,
  HOP_LIMIT: 13,
  VXLAN_NO_FDB: 14,
  VXLAN_NO_VNI: 15,
  /** A martian source (route.c in_martian_src; IP_INVALID_SOURCE, IP_LOCALNET): see ipv4.ts routeInput. */
  MARTIAN: 16,
  NO_PEER: 17,
  FRAG_NEEDED: 18,
  NOT_IPV4: 19,
  REDIRECT_FAILED: 20,
  ICMP_ERROR: 21,
  RP_FILTER: 22,
  NEIGH_QUEUE_FULL: 23,
  /** L4 checksum wrong at local delivery (udp_lib_checksum_complete, tcp_checksum_complete, icmp_rcv). */
  BAD_CSUM: 24,
  /** A tc program consumed the packet (TC_ACT_STOLEN / QUEUED / TRAP). */
  TC_STOLEN: 25,
  /** ip_rcv_core: bad version, header length, total length or header checksum. */
  IP_HDR: 26,
  /** A martian destination (route.c in_martian_dst; IP_INVALID_DEST, IP_LOCALNET). */
  MARTIAN_DST: 27,
  /** A multicast destination the input device has not joined (ip_check_mc_rcu). */
  MC_NOT_JOINED: 28,
  /** A multicast packet whose source ip_mc_validate_source refuses. */
  MC_BAD_SOURCE: 29,
} as const;

export const DROP_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(Drop).map(([k, v]) => [v, k.toLowerCase().replace(/_/g, " ")]),
);

export const TRACE_FIELDS = 6;

export interface TraceRecord {
  pkt: number;
  ev: number;
  ns: number;
  ifindex: number;
  a: number;
  b: number;
}

export class Trace {
  enabled = true;
  private data = new Int32Array(TRACE_FIELDS * 4096);
  /** Records stored. */
  count = 0;

  record(pkt: number, ev: number, ns: number, ifindex: number, a: number, b: number): void {
    if (!this.enabled) return;
    let i = this.count * TRACE_FIELDS;
    if (i + TRACE_FIELDS > this.data.length) {
      const bigger = new Int32Array(this.data.length * 2);
      bigger.set(this.data);
      this.data = bigger;
    }
    const d = this.data;
    d[i++] = pkt;
    d[i++] = ev;
    d[i++] = ns;
    d[i++] = ifindex;
    d[i++] = a;
    d[i] = b;
    this.count++;
  }

  clear(): void {
    this.count = 0;
  }

  get(i: number): TraceRecord {
    const o = i * TRACE_FIELDS;
    const d = this.data;
    return { pkt: d[o]!, ev: d[o + 1]!, ns: d[o + 2]!, ifindex: d[o + 3]!, a: d[o + 4]!, b: d[o + 5]! };
  }

  /** Records of one packet, in order (for tests and rendering). */
  forPacket(id: number): TraceRecord[] {
    const out: TraceRecord[] = [];
    for (let i = 0; i < this.count; i++) if (this.data[i * TRACE_FIELDS] === id) out.push(this.get(i));
    return out;
  }

  all(): TraceRecord[] {
    const out: TraceRecord[] = [];
    for (let i = 0; i < this.count; i++) out.push(this.get(i));
    return out;
  }
}
