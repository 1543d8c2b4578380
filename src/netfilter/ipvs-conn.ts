// The IPVS connection table and its packet path for Masq (NAT) forwarding, as kube-proxy uses it:
//   inbound  (ip_vs_in at LOCAL_IN: the Service IPs sit on kube-ipvs0, so packets to them are local): a packet to a
//            virtual service finds its connection (client addr:port → vaddr:vport) or, for a first packet,
//            schedules a real server (through the persistence template when the service is persistent), then is
//            DNATed to the real server (ip_vs_nat_xmit: address, port, IP and L4 checksums) and sent on.
//   outbound (ip_vs_out at FORWARD / LOCAL_OUT: a real server's reply): found by the real server's side of the
//            connection and un-DNATed (source back to vaddr:vport).
//
// TCP states are the kernel's (ip_vs_proto_tcp.c): IP_VS_TCP_S_* with tcp_timeouts[] (NONE 2 s, ESTABLISHED 900,
// SYN_SENT 120, SYN_RECV 60, FIN_WAIT 120, TIME_WAIT 120, CLOSE 10, CLOSE_WAIT 60, LAST_ACK 30, LISTEN 120,
// SYNACK 120) and the transition tables tcp_states (tcp_states_dos with secure_tcp): a packet's flags pick a row
// (RST before SYN before FIN before ACK; none of them: CLOSE), client packets use the INPUT rows, real server
// packets the OUTPUT rows (INPUT-ONLY is for forwarding methods without replies, not Masq). A connection counts
// as active while ESTABLISHED, SYN_SENT, SYN_RECV or SYNACK (tcp_state_active_table), inactive otherwise; UDP
// ones (one state, 300 s) are inactive. Every packet restarts the connection's timer with its state's timeout.
// `ipvsadm --set tcp tcpfin udp` (setTimeouts) changes ESTABLISHED, FIN_WAIT and UDP.
//
// Persistence templates (client address, port 0 → virtual service) expire after the service's timeout,
// restarted when a new connection uses them, and outlive the connections they control (ip_vs_conn_expire:
// "do I control anybody?" re-arms the timer). Expired entries are freed when a lookup meets them or by sweep().
//
// The sysctls kube-proxy sets: expire_nodest_conn=1 (a packet for a connection whose real server was deleted
// expires it; the packet is dropped, or scheduled anew when it is a SYN), expire_quiescent_template=1 (a template
// pointing at a weight-0 real server is not used: the client is scheduled anew), and conn_reuse_mode=1 (a SYN
// for a connection in TIME_WAIT or CLOSE that no template controls, or whose real server has weight 0, expires
// it and schedules a new one). Conntrack (vs/conntrack=1) is not modelled: a SYN is taken to carry a fresh
// conntrack entry (the old one was in TIME_WAIT/CLOSE), any other packet a confirmed one (ip_vs_conn_uses_old_conntrack).
// The connection table is the kernel's: IP_VS_CONN_TAB_SIZE chains, one link per entry, keyed by protocol, client
// address and client port (templates with port 0).
// Not modelled: the other forwarding methods (DR, tunnel), one-packet scheduling, SCTP states, the kernel's hash
// function (tcbox's own numeric hash instead of jhash with a random seed; `ipvsadm -Lnc` order differs).
import { csumReplace16, csumReplace32, get16, get32, set16, set32 } from "../packet/checksum.js";
import type { Ipvs, IpvsDest } from "./ipvs.js";

export const IPVS_ACCEPT = 1; // not for IPVS: continue the normal path
export const IPVS_STOLEN = 2; // rewritten and transmitted by IPVS (NF_STOLEN)
export const IPVS_DROP = 0; // dropped silently: a connection whose real server was deleted (expire_nodest_conn)
/** A virtual service with no available real server: ip_vs_leave sends ICMP port unreachable and drops (NF_DROP). */
export const IPVS_REJECT = 3;

/** IP_VS_TCP_S_* (include/uapi/linux/ip_vs.h), then tcbox's slot for UDP's one state (IP_VS_UDP_S_NORMAL). */
export const IpvsState = {
  NONE: 0, ESTABLISHED: 1, SYN_SENT: 2, SYN_RECV: 3, FIN_WAIT: 4, TIME_WAIT: 5, CLOSE: 6, CLOSE_WAIT: 7, LAST_ACK: 8,
  LISTEN: 9, SYNACK: 10, UDP: 11,
} as const;
/** tcp_state_name_table (udp_state_name_table for UDP). */
export const IPVS_STATE_NAMES = ["NONE", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT", "TIME_WAIT", "CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "SYNACK", "UDP"];
/** Seconds per state (index IpvsState): tcp_timeouts[], udp_timeouts[IP_VS_UDP_S_NORMAL]. */
export const IPVS_TIMEOUTS: readonly number[] = [2, 900, 120, 60, 120, 120, 10, 60, 30, 120, 120, 300];
/** A template's states (IP_VS_CTPL_S_NONE, IP_VS_CTPL_S_ASSURED) and their names. */
export const IPVS_CTPL_S_ASSURED = 1;
export const IPVS_CTPL_STATE_NAMES = ["NONE", "ASSURED"];
/** tcp_state_active_table: the states counted in a real server's ActiveConn. (Small tables here are plain arrays:
 * once any ArrayBuffer in the process was detached, V8 checks the buffer on every typed-array load.) */
const ACTIVE: readonly number[] = [0, 1, 1, 1, 0, 0, 0, 0, 0, 0, 1, 0];

const [sNO, sES, sSS, sSR, sFW, sTW, sCL, sCW, sLA, sLI, sSA] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
/** Rows: INPUT syn, fin, ack, rst; OUTPUT syn, fin, ack, rst; INPUT-ONLY syn, fin, ack, rst. Columns: current state. */
const TCP_STATES: readonly number[] = [
  sSR, sES, sES, sSR, sSR, sSR, sSR, sSR, sSR, sSR, sSR,
  sCL, sCW, sSS, sTW, sTW, sTW, sCL, sCW, sLA, sLI, sTW,
  sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sCL, sLI, sES,
  sCL, sCL, sCL, sSR, sCL, sCL, sCL, sCL, sLA, sLI, sSR,

  sSS, sES, sSS, sSR, sSS, sSS, sSS, sSS, sSS, sLI, sSR,
  sTW, sFW, sSS, sTW, sFW, sTW, sCL, sTW, sLA, sLI, sTW,
  sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sLA, sES, sES,
  sCL, sCL, sSS, sCL, sCL, sTW, sCL, sCL, sCL, sCL, sCL,

  sSR, sES, sES, sSR, sSR, sSR, sSR, sSR, sSR, sSR, sSR,
  sCL, sFW, sSS, sTW, sFW, sTW, sCL, sCW, sLA, sLI, sTW,
  sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sCL, sLI, sES,
  sCL, sCL, sCL, sSR, sCL, sCL, sCL, sCL, sLA, sLI, sCL,
];
/** tcp_states_dos (secure_tcp): SYN floods park connections in SYNACK until the client's ACK. */
const TCP_STATES_DOS: readonly number[] = [
  sSR, sES, sES, sSR, sSR, sSR, sSR, sSR, sSR, sSR, sSA,
  sCL, sCW, sSS, sTW, sTW, sTW, sCL, sCW, sLA, sLI, sSA,
  sES, sES, sSS, sSR, sFW, sTW, sCL, sCW, sCL, sLI, sSA,
  sCL, sCL, sCL, sSR, sCL, sCL, sCL, sCL, sLA, sLI, sCL,

  sSS, sES, sSS, sSA, sSS, sSS, sSS, sSS, sSS, sLI, sSA,
  sTW, sFW, sSS, sTW, sFW, sTW, sCL, sTW, sLA, sLI, sTW,
  sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sLA, sES, sES,
  sCL, sCL, sSS, sCL, sCL, sTW, sCL, sCL, sCL, sCL, sCL,

  sSA, sES, sES, sSR, sSA, sSA, sSA, sSA, sSA, sSA, sSA,
  sCL, sFW, sSS, sTW, sFW, sTW, sCL, sCW, sLA, sLI, sTW,
  sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sCL, sLI, sES,
  sCL, sCL, sCL, sSR, sCL, sCL, sCL, sCL, sLA, sLI, sCL,
];
/** tcp_state_off: TCP_DIR_INPUT, TCP_DIR_OUTPUT, TCP_DIR_INPUT_ONLY (in rows of 11). */
export const TCP_DIR_INPUT = 0;
export const TCP_DIR_OUTPUT = 4;
export const TCP_DIR_INPUT_ONLY = 8;

/** The next TCP state for a packet with `flags` in direction `dirOff` (set_tcp_state, tcp_state_idx). */
export function ipvsTcpNextState(state: number, flags: number, dirOff: number, secureTcp = false): number {
  const idx = flags & 0x04 ? 3 : flags & 0x02 ? 0 : flags & 0x01 ? 1 : flags & 0x10 ? 2 : -1;
  if (idx < 0) return sCL;
  return (secureTcp ? TCP_STATES_DOS : TCP_STATES)[(dirOff + idx) * 11 + state]!;
}

/** ip_vs_conn_tab_size default (CONFIG_IP_VS_TAB_BITS 12): what `ipvsadm -Ln` prints as size. */
export const IP_VS_CONN_TAB_SIZE = 4096;

/** `template` values: a connection, a persistence template, a template made unfindable (ip_vs_check_template). */
export const CONN = 0;
export const TEMPLATE = 1;
export const TEMPLATE_DEAD = 2;

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
  /** CONN, TEMPLATE or TEMPLATE_DEAD (client port 0, no packets of its own). */
  template = new Uint8Array(0);
  /** IP_VS_CONN_F_INACTIVE: 1 while counted in the real server's InActConn. */
  inactive = new Uint8Array(0);
  /** Real server id (Ipvs.destById). */
  dest = new Int32Array(0);
  /** The template controlling this connection (cp->control), or -1; for a template, how many it controls. */
  control = new Int32Array(0);
  nControl = new Int32Array(0);
  /** For a template: when the last connection it controlled ended (its timer keeps going until then). */
  ctlEnd = new Float64Array(0);
  /** cp->timeout (seconds) and when the timer fires. */
  timeout = new Float64Array(0);
  expires = new Float64Array(0);
  /**
   * Hash chains, one link per entry, keyed as the kernel keys ip_vs_conn_tab (ip_vs_conn_hashkey_conn): protocol,
   * client address and port. Both lookups hash those: an inbound packet carries them as its source, a real
   * server's reply as its destination (ip_vs_conn_out_get hashes the inverse side).
   */
  readonly heads = new Int32Array(IP_VS_CONN_TAB_SIZE).fill(-1);
  next = new Int32Array(0);
  private free: number[] = [];
  /** Time in seconds (set by the caller before each packet). */
  now = 0;
  /** Seconds per state; `ipvsadm --set` changes ESTABLISHED, FIN_WAIT and UDP. */
  readonly timeouts = Float64Array.from(IPVS_TIMEOUTS);
  /** /proc/sys/net/ipv4/vs/secure_tcp ≥ 1: the tcp_states_dos table. */
  secureTcp = false;

  constructor(readonly ipvs: Ipvs) {
    this.grow(1024);
  }

  /** ipvsadm --set TCP TCPFIN UDP (seconds; 0 keeps the current value). */
  setTimeouts(tcp: number, tcpfin: number, udp: number): void {
    if (tcp > 0) this.timeouts[IpvsState.ESTABLISHED] = tcp;
    if (tcpfin > 0) this.timeouts[IpvsState.FIN_WAIT] = tcpfin;
    if (udp > 0) this.timeouts[IpvsState.UDP] = udp;
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
    this.inactive = g(this.inactive, cap); this.dest = g(this.dest, cap); this.control = g(this.control, cap);
    this.nControl = g(this.nControl, cap); this.ctlEnd = g(this.ctlEnd, cap); this.timeout = g(this.timeout, cap); this.expires = g(this.expires, cap);
    this.next = g(this.next, cap);
    for (let i = cap - 1; i >= this.cap; i--) this.free.push(i);
    this.cap = cap;
  }

  private static bucket(proto: number, caddr: number, cport: number): number {
    let h = Math.imul(caddr ^ Math.imul((cport << 8) | proto, 0x9e3779b1), 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 15), 0xc2b2ae35);
    return (h ^ (h >>> 13)) & (IP_VS_CONN_TAB_SIZE - 1);
  }

  /** Find by client side (inbound): caddr:cport → vaddr:vport. Returns the connection or -1; frees expired ones met. */
  findIn(proto: number, caddr: number, cport: number, vaddr: number, vport: number, template: number): number {
    let c = this.heads[IpvsConnTable.bucket(proto, caddr, cport)]!;
    while (c >= 0) {
      const nx = this.next[c]!;
      if (this.caddr[c] === caddr && this.cport[c] === cport && this.vaddr[c] === vaddr && this.vport[c] === vport &&
          this.proto[c] === proto && this.template[c] === template && (this.expires[c]! > this.now || !this.due(c))) return c;
      c = nx;
    }
    return -1;
  }

  /** Find by real server side (outbound reply): daddr:dport → caddr:cport. */
  findOut(proto: number, daddr: number, dport: number, caddr: number, cport: number): number {
    let c = this.heads[IpvsConnTable.bucket(proto, caddr, cport)]!;
    while (c >= 0) {
      const nx = this.next[c]!;
      if (this.caddr[c] === caddr && this.cport[c] === cport && this.daddr[c] === daddr && this.dport[c] === dport &&
          this.proto[c] === proto && this.template[c] === CONN && (this.expires[c]! > this.now || !this.due(c))) return c;
      c = nx;
    }
    return -1;
  }

  /**
   * Has the connection's timer fired by `now`? Then it is freed (true). A template's timer fires at expires,
   * expires + timeout, ...; each firing with controlled connections left re-arms it (ip_vs_conn_expire: "do I
   * control anybody?"), so it dies at the first firing after its last controlled connection ended.
   */
  private due(c: number): boolean {
    if (this.expires[c]! > this.now) return false;
    if (this.template[c] !== CONN) {
      // (After sweep's first pass no controlled connection is due: skip the walk.)
      for (let k = 0; k < this.cap && this.nControl[c]! > 0 && !this.sweeping; k++) {
        if (this.control[k] === c && this.expires[k] !== 0 && this.expires[k]! <= this.now) this.expire(k);
      }
      const t = this.timeout[c]! > 0 ? this.timeout[c]! : 1;
      let fire = this.expires[c]!;
      if (this.nControl[c]! > 0) while (fire <= this.now) fire += t;
      else while (fire < this.ctlEnd[c]!) fire += t;
      if (fire > this.now) {
        this.expires[c] = fire;
        return false;
      }
    }
    this.expire(c);
    return true;
  }

  create(dest: IpvsDest, proto: number, caddr: number, cport: number, vaddr: number, vport: number, template: boolean, timeout: number): number {
    if (this.free.length === 0) this.grow(this.cap * 2);
    const c = this.free.pop()!;
    this.caddr[c] = caddr; this.cport[c] = cport; this.vaddr[c] = vaddr; this.vport[c] = vport;
    this.daddr[c] = dest.addr; this.dport[c] = dest.port; this.proto[c] = proto; this.dest[c] = dest.id;
    this.template[c] = template ? TEMPLATE : CONN;
    this.state[c] = !template && proto === 17 ? IpvsState.UDP : IpvsState.NONE;
    this.control[c] = -1;
    this.nControl[c] = 0;
    this.ctlEnd[c] = 0;
    this.timeout[c] = template ? timeout : this.timeouts[this.state[c]!]!;
    this.expires[c] = this.now + this.timeout[c]!;
    const b = IpvsConnTable.bucket(proto, caddr, cport);
    this.next[c] = this.heads[b]!;
    this.heads[b] = c;
    if (!template) {
      // ip_vs_bind_dest: a new connection starts inactive (the dest's conn_flags carry IP_VS_CONN_F_INACTIVE).
      this.inactive[c] = 1;
      dest.inactConns++;
    } else dest.persistConns++;
    this.count++;
    return c;
  }

  /** ip_vs_control_add: the template `tpl` controls connection `c`. */
  controlAdd(c: number, tpl: number): void {
    this.control[c] = tpl;
    this.nControl[tpl]!++;
  }

  /** Unlink and free a connection now (ip_vs_conn_expire_now); the real server's counters follow. */
  expire(c: number): void {
    const t = this.template[c] !== CONN;
    this.unlink(c, IpvsConnTable.bucket(this.proto[c]!, this.caddr[c]!, this.cport[c]!));
    const d = this.ipvs.destById[this.dest[c]!]!;
    if (t) d.persistConns--;
    else {
      if (this.inactive[c] === 1) d.inactConns--;
      else d.activeConns--;
      const tpl = this.control[c]!;
      if (tpl >= 0) {
        // ip_vs_control_del; the template's timer then runs at least as long as this connection would have.
        this.nControl[tpl]!--;
        const end = Math.min(this.expires[c]!, this.now);
        if (end > this.ctlEnd[tpl]!) this.ctlEnd[tpl] = end;
      }
    }
    this.expires[c] = 0;
    this.control[c] = -1;
    this.free.push(c);
    this.count--;
  }

  /** Free every entry whose timer has fired by `now` (what the kernel's timers have done by then). */
  sweep(now: number): void {
    this.now = now;
    for (let pass = 0; pass < 2; pass++) {
      this.sweeping = pass === 1;
      for (let c = 0; c < this.cap; c++) {
        if (this.expires[c] === 0) continue;
        // Connections first, then templates (which look at what they still control).
        if ((this.template[c] === CONN) === (pass === 0)) this.due(c);
      }
    }
    this.sweeping = false;
  }
  private sweeping = false;

  /** Live entries (connections and templates) after sweep(now), for listing. */
  entries(now: number): number[] {
    this.sweep(now);
    const out: number[] = [];
    for (let c = 0; c < this.cap; c++) if (this.expires[c] !== 0) out.push(c);
    return out;
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

  /** set_tcp_state: table transition, active/inactive accounting, timer restarted with the new state's timeout. */
  tcpState(c: number, flags: number, fromClient: boolean): void {
    const old = this.state[c]!;
    const st = ipvsTcpNextState(old, flags, fromClient ? TCP_DIR_INPUT : TCP_DIR_OUTPUT, this.secureTcp);
    if (st !== old) {
      const d = this.ipvs.destById[this.dest[c]!]!;
      if (this.inactive[c] === 0 && ACTIVE[st] === 0) {
        d.activeConns--;
        d.inactConns++;
        this.inactive[c] = 1;
      } else if (this.inactive[c] === 1 && ACTIVE[st] === 1) {
        d.activeConns++;
        d.inactConns--;
        this.inactive[c] = 0;
      }
      this.state[c] = st;
      // ip_vs_control_assure_ct: the controlling template becomes ASSURED once a connection is established.
      const tpl = this.control[c]!;
      if (st === IpvsState.ESTABLISHED && tpl >= 0) this.state[tpl] = IPVS_CTPL_S_ASSURED;
    }
    const timeout = this.timeouts[st]!;
    this.timeout[c] = timeout;
    this.expires[c] = this.now + timeout;
  }
}

/**
 * The IPVS hooks on one node: `inbound` for packets to a virtual service, `outbound` for real servers' replies.
 * Works on IPv4 bytes at `l3`; returns IPVS_ACCEPT / IPVS_STOLEN / IPVS_DROP / IPVS_REJECT (inbound) or whether it rewrote
 * (outbound). `lastConn` is the connection the packet used (-1 when none). Allocates nothing per packet.
 */
export class IpvsPath {
  readonly conns: IpvsConnTable;
  lastConn = -1;
  constructor(readonly ipvs: Ipvs) {
    this.conns = new IpvsConnTable(ipvs);
  }

  inbound(buf: Uint8Array, l3: number, now: number): number {
    const proto = buf[l3 + 9]!;
    const l4 = l3 + (buf[l3]! & 15) * 4;
    return this.inboundParsed(buf, l3, l4, proto, get32(buf, l3 + 12), get16(buf, l4), get32(buf, l3 + 16), get16(buf, l4 + 2),
      proto === 6 ? buf[l4 + 13]! : 0, now);
  }

  /**
   * inbound() for a caller that has parsed the headers already (the conntrack hook has): `l4` the transport header's
   * offset, the addresses (unsigned) and ports as the packet's bytes hold them, `flags` the TCP flags byte (FIN,
   * SYN, RST and ACK are what it reads).
   */
  inboundParsed(buf: Uint8Array, l3: number, l4: number, proto: number, caddr: number, cport: number, vaddr: number,
      vport: number, flags: number, now: number): number {
    this.lastConn = -1;
    if (proto !== 6 && proto !== 17 && proto !== 132) return IPVS_ACCEPT;
    const syn = proto === 6 && (flags & 0x02) !== 0;
    const t = this.conns;
    t.now = now;
    const c = t.findIn(proto, caddr, cport, vaddr, vport, CONN);
    // A packet of a known connection to an available real server, not a SYN (most packets): the state, the timer and
    // the DNAT. The rest (new connections, reuse, deleted real servers) in a function of its own, kept out of this one.
    if (c < 0 || syn || !this.ipvs.destById[t.dest[c]!]!.available) return this.inboundSlow(buf, l3, l4, proto, caddr, cport, vaddr, vport, flags, now, c);
    if (proto === 6) t.tcpState(c, flags, true);
    else t.expires[c] = now + t.timeout[c]!;
    rewrite(buf, l3, l4, proto, l3 + 16, l4 + 2, vaddr, vport, t.daddr[c]!, t.dport[c]!);
    this.lastConn = c;
    return IPVS_STOLEN;
  }

  /** inboundParsed for a packet without a connection, a SYN, or one whose real server was deleted (`c`: findIn's answer). */
  private inboundSlow(buf: Uint8Array, l3: number, l4: number, proto: number, caddr: number, cport: number, vaddr: number,
      vport: number, flags: number, now: number, c: number): number {
    const syn = proto === 6 && (flags & 0x02) !== 0;
    const t = this.conns;
    if (c >= 0 && syn) {
      // conn_reuse_mode: a SYN for a finished (uncontrolled) connection, or one whose real server is quiesced
      // (expire_nodest_conn), starts over with a new scheduling decision.
      const d = this.ipvs.destById[t.dest[c]!]!;
      const st = t.state[c]!;
      if (d.weight === 0 || (t.control[c] === -1 && (st === IpvsState.TIME_WAIT || st === IpvsState.CLOSE))) {
        t.expire(c);
        c = -1;
      }
    }
    if (c >= 0 && !this.ipvs.destById[t.dest[c]!]!.available) {
      // expire_nodest_conn: the real server was deleted. A SYN (fresh conntrack) is scheduled anew; any other
      // packet (confirmed conntrack) is dropped.
      t.expire(c);
      if (!syn) return IPVS_DROP;
      c = -1;
    }
    if (c < 0) {
      const s = this.ipvs.lookup(proto, vaddr, vport);
      if (s < 0) return IPVS_ACCEPT;
      const svc = this.ipvs.services[s]!;
      // tcp_conn_schedule: a TCP connection starts only with a SYN (without RST); others are passed on.
      if (proto === 6 && (flags & 0x06) !== 0x02) return IPVS_ACCEPT;
      let dest: IpvsDest | undefined;
      let tpl = -1;
      if (svc.persistent) {
        // ip_vs_sched_persist: template keyed by client address and the service (client port 0);
        // ip_vs_check_template: one pointing at an unavailable or weight-0 real server is made unfindable.
        tpl = t.findIn(proto, caddr, 0, vaddr, vport, TEMPLATE);
        if (tpl >= 0) {
          const td = this.ipvs.destById[t.dest[tpl]!]!;
          if (!td.available || td.weight === 0) {
            t.template[tpl] = TEMPLATE_DEAD;
            tpl = -1;
          } else dest = td;
        }
        if (tpl < 0) {
          const i = this.ipvs.schedule(svc, caddr);
          if (i >= 0) {
            dest = svc.dests[i]!;
            tpl = t.create(dest, proto, caddr, 0, vaddr, vport, true, svc.timeout);
          }
        }
      } else {
        const i = this.ipvs.schedule(svc, caddr);
        if (i >= 0) dest = svc.dests[i]!;
      }
      if (dest === undefined) return IPVS_REJECT;
      c = t.create(dest, proto, caddr, cport, vaddr, vport, false, 0);
      if (tpl >= 0) {
        t.controlAdd(c, tpl);
        // ip_vs_conn_put(ct): the template's timer restarts.
        t.expires[tpl] = now + t.timeout[tpl]!;
      }
    }
    if (proto === 6) t.tcpState(c, flags, true);
    else t.expires[c] = now + t.timeout[c]!;
    rewrite(buf, l3, l4, proto, l3 + 16, l4 + 2, vaddr, vport, t.daddr[c]!, t.dport[c]!);
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
    const daddr = get32(buf, l3 + 12);
    const dport = get16(buf, l4);
    const c = t.findOut(proto, daddr, dport, get32(buf, l3 + 16), get16(buf, l4 + 2));
    if (c < 0) return false;
    if (proto === 6) t.tcpState(c, buf[l4 + 13]!, false);
    else t.expires[c] = now + t.timeout[c]!;
    rewrite(buf, l3, l4, proto, l3 + 12, l4, daddr, dport, t.vaddr[c]!, t.vport[c]!);
    this.lastConn = c;
    return true;
  }
}

/**
 * Rewrite the destination (inbound) or source (outbound) address at `aOff` and port at `pOff` from oldA:oldP (what
 * the packet holds there) to addr:port, with incremental checksums.
 */
function rewrite(buf: Uint8Array, l3: number, l4: number, proto: number, aOff: number, pOff: number, oldA: number, oldP: number,
    addr: number, port: number): void {
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
