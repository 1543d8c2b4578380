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
import { Conntrack, CT_DROP, CT_INVALID, ctDir, ctIndex, IP_CT_NEW, IP_CT_RELATED, IP_CT_RELATED_REPLY, IPS_DST_NAT_DONE, isNew } from "./conntrack.js";
import type { ConntrackHook, PathResult } from "./hooks.js";
import { NatFlag } from "./compiled.js";
import {
  natInitialized, natNullBinding, natSetupInfo, NF_NAT_MANIP_DST, NF_NAT_MANIP_SRC, NF_NAT_RANGE_MAP_IPS, NF_NAT_RANGE_PERSISTENT,
  NF_NAT_RANGE_PROTO_RANDOM, NF_NAT_RANGE_PROTO_RANDOM_FULLY, NF_NAT_RANGE_PROTO_SPECIFIED, type NatRange,
} from "./nat.js";
import { natManips, natPacket } from "./nat-packet.js";
import type { PacketState } from "./packet-state.js";
import { IPPROTO_TCP, IPPROTO_UDP } from "./tuple.js";

const NAT_KIND_NONE = 0;

/** compiled.ts NatFlag bits → enum nf_nat_range flags. */
export function natRangeFlags(f: number): number {
  return (f & NatFlag.HAS_IP ? NF_NAT_RANGE_MAP_IPS : 0) | (f & NatFlag.HAS_PORTS ? NF_NAT_RANGE_PROTO_SPECIFIED : 0) |
    (f & NatFlag.RANDOM ? NF_NAT_RANGE_PROTO_RANDOM : 0) | (f & NatFlag.RANDOM_FULLY ? NF_NAT_RANGE_PROTO_RANDOM_FULLY : 0) |
    (f & NatFlag.PERSISTENT ? NF_NAT_RANGE_PERSISTENT : 0);
}
const NF_DROP = 0;

export class ConntrackPathHook implements ConntrackHook {
  buf: Uint8Array = new Uint8Array(0);
  l3off = 0;
  /** The packet's conntrack ref (see conntrack.ts), CT_INVALID before in(). */
  ref = CT_INVALID;
  /** Conntrack dropped the packet (table full). */
  dropped = false;
  private readonly range: NatRange = { flags: 0, minAddr: 0, maxAddr: 0, minProto: 0, maxProto: 0 };

  constructor(readonly ct: Conntrack) {}

  /**
   * The bytes of the packet about to walk the path (IPv4 header at `l3off`). The previous packet is finished:
   * if it was dropped before confirmation its unconfirmed entry is freed (kernel: the skb's last reference).
   */
  setPacket(buf: Uint8Array, l3off: number): void {
    if (this.ref >= 0) this.ct.destroy(this.ref);
    this.buf = buf;
    this.l3off = l3off;
    this.ref = CT_INVALID;
    this.dropped = false;
  }

  in(hook: number, p: PacketState): void {
    const ct = this.ct;
    const buf = this.buf;
    const l3 = this.l3off;
    const ref = ct.in(buf, l3, buf.length - l3, hook);
    this.ref = ref;
    if (ref === CT_DROP) this.dropped = true;
    p.ctState = ct.ctStateBits(ref);
    if (ref < 0) return;
    const i = ctIndex(ref);
    const o = i * 2;
    p.ctMark = ct.mark[i]!;
    p.ctOrigSrc = ct.tSrc[o]!;
    p.ctOrigDst = ct.tDst[o]!;
    const proto = ct.tProto[o]!;
    const ports = ct.tPorts[o]!;
    const l4 = proto === IPPROTO_TCP || proto === IPPROTO_UDP;
    p.ctOrigSport = l4 ? ports >>> 16 : 0;
    p.ctOrigDport = l4 ? ports & 0xffff : 0;
    // nf_nat_packet at the DST hook once the binding is set up (natInitialized), when this direction's DST manip
    // rewrites anything (natManips; RELATED ICMP errors always go through their translation).
    if (((ref & 7) !== IP_CT_NEW || (ct.status[i]! & IPS_DST_NAT_DONE) !== 0) && natManips(ct, ref, NF_NAT_MANIP_DST)) {
      this.manip(p, ref, NF_NAT_MANIP_DST);
    }
  }

  /** Has the connection's binding for this hook's manip been set up (the nat table must not be walked again)? */
  natDone(hook: number): boolean {
    if (this.ref < 0) return true;
    const manip = hook === 0 || hook === 3 ? NF_NAT_MANIP_DST : NF_NAT_MANIP_SRC;
    return natInitialized(this.ct, ctIndex(this.ref), manip);
  }

  confirm(p: PacketState, out: PathResult): void {
    const ct = this.ct;
    let ref = this.ref;
    if (ref < 0) return;
    const i = ctIndex(ref);
    const fresh = isNew(ref);
    ct.mark[i] = p.ctMark; // CONNMARK on the way (kernel: written to ct->mark at once; nothing reads it in between)
    if (isNew(ref)) {
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
    const natted = natManips(ct, ref, NF_NAT_MANIP_SRC);
    if (fresh) {
      if (natted) natPacket(ct, ref, NF_NAT_MANIP_SRC, this.buf, this.l3off);
    } else if (natted) this.manip(p, ref, NF_NAT_MANIP_SRC);
    ref = ct.confirm(ref);
    this.ref = ref;
    if (ref === CT_DROP) out.verdict = NF_DROP;
    if (fresh) this.refresh(p); // a NEW packet's state holds the range's first address until re-read
  }

  /**
   * nf_nat_packet for one manip, and the same change to `p`: an ordinary packet's new address and port are the
   * other direction's tuple inverted (what manipPkt wrote), so they are taken from the tuple, not re-read from the
   * bytes; RELATED ICMP errors (their quoted datagram is rewritten too) and packets too short to rewrite are re-read.
   */
  private manip(p: PacketState, ref: number, maniptype: number): void {
    const ct = this.ct;
    const ctinfo = ref & 7;
    if (!natPacket(ct, ref, maniptype, this.buf, this.l3off) || ctinfo === IP_CT_RELATED || ctinfo === IP_CT_RELATED_REPLY) {
      this.refresh(p);
      return;
    }
    const other = ctIndex(ref) * 2 + (ctDir(ref) ^ 1);
    const l4 = p.proto === IPPROTO_TCP || p.proto === IPPROTO_UDP;
    if (maniptype === NF_NAT_MANIP_SRC) {
      p.src = ct.tDst[other]!;
      if (l4) p.sport = ct.tPorts[other]! & 0xffff;
    } else {
      p.dst = ct.tSrc[other]!;
      if (l4) p.dport = ct.tPorts[other]! >>> 16;
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
