// cilium_ct4_global: the connection tracking map shared by lb4 and policy (pinned, like Cilium's global CT
// maps in /sys/fs/bpf/tc/globals). Types after bpf/lib/conntrack_map.h and common.h, with tcbox's simplifications
// noted per field. An LRU hash: when it is full the least recently used connection is forgotten, as in Cilium.
import { BPF_MAP_TYPE_LRU_HASH, ipv4, be16, map_def, PIN_GLOBAL_NS } from "tcbox";

/** Tuple flags (bpf/lib/common.h TUPLE_F_*). */
export const TUPLE_F_OUT: u8 = 0; // a connection as its first packet went
export const TUPLE_F_IN: u8 = 1; // the reverse direction (NAT reverse entries)
export const TUPLE_F_RELATED: u8 = 2;
export const TUPLE_F_SERVICE: u8 = 4; // client -> VIP:port, before DNAT: holds the chosen backend

/**
 * struct ipv4_ct_tuple. tcbox keeps addresses and ports in the order the first packet carried them (Cilium
 * swaps them for historical reasons; the lookup logic is the same: a reply is found by reversing its tuple).
 */
@unmanaged
export class ipv4_ct_tuple {
  daddr: ipv4; // destination address, network order
  saddr: ipv4; // source address, network order
  dport: be16; // destination port (ICMP: 0)
  sport: be16; // source port (ICMP echo: identifier)
  nexthdr: u8; // IPPROTO_TCP / IPPROTO_UDP / IPPROTO_ICMP
  flags: u8; // TUPLE_F_*
  pad: u16; // zero: part of the hashed key
}

/** ct_entry flags (tcbox packs Cilium's bitfields into one u16). */
export const CT_F_RX_CLOSING: u16 = 1 << 0; // FIN/RST seen from the responder
export const CT_F_TX_CLOSING: u16 = 1 << 1; // FIN/RST seen from the initiator
export const CT_F_SEEN_NON_SYN: u16 = 1 << 2;
export const CT_F_POLICY_ALLOWED: u16 = 1 << 3; // policy.ts allowed this connection (replies pass)
export const CT_F_LB: u16 = 1 << 4; // created by the load balancer (lb4), not by a policy verdict
export const CT_F_LOOPBACK: u16 = 1 << 5; // hairpin: a pod reached itself through a Service (ct_state.loopback)

/** struct ct_entry (the fields tcbox models). */
@unmanaged
export class ct_entry {
  packets: u64; // packets seen in both directions
  bytes: u64; // bytes seen in both directions
  lifetime: u32; // expiry, in seconds of bpf_mono_now(); an entry past it is treated as absent (GC)
  backend_id: u32; // TUPLE_F_SERVICE entries: the backend chosen for this connection
  rev_nat_index: u32; // index into cilium_lb4_reverse_nat for replies (0: no reverse NAT). Cilium: u16
  src_sec_id: u32; // security identity of the source, when policy created the entry
  flags: u16; // CT_F_*
  tx_flags_seen: u8; // TCP flags seen from the initiator
  rx_flags_seen: u8; // TCP flags seen from the responder
  last_report: u32; // monitor aggregation: last time a trace event was sent (seconds)
}

/** Cilium's CT_MAP_SIZE_TCP default is 524288; tcbox's default fits a 100k-Service bench. */
export const CT_MAP_SIZE: u32 = 262144;
export const CT_MAP = map_def<ipv4_ct_tuple, ct_entry>(BPF_MAP_TYPE_LRU_HASH, CT_MAP_SIZE, "cilium_ct4_global", PIN_GLOBAL_NS);

// Lifetimes in seconds (bpf/lib/conntrack.h: CT_CONNECTION_LIFETIME_TCP 21600, _NONTCP 60, CT_SYN_TIMEOUT 60,
// CT_CLOSE_TIMEOUT 10; CT_SERVICE_LIFETIME_* the same).
export const CT_CONNECTION_LIFETIME_TCP: u32 = 21600;
export const CT_CONNECTION_LIFETIME_NONTCP: u32 = 60;
export const CT_SYN_TIMEOUT: u32 = 60;
export const CT_CLOSE_TIMEOUT: u32 = 10;
