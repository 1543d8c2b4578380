// The IPVS connection table and its packet path for Masq (NAT) forwarding, as kube-proxy uses it:
//   inbound  (ip_vs_in at LOCAL_IN: the Service IPs sit on kube-ipvs0, so packets to them are local): a packet to a
//            virtual service finds its connection (client addr:port → vaddr:vport) or, for a first packet,
//            schedules a real server (through the persistence template when the service is persistent), then is
//            DNATed to the real server (ip_vs_nat_xmit: address, port, IP and L4 checksums) and sent on.
//   outbound (ip_vs_out at FORWARD / LOCAL_OUT: a real server's reply): found by the real server's side of the
//            connection and un-DNATed (source back to vaddr:vport).
// Connection timeouts (ip_vs_proto_tcp.c tcp_timeouts, ip_vs_proto_udp.c; `ipvsadm --set tcp tcpfin udp` sets the
// first two TCP ones and UDP): TCP ESTABLISHED 900 s, SYN_RECV 60, FIN_WAIT 120, TIME_WAIT 120, CLOSE 10,
// CLOSE_WAIT 60, LAST_ACK 30; UDP 300. A connection counts as active only in ESTABLISHED (IP_VS_CONN_F_INACTIVE
// otherwise); UDP ones are inactive. Templates (persistence) expire after the service's timeout, restarted when
// a new connection uses them. Expired entries are freed when a lookup meets them.
// Simplified TCP state table: SYN → SYN_RECV, ACK in SYN_RECV → ESTABLISHED, FIN → FIN_WAIT (from the client) or
// CLOSE_WAIT (from the server), RST → CLOSE. Not modelled: the other forwarding methods (DR, tunnel), one-packet
// scheduling, SCTP states, conntrack integration (kube-proxy sets conntrack=1; callers run conntrack around this).
import { csumReplace16, csumReplace32, get16, get32, set16, set32 } from "../packet/checksum.js";
import type { Ipvs } from "./ipvs.js";

export const IPVS_ACCEPT = 1; // not for IPVS: continue the normal path
export const IPVS_STOLEN = 2; // rewritten and transmitted by IPVS (NF_STOLEN)
export const IPVS_DROP = 0; // a virtual service with no available real server

export const IpvsState = { NONE: 0, ESTABLISHED: 1, SYN_RECV: 2, FIN_WAIT: 3, TIME_WAIT: 4, CLOSE: 5, CLOSE_WAIT: 6, LAST_ACK: 7, UDP: 8 } as const;
export const IPVS_STATE_NAMES = ["NONE", "ESTABLISHED", "SYN_RECV", "FIN_WAIT", "TIME_WAIT", "CLOSE", "CLOSE_WAIT", "LAST_ACK", "UDP"];
/** Seconds per state (index IpvsState). */
export const IPVS_TIMEOUTS = new Float64Array([2, 900, 60, 120, 120, 10, 60, 30, 300]);

/** ip_vs_conn_tab_size default (CONFIG_IP_VS_TAB_BITS 12): what `ipvsadm -Ln` prints as size. */
export const IP_VS_CONN_TAB_SIZE = 4096;

export class IpvsConnTable {
  cap = 0;
  count = 0;
  /** Client address/port, virtual address/port, real server address/port, protocol, per connection. */
  caddr = new Uint32Array(0);
  cport = new Uint16Array(0);
  vaddr = new Uint32Array(0);
  vport = new Uint16Array(0);
  daddr = new Uint32Array(0);
  dport = new Uint16Array(0);
  proto = new Uint8Array(0);
  state = new Uint8Array(0);
  /** 1 for a persistence template (client port 0, no packets of its own). */
  template = new Uint8Array(0);
  svc = new Int32Array(0);
  dest = new Int32Array(0);
  expires = new Float64Array(0);
  /** Hash chains: node 2i is the client side (inbound key), 2i+1 the real server side (outbound key). */
  readonly heads = new Int32Array(IP_VS_CONN_TAB_SIZE).fill(-1);
  next = new Int32Array(0);
  private free: number[] = [];
  /** Time in seconds (set by the caller before each packet). */
  now = 0;

  constructor(readonly ipvs: Ipvs) {
    this.grow(1024);
  }

  private grow(cap: number): void {
    const g = <T extends Uint32Array | Uint16Array | Uint8Array | Int32Array | Float64Array>(a: T, n: number): T => {
      const b = new (a.constructor as new (n: number) => T)(n);
      b.set(a);
      return b;
    };
    this.caddr = g(this.caddr, cap); this.cport = g(this.cport, cap); this.vaddr = g(this.vaddr, cap);
    this.vport = g(this.vport, cap); this.daddr = g(this.daddr, cap); this.dport = g(this.dport, cap);
    this.proto = g(this.proto, cap); this.state = g(this.state, cap); this.template = g(this.template, cap);
    this.svc = g(this.svc, cap); this.dest = g(this.dest, cap); this.expires = g(this.expires, cap);
    this.next = g(this.next, cap * 2);
    for (let i = cap - 1; i >= this.cap; i--) this.free.push(i);
    this.cap = cap;
  }

  private static bucket(a: number, ap: number, b: number, bp: number, proto: number): number {
    let h = Math.imul((a ^ Math.imul(b, 0x9e3779b1)) >>> 0, 0x85ebca6b) ^ (ap << 16) ^ bp ^ proto;
    h = Math.imul(h ^ (h >>> 15), 0xc2b2ae35);
    return (h ^ (h >>> 13)) & (IP_VS_CONN_TAB_SIZE - 1);
  }

  /** Find by client side (inbound): caddr:cport → vaddr:vport. Returns the connection or -1; frees expired ones met. */
  findIn(proto: number, caddr: number, cport: number, vaddr: number, vport: number, template: number): number {
    let n = this.heads[IpvsConnTable.bucket(caddr, cport, vaddr, vport, proto)]!;
    while (n >= 0) {
      const c = n >> 1;
      const nx = this.next[n]!;
      if ((n & 1) === 0 && this.caddr[c] === caddr && this.cport[c] === cport && this.vaddr[c] === vaddr &&
          this.vport[c] === vport && this.proto[c] === proto && this.template[c] === template) {
        if (this.expires[c]! <= this.now) this.expire(c);
        else return c;
      }
      n = nx;
    }
    return -1;
  }

  /** Find by real server side (outbound reply): daddr:dport → caddr:cport. */
  findOut(proto: number, daddr: number, dport: number, caddr: number, cport: number): number {
    let n = this.heads[IpvsConnTable.bucket(daddr, dport, caddr, cport, proto)]!;
    while (n >= 0) {
      const c = n >> 1;
      const nx = this.next[n]!;
      if ((n & 1) === 1 && this.daddr[c] === daddr && this.dport[c] === dport && this.caddr[c] === caddr &&
          this.cport[c] === cport && this.proto[c] === proto && this.template[c] === 0) {
        if (this.expires[c]! <= this.now) this.expire(c);
        else return c;
      }
      n = nx;
    }
    return -1;
  }

  create(svcIdx: number, destIdx: number, proto: number, caddr: number, cport: number, vaddr: number, vport: number, template: boolean): number {
    if (this.free.length === 0) this.grow(this.cap * 2);
    const c = this.free.pop()!;
    const d = this.ipvs.services[svcIdx]!.dests[destIdx]!;
    this.caddr[c] = caddr; this.cport[c] = cport; this.vaddr[c] = vaddr; this.vport[c] = vport;
    this.daddr[c] = d.addr; this.dport[c] = d.port; this.proto[c] = proto; this.svc[c] = svcIdx; this.dest[c] = destIdx;
    this.template[c] = template ? 1 : 0;
    this.state[c] = template ? IpvsState.NONE : proto === 17 ? IpvsState.UDP : IpvsState.NONE;
    this.expires[c] = this.now + (template ? this.ipvs.services[svcIdx]!.timeout : IPVS_TIMEOUTS[this.state[c]!]!);
    const b0 = IpvsConnTable.bucket(caddr, cport, vaddr, vport, proto);
    this.next[2 * c] = this.heads[b0]!;
    this.heads[b0] = 2 * c;
    if (!template) {
      const b1 = IpvsConnTable.bucket(d.addr, d.port, caddr, cport, proto);
      this.next[2 * c + 1] = this.heads[b1]!;
      this.heads[b1] = 2 * c + 1;
      d.inactConns++;
    } else d.persistConns++;
    this.count++;
    return c;
  }

  /** Unlink and free an expired (or killed) connection; the destination's counters follow. */
  expire(c: number): void {
    const t = this.template[c] === 1;
    this.unlink(2 * c, IpvsConnTable.bucket(this.caddr[c]!, this.cport[c]!, this.vaddr[c]!, this.vport[c]!, this.proto[c]!));
    const d = this.ipvs.services[this.svc[c]!]!.dests[this.dest[c]!]!;
    if (t) d.persistConns--;
    else {
      this.unlink(2 * c + 1, IpvsConnTable.bucket(this.daddr[c]!, this.dport[c]!, this.caddr[c]!, this.cport[c]!, this.proto[c]!));
      if (this.state[c] === IpvsState.ESTABLISHED) d.activeConns--;
      else d.inactConns--;
    }
    this.expires[c] = 0;
    this.free.push(c);
    this.count--;
  }

  private unlink(node: number, b: number): void {
    let n = this.heads[b]!;
    if (n === node) {
      this.heads[b] = this.next[node]!;
      return;
    }
    while (n >= 0) {
      const nx = this.next[n]!;
      if (nx === node) {
        this.next[n] = this.next[node]!;
        return;
      }
      n = nx;
    }
  }

  /** set_tcp_state (simplified table, see the top comment); moves the connection between active and inactive. */
  tcpState(c: number, flags: number, fromClient: boolean): void {
    const old = this.state[c]!;
    let st = old;
    if (flags & 0x04) st = IpvsState.CLOSE;
    else if (flags & 0x02) st = old === IpvsState.ESTABLISHED ? old : IpvsState.SYN_RECV;
    else if (flags & 0x01) st = fromClient ? (old === IpvsState.CLOSE_WAIT ? IpvsState.LAST_ACK : IpvsState.FIN_WAIT) : IpvsState.CLOSE_WAIT;
    else if (flags & 0x10 && old === IpvsState.SYN_RECV && fromClient) st = IpvsState.ESTABLISHED;
    else if (flags & 0x10 && old === IpvsState.FIN_WAIT && !fromClient) st = IpvsState.TIME_WAIT;
    if (st !== old) {
      const d = this.ipvs.services[this.svc[c]!]!.dests[this.dest[c]!]!;
      if (old === IpvsState.ESTABLISHED) { d.activeConns--; d.inactConns++; }
      if (st === IpvsState.ESTABLISHED) { d.inactConns--; d.activeConns++; }
      this.state[c] = st;
    }
    this.expires[c] = this.now + IPVS_TIMEOUTS[st]!;
  }
}

/**
 * The IPVS hooks on one node: `inbound` for packets to a virtual service, `outbound` for real servers' replies.
 * Works on IPv4 bytes at `l3`; returns IPVS_ACCEPT / IPVS_STOLEN / IPVS_DROP (inbound) or whether it rewrote
 * (outbound). `lastConn` is the connection the packet used (-1 when none). Allocates nothing per packet.
 */
export class IpvsPath {
  readonly conns: IpvsConnTable;
  lastConn = -1;
  constructor(readonly ipvs: Ipvs) {
    this.conns = new IpvsConnTable(ipvs);
  }

  inbound(buf: Uint8Array, l3: number, now: number): number {
    this.lastConn = -1;
    const proto = buf[l3 + 9]!;
    if (proto !== 6 && proto !== 17 && proto !== 132) return IPVS_ACCEPT;
    const l4 = l3 + (buf[l3]! & 15) * 4;
    const caddr = get32(buf, l3 + 12);
    const vaddr = get32(buf, l3 + 16);
    const cport = get16(buf, l4);
    const vport = get16(buf, l4 + 2);
    const t = this.conns;
    t.now = now;
    let c = t.findIn(proto, caddr, cport, vaddr, vport, 0);
    if (c < 0) {
      const s = this.ipvs.lookup(proto, vaddr, vport);
      if (s < 0) return IPVS_ACCEPT;
      const svc = this.ipvs.services[s]!;
      // ip_vs_schedule: a TCP connection starts only with a SYN (ip_vs_in: !th->syn → not scheduled, passed on).
      if (proto === 6 && (buf[l4 + 13]! & 0x17) !== 0x02) return IPVS_ACCEPT;
      let d: number;
      if (svc.persistent) {
        // ip_vs_sched_persist: template keyed by client address and the service (client port 0).
        const tpl = t.findIn(proto, caddr, 0, vaddr, vport, 1);
        if (tpl >= 0) {
          d = t.dest[tpl]!;
          t.expires[tpl] = now + svc.timeout;
        } else {
          d = this.ipvs.schedule(svc, caddr);
          if (d >= 0) t.create(s, d, proto, caddr, 0, vaddr, vport, true);
        }
      } else d = this.ipvs.schedule(svc, caddr);
      if (d < 0) return IPVS_DROP;
      c = t.create(s, d, proto, caddr, cport, vaddr, vport, false);
    }
    if (proto === 6) t.tcpState(c, buf[l4 + 13]!, true);
    else t.expires[c] = now + IPVS_TIMEOUTS[t.state[c]!]!;
    rewrite(buf, l3, l4, proto, false, t.daddr[c]!, t.dport[c]!);
    this.lastConn = c;
    return IPVS_STOLEN;
  }

  /** A reply from a real server: un-DNAT to the virtual service. False when it belongs to no IPVS connection. */
  outbound(buf: Uint8Array, l3: number, now: number): boolean {
    this.lastConn = -1;
    const proto = buf[l3 + 9]!;
    if (proto !== 6 && proto !== 17 && proto !== 132) return false;
    const l4 = l3 + (buf[l3]! & 15) * 4;
    const t = this.conns;
    t.now = now;
    const c = t.findOut(proto, get32(buf, l3 + 12), get16(buf, l4), get32(buf, l3 + 16), get16(buf, l4 + 2));
    if (c < 0) return false;
    if (proto === 6) t.tcpState(c, buf[l4 + 13]!, false);
    else t.expires[c] = now + IPVS_TIMEOUTS[t.state[c]!]!;
    rewrite(buf, l3, l4, proto, true, t.vaddr[c]!, t.vport[c]!);
    this.lastConn = c;
    return true;
  }
}

/** Rewrite the destination (inbound) or source (outbound) address and port with incremental checksums. */
function rewrite(buf: Uint8Array, l3: number, l4: number, proto: number, src: boolean, addr: number, port: number): void {
  const aOff = src ? l3 + 12 : l3 + 16;
  const pOff = src ? l4 : l4 + 2;
  const oldA = get32(buf, aOff);
  const oldP = get16(buf, pOff);
  const cOff = proto === 6 ? l4 + 16 : proto === 17 ? l4 + 6 : -1;
  if (cOff >= 0) {
    let check = get16(buf, cOff);
    if (proto === 6 || check !== 0) {
      check = csumReplace16(csumReplace32(check, oldA, addr), oldP, port);
      set16(buf, cOff, proto === 17 && check === 0 ? 0xffff : check);
    }
  }
  set16(buf, pOff, port);
  set16(buf, l3 + 10, csumReplace32(get16(buf, l3 + 10), oldA, addr));
  set32(buf, aOff, addr);
}
