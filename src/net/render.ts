// Trace records to text, for people and tests: `node1 eth0 rx 98`, `node1 route unicast via 10.0.0.1 dev eth0`.
import { formatIpv4 } from "../packet/addr.js";
import { RTN_NAMES } from "./constants.js";
import { DROP_NAMES, EV_NAMES, Ev, type TraceRecord } from "./trace.js";
import type { World } from "./world.js";

const HOOK_NAMES = ["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"];
const NF_VERDICTS = ["DROP", "ACCEPT", "STOLEN"];
const TC_ACTS: Record<number, string> = { [-1]: "UNSPEC", 0: "OK", 2: "SHOT", 7: "REDIRECT" };
const PROTOS: Record<number, string> = { 0: "arp", 1: "icmp", 6: "tcp", 17: "udp" };

export function renderRecord(w: World, r: TraceRecord): string {
  const ns = r.ns >= 0 ? w.namespaces[r.ns] : undefined;
  const dev = ns?.devByIndex(r.ifindex);
  const where = `${ns?.name ?? "-"}${dev !== undefined && r.ifindex !== 0 ? " " + dev.name : ""}`;
  const ip = (v: number) => formatIpv4(v >>> 0);
  switch (r.ev) {
    case Ev.RX:
    case Ev.TX:
      return `${where} ${EV_NAMES[r.ev]} ${r.a}`;
    case Ev.TC_INGRESS:
    case Ev.TC_EGRESS:
      return `${where} ${EV_NAMES[r.ev]} ${TC_ACTS[r.a] ?? r.a}`;
    case Ev.NF_HOOK:
      return `${where} ${r.b & 0x100 ? "br_netfilter " : ""}${HOOK_NAMES[r.a]} ${NF_VERDICTS[r.b & 0xff] ?? r.b & 0xff}`;
    case Ev.ROUTE:
      return r.a === 0 ? `${where} route none` : `${where} route ${RTN_NAMES[r.a]} nexthop ${ip(r.b)}`;
    case Ev.FORWARD:
      return `${where} forward ttl ${r.a}`;
    case Ev.LOCAL_DELIVER:
      return `${where} local ${PROTOS[r.a] ?? r.a}${r.b ? " " + (r.a === 0 ? ip(r.b) : r.b) : ""}`;
    case Ev.BR_FORWARD:
      return `${where} bridge forward`;
    case Ev.BR_FLOOD:
      return `${where} bridge flood ${r.a} ports`;
    case Ev.BR_LOCAL:
      return `${where} bridge local`;
    case Ev.ARP_REQUEST:
      return `${where} arp who-has ${ip(r.b)}`;
    case Ev.ARP_REPLY:
      return `${where} arp reply ${ip(r.b)}${r.a ? " (proxy)" : ""}`;
    case Ev.NEIGH_QUEUE:
      return `${where} neigh queue ${ip(r.b)}`;
    case Ev.NEIGH_OUTPUT:
      return `${where} neigh ${ip(r.b)}`;
    case Ev.ICMP_SENT:
      return `${where} icmp sent type ${r.a >> 8} code ${r.a & 255} (packet ${r.b})`;
    case Ev.TCP_RST:
      return `${where} tcp rst sent (packet ${r.b})`;
    case Ev.VXLAN_ENCAP:
      return `${where} vxlan encap vni ${r.a} to ${ip(r.b)}`;
    case Ev.VXLAN_DECAP:
      return `${where} vxlan decap vni ${r.a}`;
    case Ev.REDIRECT:
      return `${where} redirect to ifindex ${r.a} flags ${r.b}`;
    case Ev.DROP:
      return `${where} drop: ${DROP_NAMES[r.a] ?? r.a}`;
    case Ev.SOCKET_RX:
      return `${where} socket ${PROTOS[r.a] ?? r.a}/${r.b}`;
    case Ev.LOCAL_OUT:
      return `${where} local out ${PROTOS[r.a] ?? r.a}`;
    case Ev.WIRE:
      return `${where} wire ${r.a} ports`;
    case Ev.CLONE:
      return `${where} clone (packet ${r.b})`;
    default:
      return `${where} event ${r.ev}`;
  }
}

export function renderRecords(w: World, recs: TraceRecord[]): string[] {
  return recs.map((r) => renderRecord(w, r));
}

export interface PacketSummary {
  id: number;
  /** Namespaces where the packet was delivered to the local stack (LOCAL_DELIVER), in order. */
  deliveredIn: string[];
  /** Whether a socket received it. */
  socket: boolean;
  /** Drop reason name of the last drop, or null. */
  dropped: string | null;
  /** Packets derived from this one: ICMP errors/replies, TCP resets, flood and VXLAN copies, ARP requests. */
  derived: number[];
  /** Largest encapsulation overhead seen. */
  encapBytes: number;
  /** VXLAN encapsulations. */
  encaps: number;
  /** FORWARD events (routed hops). */
  forwards: number;
  hops: string[];
}

/** What happened to one packet, from its trace. */
export function summarize(w: World, id: number): PacketSummary {
  const recs = w.trace.forPacket(id);
  const s: PacketSummary = { id, deliveredIn: [], socket: false, dropped: null, derived: [], encapBytes: 0, encaps: 0, forwards: 0, hops: renderRecords(w, recs) };
  for (const r of recs) {
    if (r.ev === Ev.LOCAL_DELIVER && r.a !== 0) s.deliveredIn.push(w.namespaces[r.ns]!.name);
    else if (r.ev === Ev.SOCKET_RX) s.socket = true;
    else if (r.ev === Ev.DROP) s.dropped = DROP_NAMES[r.a] ?? String(r.a);
    else if (r.ev === Ev.ICMP_SENT || r.ev === Ev.TCP_RST || r.ev === Ev.CLONE) s.derived.push(r.b);
    else if (r.ev === Ev.ARP_REQUEST) s.derived.push(r.a);
    else if (r.ev === Ev.VXLAN_ENCAP) {
      s.encaps++;
      s.encapBytes = 50;
    } else if (r.ev === Ev.FORWARD) s.forwards++;
  }
  return s;
}
