// rewrite_dst: the core of a Service load balancer (Cilium's lb4_local + lb4_xlate): look the destination
// {address, port, protocol} up in a hash map and, on a hit, rewrite destination address and port with both
// checksums fixed through the helpers, exactly as bpf/lib/lb.h does with l3_csum_replace/l4_csum_replace.
import {
  __sk_buff, BPF_F_MARK_MANGLED_0, BPF_F_PSEUDO_HDR, BPF_MAP_TYPE_HASH, ctx_data, ctx_data_end, ETH_HLEN, ETH_P_IP,
  bpf_htons, ipv4, be16, iphdr, IPPROTO_TCP, IPPROTO_UDP, l3_csum_replace, l4_csum_replace, map_def, map_lookup,
  TC_ACT_OK, TC_ACT_SHOT, PIN_GLOBAL_NS, load_be16,
} from "tcbox";

/** Service frontend: destination address, port and protocol, as the packet carries them. */
@unmanaged
class SvcKey {
  daddr: ipv4; // network order
  dport: be16;
  proto: u8;
  pad: u8;
}

/** Where the frontend goes. */
@unmanaged
class Backend {
  addr: ipv4;
  port: be16;
  pad: u16;
}

const SERVICES = map_def<SvcKey, Backend>(BPF_MAP_TYPE_HASH, 262144, "rewrite_services", PIN_GLOBAL_NS);
const key = changetype<SvcKey>(memory.data(offsetof<SvcKey>()));

const IP_CHECK_OFF: u32 = ETH_HLEN + <u32>offsetof<iphdr>("check");
const IP_DADDR_OFF: u32 = ETH_HLEN + <u32>offsetof<iphdr>("daddr");

export function cls_main(skb: __sk_buff): i32 {
  const data = ctx_data(skb);
  const end = ctx_data_end(skb);
  if (data + ETH_HLEN + 20 + 8 > end) return TC_ACT_OK;
  if (load<u16>(data, 12) != bpf_htons(ETH_P_IP)) return TC_ACT_OK;
  const ip4 = changetype<iphdr>(data + ETH_HLEN);
  if (ip4.ihl_version != 0x45) return TC_ACT_OK; // no options in this example
  const proto = ip4.protocol;
  if (proto != IPPROTO_TCP && proto != IPPROTO_UDP) return TC_ACT_OK;
  const l4off: u32 = ETH_HLEN + 20;
  key.daddr = ip4.daddr;
  key.dport = <u16>load_be16(skb, l4off + 2);
  key.proto = proto;
  key.pad = 0;
  const be = map_lookup<Backend>(SERVICES, changetype<usize>(key));
  if (be == null) return TC_ACT_OK;
  const csumOff = l4off + (proto == IPPROTO_TCP ? 16 : 6);
  const mm0: u64 = proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;
  const oldAddr = ip4.daddr;
  const newAddr = be.addr;
  if (l4_csum_replace(skb, csumOff, oldAddr, newAddr, BPF_F_PSEUDO_HDR | mm0 | 4) < 0) return TC_ACT_SHOT;
  if (l3_csum_replace(skb, IP_CHECK_OFF, oldAddr, newAddr, 4) < 0) return TC_ACT_SHOT;
  store<u32>(data + IP_DADDR_OFF, newAddr);
  const oldPort = <u32>key.dport;
  const newPort = <u32>be.port;
  if (newPort != 0 && newPort != oldPort) {
    if (l4_csum_replace(skb, csumOff, oldPort, newPort, mm0 | 2) < 0) return TC_ACT_SHOT;
    store<u16>(data + l4off + 2, <u16>newPort);
  }
  return TC_ACT_OK;
}
