// The program context: `struct __sk_buff` as a tc program sees it (include/uapi/linux/bpf.h), same field
// order and offsets up to hwtstamp, then tcbox's private fields (the verdict side channel of bpf_redirect).
// A program's entry point takes it and returns a TC_ACT_* verdict:
//   export function cls_main(skb: __sk_buff): i32 { return TC_ACT_OK; }

@unmanaged
export class __sk_buff {
  len: u32; // 0: packet length (data_end - data)
  pkt_type: u32; // 4: PACKET_HOST, PACKET_BROADCAST, ...
  mark: u32; // 8: skb->mark (writable)
  queue_mapping: u32; // 12
  protocol: u32; // 16: skb->protocol in network order, e.g. bpf_htons(ETH_P_IP)
  vlan_present: u32; // 20
  vlan_tci: u32; // 24
  vlan_proto: u32; // 28
  priority: u32; // 32 (writable)
  ingress_ifindex: u32; // 36: the device the packet arrived on
  ifindex: u32; // 40: the device the hook is attached to
  tc_index: u32; // 44 (writable)
  cb0: u32; // 48: cb[5], scratch space shared along a tail-call chain (writable)
  cb1: u32; // 52
  cb2: u32; // 56
  cb3: u32; // 60
  cb4: u32; // 64
  hash: u32; // 68: skb->hash; see get_hash_recalc()
  tc_classid: u32; // 72 (writable)
  data: u32; // 76: address of the first packet byte in linear memory
  data_end: u32; // 80: address one past the last packet byte
  napi_id: u32; // 84
  family: u32; // 88
  remote_ip4: u32; // 92
  local_ip4: u32; // 96
  remote_ip6_0: u32; // 100
  remote_ip6_1: u32;
  remote_ip6_2: u32;
  remote_ip6_3: u32;
  local_ip6_0: u32; // 116
  local_ip6_1: u32;
  local_ip6_2: u32;
  local_ip6_3: u32;
  remote_port: u32; // 132
  local_port: u32; // 136
  data_meta: u32; // 140
  flow_keys: u64; // 144
  tstamp: u64; // 152 (writable)
  wire_len: u32; // 160
  gso_segs: u32; // 164
  sk: u64; // 168
  gso_size: u32; // 176
  tstamp_type: u32; // 180
  hwtstamp: u64; // 184
  // ---- tcbox private (192..255): read by the host after the call ----
  tcbox_retval: i32; // 192: the verdict, stored by the batch runner
  tcbox_redirect_ifindex: u32; // 196: set by redirect()/redirect_peer()
  tcbox_redirect_flags: u32; // 200: BPF_F_INGRESS, or BPF_F_PEER (tcbox's marker for redirect_peer)
  tcbox_capacity: u32; // 204: bytes available from data to the end of the packet slot
  tcbox_drop_reason: u32; // 208: optional reason a program gives for TC_ACT_SHOT (set_drop_reason)
  tcbox_tail_calls: u32; // 212: tail calls taken for this packet (MAX_TAIL_CALL_CNT)
}

// include/uapi/linux/pkt_cls.h
export const TC_ACT_UNSPEC: i32 = -1;
export const TC_ACT_OK: i32 = 0;
export const TC_ACT_RECLASSIFY: i32 = 1;
export const TC_ACT_SHOT: i32 = 2;
export const TC_ACT_PIPE: i32 = 3;
export const TC_ACT_STOLEN: i32 = 4;
export const TC_ACT_QUEUED: i32 = 5;
export const TC_ACT_REPEAT: i32 = 6;
export const TC_ACT_REDIRECT: i32 = 7;
export const TC_ACT_TRAP: i32 = 8;

// include/uapi/linux/if_packet.h
export const PACKET_HOST: u32 = 0;
export const PACKET_BROADCAST: u32 = 1;
export const PACKET_MULTICAST: u32 = 2;
export const PACKET_OTHERHOST: u32 = 3;

/** Start and end of the packet, like `(void *)(long)ctx->data` in C. */
// @ts-ignore: decorator
@inline export function ctx_data(skb: __sk_buff): usize {
  return <usize>skb.data;
}
// @ts-ignore: decorator
@inline export function ctx_data_end(skb: __sk_buff): usize {
  return <usize>skb.data_end;
}

/** A reason shown in tcbox's drop counters when the program returns TC_ACT_SHOT (Cilium: send_drop_notify). */
// @ts-ignore: decorator
@inline export function set_drop_reason(skb: __sk_buff, reason: u32): void {
  skb.tcbox_drop_reason = reason;
}
