// The conntrack + NAT model plugged into the hook path (hooks.ts `ConntrackHook`): the path walks the rules on its
// PacketState, this adapter keeps the packet's bytes, its conntrack entry and its NAT binding in step.
//
//   const hook = new ConntrackPathHook(new Conntrack());
//   const path = new NetfilterPath(rules, env, hook);
//   hook.setPacket(frame, 14);  p.fromIpv4(frame, 14);  path.receive(p, out);
//
// in(hook, p) at PREROUTING/OUTPUT (priority -200): nf_conntrack_in on the bytes; ctstate, ctmark and the original
//   tuple go to `p`; a packet of a known connection gets its destination manip now (nf_nat_packet at the DNAT hook),
//   and `p` is refreshed from the rewritten bytes.
// confirm(p, out) at the end of an accepted path: for a NEW connection the path's NAT decisions become bindings
//   (nf_nat_setup_info: the kernel's port choice, clash handling; no decision = null binding), the bytes get their
//   destination (first packet) and source manips, then __nf_conntrack_confirm. A failed confirmation drops the
//   packet (out.verdict = NF_DROP). `p` is refreshed from the bytes.
// A packet dropped by conntrack itself (table full) sets `dropped`; the caller should drop it.
// The path hands over each NAT target's full range (PathResult dnat*/snat*: min/max address, min/max port, and
// NatFlag bits), turned here into the kernel's struct nf_nat_range2: HAS_IP → NF_NAT_RANGE_MAP_IPS, HAS_PORTS →
// NF_NAT_RANGE_PROTO_SPECIFIED (a --to-ports equal to the packet's port is still a range), RANDOM, RANDOM_FULLY,
// PERSISTENT → their NF_NAT_RANGE_* flags.
import { get16 } from "../packet/checksum.js";
import {
  Conntrack, CT_DROP, CT_INVALID, CT_UNTRACKED, IP_CT_IS_REPLY, IP_CT_NEW, IP_CT_RELATED, IP_CT_RELATED_REPLY, IPS_DST_NAT,
  IPS_DST_NAT_DONE, IPS_SRC_NAT, IPS_SRC_NAT_DONE, XT_CONNTRACK_STATE_DNAT, XT_CONNTRACK_STATE_INVALID, XT_CONNTRACK_STATE_SNAT,
  XT_CONNTRACK_STATE_UNTRACKED,
} from "./conntrack.js";
import type { ConntrackHook, PathResult } from "./hooks.js";
import { NatFlag } from "./compiled.js";
import {
  natInitialized, natNullBinding, natSetupInfo, NF_NAT_MANIP_DST, NF_NAT_MANIP_SRC, NF_NAT_RANGE_MAP_IPS, NF_NAT_RANGE_PERSISTENT,
  NF_NAT_RANGE_PROTO_RANDOM, NF_NAT_RANGE_PROTO_RANDOM_FULLY, NF_NAT_RANGE_PROTO_SPECIFIED, type NatRange,
} from "./nat.js";
import { manipPkt, natPacket } from "./nat-packet.js";
import type { PacketState } from "./packet-state.js";
import { IPPROTO_TCP, IPPROTO_UDP, readTuple } from "./tuple.js";

const NAT_KIND_NONE = 0;

/** compiled.ts NatFlag bits → enum nf_nat_range flags. */
export function natRangeFlags(f: number): number {
  return (f & NatFlag.HAS_IP ? NF_NAT_RANGE_MAP_IPS : 0) | (f & NatFlag.HAS_PORTS ? NF_NAT_RANGE_PROTO_SPECIFIED : 0) |
    (f & NatFlag.RANDOM ? NF_NAT_RANGE_PROTO_RANDOM : 0) | (f & NatFlag.RANDOM_FULLY ? NF_NAT_RANGE_PROTO_RANDOM_FULLY : 0) |
    (f & NatFlag.PERSISTENT ? NF_NAT_RANGE_PERSISTENT : 0);
}
const NF_DROP = 0;

// The per-packet code below writes ctinfo values, refs, status and state bits, manip types and protocol numbers as
// literals with their names in comments (V8 loads an imported binding on every use); checked once here.
if (CT_DROP !== -2 || CT_UNTRACKED !== -3 || XT_CONNTRACK_STATE_INVALID !== 1 || XT_CONNTRACK_STATE_UNTRACKED !== 256 ||
    XT_CONNTRACK_STATE_SNAT !== IPS_SRC_NAT << 2 || XT_CONNTRACK_STATE_DNAT !== IPS_DST_NAT << 2 || IPS_SRC_NAT !== 16 ||
    IPS_DST_NAT !== 32 || IPS_DST_NAT_DONE !== 256 || IPS_SRC_NAT_DONE !== 128 || IP_CT_RELATED !== 1 || IP_CT_NEW !== 2 ||
    IP_CT_IS_REPLY !== 3 || IP_CT_RELATED_REPLY !== 4 || NF_NAT_MANIP_SRC !== 0 || NF_NAT_MANIP_DST !== 1 || IPPROTO_TCP !== 6 ||
    IPPROTO_UDP !== 17) {
  throw new Error("netfilter/conntrack-hook.ts: literal constants out of step with their definitions");
}

export class ConntrackPathHook implements ConntrackHook {
  buf: Uint8Array = new Uint8Array(0);
  l3off = 0;
  /** The packet's conntrack ref (see conntrack.ts), CT_INVALID before in(). */
  ref = CT_INVALID;
  /** Conntrack dropped the packet (table full). */
  dropped = false;
  /** load() read the packet's tuple into ct.t (in() need not read it again). */
  private tupleRead = false;
  private readonly range: NatRange = { flags: 0, minAddr: 0, maxAddr: 0, minProto: 0, maxProto: 0 };

  constructor(readonly ct: Conntrack) {}

  /**
   * The bytes of the packet about to walk the path (IPv4 header at `l3off`). The previous packet is finished:
   * if it was dropped before confirmation its unconfirmed entry is freed (kernel: the skb's last reference).
   */
  setPacket(buf: Uint8Array, l3off: number): void {
    // Only a NEW packet's entry can be unconfirmed (a confirmed one was found in the hash: ctinfo NEW or not).
    if (this.ref >= 0 && (this.ref & 7) === 2 /* IP_CT_NEW */) this.ct.destroy(this.ref);
    this.buf = buf;
    this.l3off = l3off;
    this.ref = CT_INVALID;
    this.dropped = false;
    this.tupleRead = false;
  }

  /**
   * setPacket(buf, l3off), p.reset() and p.fromIpv4(buf, l3off) in one, reading the IPv4 header once: conntrack's
   * tuple (readTuple, what in() looks up) is read here and, for a whole TCP or UDP datagram, `p` is filled from it
   * (the same fields fromIpv4 reads; anything else goes through fromIpv4). Returns what fromIpv4 returns.
   */
  load(buf: Uint8Array, l3off: number, p: PacketState): boolean {
    this.setPacket(buf, l3off);
    const t = this.ct.t;
    const read = readTuple(buf, l3off, buf.length - l3off, t);
    const proto = t.proto;
    // readTuple accepted it: IPv4, header and total length within the buffer, not a fragment (fromIpv4: frag 0).
    if (read === 0 /* TUPLE_OK */ && (proto === 6 /* IPPROTO_TCP */ ? t.l4len >= 20 : proto === 17 /* IPPROTO_UDP */)) {
      this.tupleRead = true;
      p.resetMeta(); // reset(), the header's fields written below
      p.len = t.l4off - l3off + t.l4len; // the total length
      p.proto = proto;
      p.src = t.src;
      p.dst = t.dst;
      const ports = t.ports;
      p.sport = ports >>> 16;
      p.dport = ports & 0xffff;
      p.tcpFlags = proto === 6 ? t.tcpFlags & 0x3f : 0;
      p.icmpType = p.icmpCode = p.frag = 0;
      return true;
    }
    p.reset();
    return p.fromIpv4(buf, l3off);
  }

  in(hook: number, p: PacketState): void {
    const ct = this.ct;
    const buf = this.buf;
    const l3 = this.l3off;
    // The tuple load() read is still the packet's when ct.t holds this buffer and offset (nothing read another since).
    const t = ct.t;
    const ref = this.tupleRead === true && t.buf === buf && t.l3off === l3 ? ct.inTuple(0 /* TUPLE_OK */, hook) : ct.in(buf, l3, buf.length - l3, hook);
    this.tupleRead = false;
    this.ref = ref;
    if (ref < 0) {
      // ct.ctStateBits for a packet without an entry.
      if (ref === -2 /* CT_DROP */) this.dropped = true;
      p.ctState = ref === -3 /* CT_UNTRACKED */ ? 256 /* XT_CONNTRACK_STATE_UNTRACKED */ : 1 /* XT_CONNTRACK_STATE_INVALID */;
      return;
    }
    const i = ref >>> 3;
    const ctinfo = ref & 7;
    // The entry's words are read before `p` is written (a field store may clobber what V8 knows of the arrays).
    const st = ct.status[i]!;
    const mark = ct.mark[i]!;
    // The ORIGINAL tuple from ct.keys (src, dst, ports, proto of node 2i at 8i): one array for the four words.
    const keys = ct.keys;
    const k = i * 8;
    const origSrc = keys[k]!;
    const origDst = keys[k + 1]!;
    const ports = keys[k + 2]!;
    const proto = keys[k + 3]!;
    // ct.ctStateBits written out: 1 << (ctinfo % IP_CT_IS_REPLY + 1), IPS_SRC_NAT (16) → SNAT (64), IPS_DST_NAT (32) → DNAT (128).
    p.ctState = (1 << ((ctinfo >= 3 ? ctinfo - 3 : ctinfo) + 1)) | ((st & 48) << 2);
    p.ctMark = mark;
    p.ctOrigSrc = origSrc;
    p.ctOrigDst = origDst;
    const l4 = proto === 6 /* IPPROTO_TCP */ || proto === 17 /* IPPROTO_UDP */;
    p.ctOrigSport = l4 ? ports >>> 16 : 0;
    p.ctOrigDport = l4 ? ports & 0xffff : 0;
    // nf_nat_packet at the DST hook once the binding is set up (natInitialized), when this direction's DST manip
    // rewrites anything (natPacket's status bit test: DST_NAT, SRC_NAT in the reply direction; RELATED ICMP errors
    // always go through their translation).
    if (ctinfo === 2 /* IP_CT_NEW */ && (st & 256 /* IPS_DST_NAT_DONE */) === 0) return;
    if (ctinfo === 1 /* IP_CT_RELATED */ || ctinfo === 4 /* IP_CT_RELATED_REPLY */ || (st & (ctinfo >= 3 ? 16 /* IPS_SRC_NAT */ : 32 /* IPS_DST_NAT */)) !== 0) {
      this.manip(p, ref, 1 /* NF_NAT_MANIP_DST */);
    }
  }

  /** Has the connection's binding for this hook's manip been set up (the nat table must not be walked again)? */
  natDone(hook: number): boolean {
    const ref = this.ref;
    if (ref < 0) return true;
    // natInitialized for the hook's manip (DST at PREROUTING/OUTPUT, else SRC), written out: it runs per nat hook.
    const bit = hook === 0 || hook === 3 ? 256 /* IPS_DST_NAT_DONE */ : 128 /* IPS_SRC_NAT_DONE */;
    return (this.ct.status[ref >>> 3]! & bit) !== 0;
  }

  confirm(p: PacketState, out: PathResult): void {
    const ct = this.ct;
    let ref = this.ref;
    if (ref < 0) return;
    const i = ref >>> 3;
    const ctinfo = ref & 7;
    const fresh = ctinfo === 2 /* IP_CT_NEW */;
    ct.mark[i] = p.ctMark; // CONNMARK on the way (kernel: written to ct->mark at once; nothing reads it in between)
    if (fresh) {
      if (!natInitialized(ct, i, NF_NAT_MANIP_DST)) {
        if (out.dnat) natSetupInfo(ct, i, this.rangeOf(out.dnatFlags, out.dnatIp, out.dnatMaxIp, out.dnatPort, out.dnatMaxPort), NF_NAT_MANIP_DST);
        else natNullBinding(ct, i, NF_NAT_MANIP_DST);
        natPacket(ct, ref, NF_NAT_MANIP_DST, this.buf, this.l3off);
      }
      if (!natInitialized(ct, i, NF_NAT_MANIP_SRC)) {
        if (out.snatKind !== NAT_KIND_NONE) natSetupInfo(ct, i, this.rangeOf(out.snatFlags, out.snatIp, out.snatMaxIp, out.snatPort, out.snatMaxPort), NF_NAT_MANIP_SRC);
        else natNullBinding(ct, i, NF_NAT_MANIP_SRC);
      }
    }
    // Does the SRC manip rewrite (natPacket's status bit test)? SRC_NAT (16) in the original direction, DST_NAT (32) in
    // the reply direction; RELATED ICMP errors always. (Written out here and in in(): one shared helper for the two
    // tests measured the kube-proxy established path 303 -> 457 ns/packet in back-to-back runs of
    // bench/conntrack.bench.ts.)
    const natted = ctinfo === 1 /* IP_CT_RELATED */ || ctinfo === 4 /* IP_CT_RELATED_REPLY */ ||
      (ct.status[i]! & (ctinfo >= 3 ? 32 /* IPS_DST_NAT */ : 16 /* IPS_SRC_NAT */)) !== 0;
    if (fresh) {
      if (natted) natPacket(ct, ref, NF_NAT_MANIP_SRC, this.buf, this.l3off);
    } else if (natted) this.manip(p, ref, NF_NAT_MANIP_SRC);
    if (!fresh) return; // a connection's later packets: the entry is confirmed (ct.confirm would return ref)
    ref = ct.confirm(ref);
    this.ref = ref;
    if (ref === CT_DROP) out.verdict = NF_DROP;
    this.refresh(p); // a NEW packet's state holds the range's first address until re-read
  }

  /**
   * nf_nat_packet for one manip, and the same change to `p`: an ordinary packet's new address and port are the
   * other direction's tuple inverted (what manipPkt wrote), so they are taken from the tuple, not re-read from the
   * bytes; RELATED ICMP errors (their quoted datagram is rewritten too) and packets too short to rewrite are re-read.
   */
  private manip(p: PacketState, ref: number, maniptype: number): void {
    const ct = this.ct;
    const ctinfo = ref & 7;
    if (ctinfo === 1 /* IP_CT_RELATED */ || ctinfo === 4 /* IP_CT_RELATED_REPLY */) {
      natPacket(ct, ref, maniptype, this.buf, this.l3off);
      this.refresh(p);
      return;
    }
    // natPacket for an ordinary packet whose manip rewrites (both callers checked its status bit): manipPkt with the
    // inverse of the other direction's tuple.
    const buf = this.buf;
    const l3 = this.l3off;
    const other = (ref >>> 3) * 2 + (ctinfo >= 3 ? 0 : 1);
    if (!manipPkt(buf, l3, l3 + ((buf[l3 + 2]! << 8) | buf[l3 + 3]!), ct, other, true, maniptype)) {
      this.refresh(p);
      return;
    }
    const l4 = p.proto === 6 /* IPPROTO_TCP */ || p.proto === 17 /* IPPROTO_UDP */;
    const keys = ct.keys; // the other node's tuple: src, dst, ports at other * 4
    const k = other * 4;
    if (maniptype === 0 /* NF_NAT_MANIP_SRC */) {
      p.src = keys[k + 1]!;
      if (l4) p.sport = keys[k + 2]! & 0xffff;
    } else {
      p.dst = keys[k]!;
      if (l4) p.dport = keys[k + 2]! >>> 16;
    }
  }

  /** The rule's range as struct nf_nat_range2 (reused; natSetupInfo reads it at once). */
  private rangeOf(flags: number, minIp: number, maxIp: number, minPort: number, maxPort: number): NatRange {
    const r = this.range;
    r.flags = natRangeFlags(flags);
    r.minAddr = minIp;
    r.maxAddr = maxIp;
    r.minProto = minPort;
    r.maxProto = maxPort;
    return r;
  }

  /** Re-read what NAT changed in the bytes: addresses and ports. */
  private refresh(p: PacketState): void {
    const b = this.buf;
    const l3 = this.l3off;
    p.src = ((b[l3 + 12]! << 24) | (b[l3 + 13]! << 16) | (b[l3 + 14]! << 8) | b[l3 + 15]!) >>> 0;
    p.dst = ((b[l3 + 16]! << 24) | (b[l3 + 17]! << 16) | (b[l3 + 18]! << 8) | b[l3 + 19]!) >>> 0;
    if (p.proto === IPPROTO_TCP || p.proto === IPPROTO_UDP) {
      const l4 = l3 + (b[l3]! & 15) * 4;
      p.sport = get16(b, l4);
      p.dport = get16(b, l4 + 2);
    }
  }
}
