// Conntrack numbers shared by the model and its users: ctinfo, packet refs, hooks, xt_conntrack state bits,
// default timeouts (kernel include/uapi/linux/netfilter/nf_conntrack_common.h, netfilter_ipv4.h, xt_conntrack.h).
import { IP_CT_DIR_ORIGINAL, IP_CT_DIR_REPLY } from "./conntrack-table.js";

// enum ip_conntrack_info
export const IP_CT_ESTABLISHED = 0;
export const IP_CT_RELATED = 1;
export const IP_CT_NEW = 2;
export const IP_CT_IS_REPLY = 3;
export const IP_CT_ESTABLISHED_REPLY = 3;
export const IP_CT_RELATED_REPLY = 4;

export const CT_INVALID = -1;
export const CT_DROP = -2;
export const CT_UNTRACKED = -3;

// enum nf_inet_hooks
export const NF_INET_PRE_ROUTING = 0;
export const NF_INET_LOCAL_IN = 1;
export const NF_INET_FORWARD = 2;
export const NF_INET_LOCAL_OUT = 3;
export const NF_INET_POST_ROUTING = 4;

// xt_conntrack / xt_state state bits
export const XT_CONNTRACK_STATE_INVALID = 1 << 0;
export const XT_CONNTRACK_STATE_ESTABLISHED = 1 << 1;
export const XT_CONNTRACK_STATE_RELATED = 1 << 2;
export const XT_CONNTRACK_STATE_NEW = 1 << 3;
export const XT_CONNTRACK_STATE_SNAT = 1 << 6;
export const XT_CONNTRACK_STATE_DNAT = 1 << 7;
export const XT_CONNTRACK_STATE_UNTRACKED = 1 << 8;

/** Default timeouts in seconds (sysctl net.netfilter.nf_conntrack_*_timeout on Linux 6.18). */
export const UDP_TIMEOUT = 30;
export const UDP_TIMEOUT_STREAM = 120;
export const ICMP_TIMEOUT = 30;
export const GENERIC_TIMEOUT = 600;
/** kernel: a replied UDP flow becomes a stream only when still active 2 s after it started. */
export const UDP_STREAM_DELAY = 2;
/** kernel NF_CT_EVICTION_RANGE: buckets early_drop scans. */
export const NF_CT_EVICTION_RANGE = 8;

export function ctIndex(ref: number): number {
  return ref >>> 3;
}
export function ctInfo(ref: number): number {
  return ref & 7;
}
export function ctDir(ref: number): number {
  return (ref & 7) >= IP_CT_IS_REPLY ? IP_CT_DIR_REPLY : IP_CT_DIR_ORIGINAL;
}
export function isNew(ref: number): boolean {
  return ref >= 0 && (ref & 7) === IP_CT_NEW;
}

/** A small xorshift32 generator so runs are reproducible. */
export function seededRandom16(seed: number): () => number {
  let x = seed >>> 0 || 0x2545f491;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x & 0xffff;
  };
}
