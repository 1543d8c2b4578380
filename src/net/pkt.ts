// The model's sk_buff: one reusable buffer with headroom (so VXLAN can push 50 bytes in front without copying)
// and the metadata the kernel keeps next to the bytes. Packets come from a pool; nothing is allocated per packet
// once the pool is warm.

/** Bytes in front of a new frame: room for two encapsulations (VXLAN is 50). */
export const PKT_HEADROOM = 128;
export const PKT_BUF_SIZE = 2048;

export class Pkt {
  /** Trace id, unique per world; derived packets (ICMP errors, ARP, flood copies) get their own. */
  id = 0;
  /** The packet this one was derived from (an ICMP error's offending packet, a flood copy's original), or 0. */
  parent = 0;
  readonly buf: Uint8Array = new Uint8Array(PKT_BUF_SIZE);
  /** Offset of the Ethernet header (skb->mac_header). */
  off = PKT_HEADROOM;
  /** Bytes from `off` (frame length including the Ethernet header). */
  len = 0;
  /** skb->mark (fwmark), set by iptables MARK / eBPF programs. */
  mark = 0;
  /** skb->pkt_type: PACKET_HOST / BROADCAST / MULTICAST / OTHERHOST, set on receive. */
  pktType = 0;
  /** ifindex the packet arrived on in the current namespace (skb->skb_iif), 0 when locally generated. */
  iif = 0;
  /** Set by br_netfilter once PREROUTING ran for a bridged frame, so ip_rcv skips it (ip_sabotage_in). */
  prerouted = false;
  /** Conntrack slot (skb->_nfct) owned by the conntrack module; -1 = untracked. */
  ct = -1;
  /** Conntrack info (IP_CT_NEW, ESTABLISHED, ... + IP_CT_IS_REPLY) owned by the conntrack module. */
  ctinfo = 0;
  /** Target of TC_ACT_REDIRECT (bpf_redirect): ifindex in the device's namespace and BPF_F_* flags. */
  redirectIfindex = 0;
  redirectFlags = 0;
  /** Devices crossed; the world drops a packet past its hop limit (guards bridge loops, which have no TTL). */
  hops = 0;
  /** Largest encapsulation overhead this packet carried (VXLAN: 50). */
  encapBytes = 0;
  /** Bridge port a bridged-DNAT frame came in on while it waits for ARP (br_netfilter), else null. */
  brIn: import("./device.js").NetDevice | null = null;
  /** Free-form per-packet tag for callers (flow index, connection id); copied to derived packets. */
  tag = 0;

  get l3(): number {
    return this.off + 14;
  }

  reset(): void {
    this.id = 0;
    this.parent = 0;
    this.off = PKT_HEADROOM;
    this.len = 0;
    this.mark = 0;
    this.pktType = 0;
    this.iif = 0;
    this.prerouted = false;
    this.ct = -1;
    this.ctinfo = 0;
    this.redirectIfindex = 0;
    this.redirectFlags = 0;
    this.hops = 0;
    this.encapBytes = 0;
    this.tag = 0;
    this.brIn = null;
  }

  /** Copy bytes and metadata into `dst` (skb_copy), keeping `dst`'s own id. */
  copyTo(dst: Pkt): Pkt {
    dst.off = this.off;
    dst.len = this.len;
    dst.buf.set(this.buf.subarray(this.off, this.off + this.len), this.off);
    dst.mark = this.mark;
    dst.pktType = this.pktType;
    dst.iif = this.iif;
    dst.prerouted = this.prerouted;
    dst.ct = this.ct;
    dst.ctinfo = this.ctinfo;
    dst.hops = this.hops;
    dst.encapBytes = this.encapBytes;
    dst.tag = this.tag;
    return dst;
  }

  /** The frame's bytes (a view, not a copy). */
  frame(): Uint8Array {
    return this.buf.subarray(this.off, this.off + this.len);
  }
}

export class PktPool {
  private free: Pkt[] = [];
  allocated = 0;

  get(): Pkt {
    const p = this.free.pop();
    if (p !== undefined) return p;
    this.allocated++;
    return new Pkt();
  }

  put(p: Pkt): void {
    p.reset();
    this.free.push(p);
  }
}
