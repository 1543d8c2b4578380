// Replaying captured frames through one forwarding box's conntrack: PREROUTING (conntrack, optional DNAT),
// POSTROUTING (optional SNAT/MASQUERADE, confirm). The capture's timestamps drive the clock. Used by
// `tcbox conntrack --pcap` until the full dataplane exists, and handy for differential checks against the kernel.
import { cidrContains, type Ipv4Cidr } from "../packet/addr.js";
import { get16, get32 } from "../packet/checksum.js";
import { Conntrack, CT_DROP, CT_INVALID, ctIndex, isNew, NF_INET_PRE_ROUTING } from "./conntrack.js";
import { natInitialized, natNullBinding, natSetupInfo, NF_NAT_MANIP_DST, NF_NAT_MANIP_SRC, type NatRange } from "./nat.js";
import { natPacket } from "./nat-packet.js";

/** DNAT packets of `proto` (0 = any) to dst:dport (dport 0 = any port). */
export interface DnatRule {
  proto: number;
  dst: number;
  dport: number;
  to: NatRange;
}

/** SNAT new connections whose source lies in `from` (MASQUERADE is SNAT to the box's address). */
export interface SnatRule {
  from: Ipv4Cidr;
  to: NatRange;
}

export interface ReplayStats {
  frames: number;
  ipv4: number;
  invalid: number;
  dropped: number;
}

export class ConntrackReplay {
  readonly stats: ReplayStats = { frames: 0, ipv4: 0, invalid: 0, dropped: 0 };
  private t0 = -1;

  constructor(
    readonly ct: Conntrack,
    readonly dnat: DnatRule[] = [],
    readonly snat: SnatRule[] = [],
  ) {}

  /** One Ethernet frame captured at `tsNs` (nanoseconds). The frame is rewritten in place by NAT. */
  frame(f: Uint8Array, tsSeconds: number): void {
    this.stats.frames++;
    if (this.t0 < 0) this.t0 = tsSeconds;
    let l3 = 14;
    if (f.length < 14) return;
    let type = get16(f, 12);
    if (type === 0x8100 && f.length >= 18) {
      type = get16(f, 16);
      l3 = 18;
    }
    if (type !== 0x0800) return;
    this.stats.ipv4++;
    const ct = this.ct;
    ct.setTime(tsSeconds - this.t0);
    let ref = ct.in(f, l3, f.length - l3, NF_INET_PRE_ROUTING);
    if (ref === CT_INVALID) {
      this.stats.invalid++;
      return;
    }
    if (ref === CT_DROP) {
      this.stats.dropped++;
      return;
    }
    const i = ctIndex(ref);
    if (isNew(ref) && !natInitialized(ct, i, NF_NAT_MANIP_DST)) {
      const rule = this.matchDnat(f, l3);
      if (rule) natSetupInfo(ct, i, rule.to, NF_NAT_MANIP_DST);
      else natNullBinding(ct, i, NF_NAT_MANIP_DST);
    }
    if (!natPacket(ct, ref, NF_NAT_MANIP_DST, f, l3)) return this.drop(ref);
    if (isNew(ref) && !natInitialized(ct, i, NF_NAT_MANIP_SRC)) {
      const src = get32(f, l3 + 12);
      const rule = this.snat.find((r) => cidrContains(r.from, src));
      if (rule) natSetupInfo(ct, i, rule.to, NF_NAT_MANIP_SRC);
      else natNullBinding(ct, i, NF_NAT_MANIP_SRC);
    }
    if (!natPacket(ct, ref, NF_NAT_MANIP_SRC, f, l3)) return this.drop(ref);
    ref = ct.confirm(ref);
    if (ref === CT_DROP) this.stats.dropped++;
  }

  /** Seconds since the first frame (the model's clock). */
  elapsed(tsSeconds: number): number {
    return this.t0 < 0 ? 0 : tsSeconds - this.t0;
  }

  private drop(ref: number): void {
    this.ct.destroy(ref);
    this.stats.dropped++;
  }

  private matchDnat(f: Uint8Array, l3: number): DnatRule | undefined {
    if (this.dnat.length === 0) return undefined;
    const proto = f[l3 + 9]!;
    const dst = get32(f, l3 + 16);
    const l4 = l3 + (f[l3]! & 15) * 4;
    const dport = proto === 6 || proto === 17 ? get16(f, l4 + 2) : 0;
    return this.dnat.find((r) => (r.proto === 0 || r.proto === proto) && r.dst === dst && (r.dport === 0 || r.dport === dport));
  }
}
