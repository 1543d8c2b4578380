// Conntrack as Linux behaved before the UDP clash-resolution fixes (kernel 5.0 added nf_ct_resolve_clash for
// packets that agree on NAT, 5.6-era work and 6.x's nf_ct_resolve_clash_harder covered the rest): at
// __nf_conntrack_confirm, an unconfirmed entry whose tuple is already in the hash loses, the packet is dropped
// and insert_failed is counted. src/netfilter/conntrack.ts models 6.x; this wrapper switches only confirmation.
import { Conntrack, CT_DROP, ctDir, IP_CT_DIR_ORIGINAL, IPS_CONFIRMED, type ConntrackOptions } from "../../netfilter/conntrack.js";

export type KernelEra = "classic" | "6.x";

export class ClassicConntrack extends Conntrack {
  override confirm(ref: number): number {
    if (ref < 0) return ref;
    const i = ref >>> 3;
    if (this.status[i]! & IPS_CONFIRMED || ctDir(ref) !== IP_CT_DIR_ORIGINAL) return super.confirm(ref);
    const o = i * 2;
    const clash =
      this.findNode(this.tSrc[o]!, this.tDst[o]!, this.tPorts[o]!, this.tProto[o]!) >= 0 ||
      this.findNode(this.tSrc[o + 1]!, this.tDst[o + 1]!, this.tPorts[o + 1]!, this.tProto[o + 1]!) >= 0;
    if (!clash) return super.confirm(ref);
    this.stats.insert_failed++;
    this.stats.drop++;
    this.kill(i);
    return CT_DROP;
  }
}

export function conntrackFor(era: KernelEra, opts: ConntrackOptions = {}): Conntrack {
  return era === "classic" ? new ClassicConntrack(opts) : new Conntrack(opts);
}
