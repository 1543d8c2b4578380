// Connection tracking, modelled on Linux 6.x nf_conntrack (nf_conntrack_core.c and the tcp/udp/icmp trackers).
//
// ---- API for the hook runner (all numbers, nothing allocated per packet) ----
//   const ct = new Conntrack({ max, buckets, tcpLoose, random });
//   ct.setTime(seconds)                       clock (kernel jiffies/HZ); runs the gc worker once a second of model time
//   ref = ct.in(buf, l3off, len, hook)        nf_conntrack_in at PREROUTING (hook 0) or OUTPUT (hook 3), after raw.
//                                             ref >= 0: entry index and ctinfo packed as `idx * 8 + ctinfo`
//                                             (ctIndex(ref), ctInfo(ref), ctDir(ref)); CT_INVALID (-1): no conntrack
//                                             (ctstate INVALID); CT_DROP (-2): NF_DROP (table full / clash lost).
//                                             A packet the raw table marked NOTRACK skips in(): its ref is CT_UNTRACKED.
//   ctStateBits(ref)                          XT_CONNTRACK_STATE_* bits for `-m conntrack --ctstate` / `-m state`
//   ref = ct.confirm(ref)                     __nf_conntrack_confirm at the end of POSTROUTING / INPUT; may return
//                                             another entry's ref (UDP clash resolved onto the winner) or CT_DROP
//   ct.destroy(ref)                           the packet died before confirmation: free its unconfirmed entry
//   isNew(ref) / ct.status[idx] / ct.mark[idx] status bits (IPS_*), CONNMARK
//   NAT (nat.ts, nat-packet.ts) keeps its binding in the entry's reply tuple and status bits.
// Every packet that got a NEW unconfirmed entry from in() must reach confirm() or destroy().
// For hooks.ts (NetfilterPath), conntrack-hook.ts `ConntrackPathHook` implements ConntrackHook on packet bytes.
//
// Modelled: tuples of TCP, UDP, ICMP (id/type/code) and other protocols (generic, 600 s); TCP state machine
// (conntrack-tcp.ts); UDP 30 s unreplied, 120 s stream once replied and older than 2 s (then ASSURED); ICMP 30 s;
// ICMP errors RELATED to the entry of the datagram they quote (outer destination must be the quoted source);
// nf_conntrack_max with early_drop over 8 buckets; clash at confirmation with nf_ct_resolve_clash for UDP.
// Not modelled: checksum validation, fragments (the kernel reassembles first), zones, helpers/expectations, IPv6.
import {
  ConntrackTable,
  type ConntrackTableOptions,
  IP_CT_DIR_ORIGINAL,
  IP_CT_DIR_REPLY,
  IPS_ASSURED,
  IPS_CONFIRMED,
  IPS_DST_NAT,
  IPS_DYING,
  IPS_FIXED_TIMEOUT,
  IPS_NAT_CLASH,
  IPS_NAT_DONE_MASK,
  IPS_SEEN_REPLY,
  IPS_SRC_NAT,
} from "./conntrack-table.js";
import {
  CT_DROP,
  CT_INVALID,
  CT_UNTRACKED,
  ctDir,
  GENERIC_TIMEOUT,
  ICMP_TIMEOUT,
  IP_CT_ESTABLISHED,
  IP_CT_ESTABLISHED_REPLY,
  IP_CT_IS_REPLY,
  IP_CT_NEW,
  IP_CT_RELATED,
  IP_CT_RELATED_REPLY,
  NF_CT_EVICTION_RANGE,
  NF_INET_PRE_ROUTING,
  seededRandom16,
  UDP_STREAM_DELAY,
  UDP_TIMEOUT,
  UDP_TIMEOUT_STREAM,
  XT_CONNTRACK_STATE_DNAT,
  XT_CONNTRACK_STATE_INVALID,
  XT_CONNTRACK_STATE_SNAT,
  XT_CONNTRACK_STATE_UNTRACKED,
} from "./conntrack-const.js";
import { TCP_INVALID, TCP_REPEAT, tcpError, tcpNew, tcpPacket } from "./conntrack-tcp.js";
import {
  IPPROTO_ICMP,
  IPPROTO_TCP,
  IPPROTO_UDP,
  TUPLE_OK,
  TupleScratch,
  icmpIsError,
  icmpValidNew,
  invertPorts,
  readL4,
  readTuple,
} from "./tuple.js";

export * from "./conntrack-table.js";

export * from "./conntrack-const.js";

// The per-packet code (in, track) writes protocol numbers, ctinfo values, status bits and tracker results as
// literals with their names in comments (V8 loads an imported binding on every use); checked once here.
if (TUPLE_OK !== 0 || CT_INVALID !== -1 || IPPROTO_ICMP !== 1 || IPPROTO_TCP !== 6 || IPPROTO_UDP !== 17 ||
    IP_CT_ESTABLISHED !== 0 || IP_CT_NEW !== 2 || IP_CT_IS_REPLY !== 3 || IP_CT_ESTABLISHED_REPLY !== 3 ||
    IPS_SEEN_REPLY !== 2 || IPS_CONFIRMED !== 8 || TCP_INVALID !== -1 || TCP_REPEAT !== -2) {
  throw new Error("netfilter/conntrack.ts: literal constants out of step with their definitions");
}

/** kernel gc_worker: interval between full scans in this model (seconds of model time). */
const GC_INTERVAL = 1;
const REPEAT = -100;

export interface ConntrackOptions extends ConntrackTableOptions {
  /** net.netfilter.nf_conntrack_tcp_loose (default 1: pick up connections mid-stream). */
  tcpLoose?: boolean;
  /** Source of 16-bit random numbers (kernel get_random_u16, used by NAT port selection). Seeded by default. */
  random?: () => number;
  /** Seed of the default generator. */
  seed?: number;
  /** net.netfilter.nf_conntrack_acct: count packets and bytes per direction (default off, as in the kernel). */
  acct?: boolean;
}

export class Conntrack extends ConntrackTable {
  readonly tcpLoose: boolean;
  readonly random: () => number;
  readonly acct: boolean;
  /** The tuple of the packet being processed (and, for ICMP errors, of the quoted datagram). */
  readonly t = new TupleScratch();
  readonly inner = new TupleScratch();
  private lastGc = 0;

  constructor(opts: ConntrackOptions = {}) {
    super(opts);
    this.tcpLoose = opts.tcpLoose ?? true;
    this.random = opts.random ?? seededRandom16(opts.seed ?? 1);
    this.acct = opts.acct ?? false;
  }

  /** Advance the clock; the gc worker removes expired entries once per second of model time. */
  setTime(now: number): void {
    this.now = now;
    if (now - this.lastGc >= GC_INTERVAL) this.gc();
  }

  /** kernel gc_worker: remove every expired confirmed entry. Returns how many were removed. */
  gc(): number {
    this.lastGc = this.now;
    let n = 0;
    for (let i = 0; i < this.slots; i++) {
      if (this.inUse[i] && (this.status[i]! & IPS_CONFIRMED) && this.expires[i]! <= this.now) {
        this.kill(i);
        n++;
      }
    }
    this.flushDying();
    return n;
  }

  /** nf_conntrack_in. See the header for the meaning of the result. */
  in(buf: Uint8Array, l3off: number, len: number, hook = NF_INET_PRE_ROUTING): number {
    return this.inTuple(readTuple(buf, l3off, len, this.t), hook);
  }

  /**
   * nf_conntrack_in for a packet whose tuple is in `this.t` already: `read` is what readTuple returned for it (the
   * caller read the header once for its own use too, see ConntrackPathHook.load).
   */
  inTuple(read: number, hook = NF_INET_PRE_ROUTING): number {
    if (this.dyingTop > 0) this.flushDying();
    const t = this.t;
    if (read !== 0 /* TUPLE_OK */) {
      this.stats.invalid++;
      return -1 /* CT_INVALID */;
    }
    const proto = t.proto;
    if (proto === 1 /* IPPROTO_ICMP */ && icmpIsError(t.type)) return this.icmpError(t.buf, t, hook);
    if (proto === 6 /* IPPROTO_TCP */ && tcpError(t)) {
      this.stats.invalid++;
      return -1 /* CT_INVALID */;
    }
    for (;;) {
      const r = this.track(t);
      if (r !== -100 /* REPEAT */) return r;
    }
  }

  /** resolve_normal_ct + the L4 tracker + SEEN_REPLY; REPEAT when TCP killed the entry to start over. */
  private track(t: TupleScratch): number {
    let i: number;
    let ctinfo: number;
    const node = this.findNode(t.src, t.dst, t.ports, t.proto);
    if (node >= 0) {
      i = node >> 1;
      if (node & 1) ctinfo = 3 /* IP_CT_ESTABLISHED_REPLY */;
      else ctinfo = this.status[i]! & 2 /* IPS_SEEN_REPLY */ ? 0 /* IP_CT_ESTABLISHED */ : 2 /* IP_CT_NEW */;
    } else {
      const rports = invertPorts(t.proto, t.ports);
      if (rports < 0) {
        this.stats.invalid++; // an ICMP type with no reply type (kernel: nf_ct_invert_tuple fails)
        return CT_INVALID;
      }
      i = this.initConntrack(t.src, t.dst, t.ports, t.proto, rports);
      if (i < 0) {
        this.stats.drop++;
        return CT_DROP;
      }
      ctinfo = IP_CT_NEW;
    }
    const dir = ctinfo >= 3 /* IP_CT_IS_REPLY */ ? 1 : 0;
    const confirmed = (this.status[i]! & 8 /* IPS_CONFIRMED */) !== 0;
    let r: number;
    switch (t.proto) {
      case 6 /* IPPROTO_TCP */:
        if (!confirmed && !tcpNew(this, i, t, this.tcpLoose)) r = -1 /* TCP_INVALID */;
        else r = tcpPacket(this, i, dir, t);
        break;
      case 17 /* IPPROTO_UDP */:
        r = this.udpPacket(i, confirmed);
        break;
      case 1 /* IPPROTO_ICMP */:
        if (!confirmed && !icmpValidNew(t.type)) r = -1 /* TCP_INVALID */;
        else {
          this.refresh(i, ICMP_TIMEOUT);
          r = 1;
        }
        break;
      default:
        this.refresh(i, GENERIC_TIMEOUT);
        r = 1;
    }
    if (r === -2 /* TCP_REPEAT */) return REPEAT;
    if (r < 0) {
      if (!confirmed) this.kill(i);
      this.stats.invalid++;
      return -1 /* CT_INVALID */;
    }
    if (this.acct === true) {
      const o = i * 2 + dir;
      this.packets[o]!++;
      this.bytes[o]! += t.l4len + (t.l4off - t.l3off);
    }
    if (ctinfo === 3 /* IP_CT_ESTABLISHED_REPLY */) this.status[i] |= 2 /* IPS_SEEN_REPLY */;
    return i * 8 + ctinfo;
  }

  /** kernel nf_ct_refresh_acct: a fixed-timeout entry (NAT clash) keeps its timeout. */
  private refresh(i: number, timeout: number): void {
    if (!(this.status[i]! & IPS_FIXED_TIMEOUT)) this.expires[i] = this.now + timeout;
  }

  /** kernel nf_conntrack_udp_packet (Linux >= 6.0: stream only after UDP_STREAM_DELAY). */
  private udpPacket(i: number, confirmed: boolean): number {
    if (!confirmed) this.streamTs[i] = this.now + UDP_STREAM_DELAY;
    const status = this.status[i]!;
    if (status & IPS_SEEN_REPLY) {
      let extra = UDP_TIMEOUT;
      let stream = false;
      if (this.now > this.streamTs[i]!) {
        extra = UDP_TIMEOUT_STREAM;
        stream = (status & IPS_ASSURED) === 0;
      }
      this.refresh(i, extra);
      if (status & IPS_NAT_CLASH) return 1; // never ASSURED: clash entries must time out soon
      if (stream) this.status[i] = status | IPS_ASSURED;
    } else {
      this.refresh(i, UDP_TIMEOUT);
    }
    return 1;
  }

  /** kernel init_conntrack + __nf_conntrack_alloc: a new unconfirmed entry, early_drop when the table is full. */
  private initConntrack(src: number, dst: number, ports: number, proto: number, rports: number): number {
    let i = this.allocSlot(src, dst, ports, proto, dst, src, rports);
    if (i < 0) {
      if (!this.earlyDrop(this.bucketOfTuple(src, dst, ports, proto))) return -1; // "table full, dropping packet"
      this.flushDying();
      i = this.allocSlot(src, dst, ports, proto, dst, src, rports);
    }
    return i;
  }

  /**
   * kernel early_drop: from the new tuple's bucket, scan up to NF_CT_EVICTION_RANGE chains; in the first chain
   * holding any, delete every confirmed non-ASSURED entry (expired ones met on the way are removed too).
   */
  earlyDrop(bucket: number): boolean {
    for (let k = 0; k < NF_CT_EVICTION_RANGE; k++) {
      const b = (bucket + k) % this.buckets;
      let drops = 0;
      let n = this.heads[b]!;
      while (n >= 0) {
        const next = this.hnext[n]!;
        const i = n >> 1;
        if (this.expires[i]! <= this.now) this.kill(i);
        else if (!(this.status[i]! & (IPS_ASSURED | IPS_DYING)) && (this.status[i]! & IPS_CONFIRMED)) {
          this.kill(i);
          drops++;
        }
        n = next;
      }
      if (drops > 0) {
        this.stats.early_drop += drops;
        return true;
      }
    }
    return false;
  }

  /**
   * ICMP errors (kernel icmp_error + nf_conntrack_inet_error): the quoted datagram's tuple, inverted, must find an
   * entry; the packet is then RELATED to it (RELATED_REPLY when found in the reply direction). No match: INVALID.
   */
  private icmpError(buf: Uint8Array, t: TupleScratch, hook: number): number {
    void hook;
    const q = this.inner;
    const qoff = t.l4off + 8;
    const avail = t.l4len - 8;
    if (avail < 20 || buf[qoff]! >>> 4 !== 4) return this.icmpErrorInvalid();
    const ihl = (buf[qoff]! & 15) * 4;
    if (ihl < 20 || avail < ihl) return this.icmpErrorInvalid();
    q.l3off = qoff;
    q.proto = buf[qoff + 9]!;
    q.src = ((buf[qoff + 12]! << 24) | (buf[qoff + 13]! << 16) | (buf[qoff + 14]! << 8) | buf[qoff + 15]!) >>> 0;
    q.dst = ((buf[qoff + 16]! << 24) | (buf[qoff + 17]! << 16) | (buf[qoff + 18]! << 8) | buf[qoff + 19]!) >>> 0;
    q.l4off = qoff + ihl;
    q.l4len = avail - ihl;
    if (readL4(buf, q, q.l4len) !== TUPLE_OK) return this.icmpErrorInvalid();
    // An error about an error is not tracked (kernel: inner ICMP must not be an error).
    if (q.proto === IPPROTO_ICMP && icmpIsError(q.type)) return this.icmpErrorInvalid();
    const rports = invertPorts(q.proto, q.ports);
    if (rports < 0) return this.icmpErrorInvalid();
    const node = this.findNode(q.dst, q.src, rports, q.proto);
    if (node < 0) return this.icmpErrorInvalid();
    const i = node >> 1;
    const dir = node & 1;
    // The error must go back to the quoted datagram's sender (kernel: outer daddr == tuple dst of that direction).
    if (t.dst !== this.tDst[node]) return this.icmpErrorInvalid();
    if (this.acct) {
      this.packets[node]!++;
      this.bytes[node]! += t.l4len + (t.l4off - t.l3off);
    }
    return i * 8 + (dir ? IP_CT_RELATED_REPLY : IP_CT_RELATED);
  }

  private icmpErrorInvalid(): number {
    this.stats.error++;
    return CT_INVALID;
  }

  /**
   * kernel __nf_conntrack_confirm: insert the entry's two tuples into the hash. A clash with a confirmed entry is
   * resolved for UDP and ICMP as Linux 6.x nf_ct_resolve_clash does (attach to the winner when both agree on NAT, else insert
   * the loser as a 1 s NAT_CLASH entry reachable only by its reply tuple), otherwise the packet is dropped and
   * counted in insert_failed and drop.
   */
  confirm(ref: number): number {
    if (ref < 0) return ref;
    const i = ref >>> 3;
    const st = this.status[i]!;
    if (st & IPS_CONFIRMED) return ref;
    if (ctDir(ref) !== IP_CT_DIR_ORIGINAL) return ref;
    if (st & IPS_DYING) {
      this.stats.insert_failed++;
      this.stats.drop++;
      return CT_DROP;
    }
    const o = i * 2;
    let clash = this.findNode(this.tSrc[o]!, this.tDst[o]!, this.tPorts[o]!, this.tProto[o]!);
    if (clash < 0) clash = this.findNode(this.tSrc[o + 1]!, this.tDst[o + 1]!, this.tPorts[o + 1]!, this.tProto[o + 1]!);
    if (clash >= 0) return this.resolveClash(ref, clash);
    this.status[i] = st | IPS_CONFIRMED;
    this.hashNode(o);
    this.hashNode(o + 1);
    return ref;
  }

  private resolveClash(ref: number, clashNode: number): number {
    const loser = ref >>> 3;
    // l4proto->allow_clash: UDP (and UDP-Lite, DCCP, GRE), and ICMP since Linux 6.x; never TCP.
    const proto = this.tProto[loser * 2];
    if (proto === IPPROTO_UDP || proto === IPPROTO_ICMP) {
      const r = this.resolveClashWith(ref, clashNode >> 1);
      if (r >= 0) return r;
      // nf_ct_resolve_clash_harder: a clash in the reply direction is resolved only with the same flow.
      const lr = loser * 2 + 1;
      const replyClash = this.findNode(this.tSrc[lr]!, this.tDst[lr]!, this.tPorts[lr]!, this.tProto[lr]!);
      if (replyClash >= 0) {
        const r2 = this.resolveClashWith(ref, replyClash >> 1);
        if (r2 >= 0) return r2;
      } else {
        this.expires[loser] = this.now + 1;
        this.status[loser] |= IPS_FIXED_TIMEOUT | IPS_NAT_CLASH | IPS_CONFIRMED;
        this.hashNode(lr); // ORIGINAL is not hashed: lookups keep finding the winner
        this.stats.clash_resolve++;
        return ref;
      }
    }
    this.stats.drop++;
    this.stats.insert_failed++;
    this.kill(loser);
    return CT_DROP;
  }

  /** kernel __nf_ct_resolve_clash: attach the packet to the winner when it has no NAT or the same tuples. */
  private resolveClashWith(ref: number, winner: number): number {
    if (this.status[winner]! & IPS_DYING) return -1;
    const loser = ref >>> 3;
    if ((this.status[winner]! & IPS_NAT_DONE_MASK) === 0 || this.sameTuples(winner, loser)) {
      this.kill(loser);
      this.stats.clash_resolve++;
      return winner * 8 + (ref & 7);
    }
    return -1;
  }

  private sameTuples(a: number, b: number): boolean {
    for (let d = 0; d < 2; d++) {
      const x = a * 2 + d;
      const y = b * 2 + d;
      if (this.tSrc[x] !== this.tSrc[y] || this.tDst[x] !== this.tDst[y] || this.tPorts[x] !== this.tPorts[y] || this.tProto[x] !== this.tProto[y]) return false;
    }
    return true;
  }

  /** The packet holding an unconfirmed entry was dropped: free the entry (kernel: last reference put). */
  destroy(ref: number): void {
    if (ref < 0) return;
    const i = ref >>> 3;
    if (this.inUse[i] && !(this.status[i]! & IPS_CONFIRMED)) this.kill(i);
  }

  /** XT_CONNTRACK_STATE_* bits of a packet's ref, as xt_conntrack computes them. */
  ctStateBits(ref: number): number {
    if (ref === CT_UNTRACKED) return XT_CONNTRACK_STATE_UNTRACKED;
    if (ref < 0) return XT_CONNTRACK_STATE_INVALID;
    const ctinfo = ref & 7;
    let bits = 1 << ((ctinfo % IP_CT_IS_REPLY) + 1);
    const st = this.status[ref >>> 3]!;
    if (st & IPS_SRC_NAT) bits |= XT_CONNTRACK_STATE_SNAT;
    if (st & IPS_DST_NAT) bits |= XT_CONNTRACK_STATE_DNAT;
    return bits;
  }

  /** Remaining timeout in whole seconds, as `conntrack -L` prints it. */
  remaining(i: number): number {
    const left = this.expires[i]! - this.now;
    return left > 0 ? Math.floor(left) : 0;
  }

  /** Look up the entry holding a tuple (tests, CLI): node (entry*2+dir) or -1. */
  lookup(src: number, dst: number, ports: number, proto: number): number {
    return this.findNode(src, dst, ports, proto);
  }
}
