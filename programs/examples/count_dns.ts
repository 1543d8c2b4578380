// count_dns: the worked example of assembly/README.md (test/ebpf/readme-example.test.ts keeps the two in step).
import {
  __sk_buff, BPF_MAP_TYPE_LRU_HASH, BPF_NOEXIST, ETH_HLEN, ETH_P_IP, IPPROTO_UDP, bpf_htons, bpf_ntohs, header_ptr,
  iphdr, udphdr, ipv4, map_def, map_lookup, map_update_elem, set_drop_reason, TC_ACT_OK, TC_ACT_SHOT,
} from "tcbox";

@unmanaged class Client { saddr: ipv4; }
@unmanaged class Count { queries: u64; }

const DNS_CLIENTS = map_def<Client, Count>(BPF_MAP_TYPE_LRU_HASH, 4096, "dns_clients");
const key = changetype<Client>(memory.data(offsetof<Client>()));
const one = changetype<Count>(memory.data(offsetof<Count>()));

export function cls_main(skb: __sk_buff): i32 {
  if (bpf_ntohs(skb.protocol) != ETH_P_IP) return TC_ACT_OK;
  const ipp = header_ptr(skb, ETH_HLEN, 20);
  if (ipp == 0) return TC_ACT_OK;
  const ip4 = changetype<iphdr>(ipp);
  if (ip4.protocol != IPPROTO_UDP || ip4.ihl_version != 0x45) return TC_ACT_OK;
  const up = header_ptr(skb, ETH_HLEN + 20, 8);
  if (up == 0 || changetype<udphdr>(up).dest != bpf_htons(53)) return TC_ACT_OK;
  key.saddr = ip4.saddr;
  const c = map_lookup<Count>(DNS_CLIENTS, changetype<usize>(key));
  if (c == null) {
    one.queries = 1;
    map_update_elem(DNS_CLIENTS, changetype<usize>(key), changetype<usize>(one), BPF_NOEXIST);
    return TC_ACT_OK;
  }
  c.queries += 1; // in place, in the map
  if (c.queries > 100) {
    set_drop_reason(skb, 1);
    return TC_ACT_SHOT;
  }
  return TC_ACT_OK;
}
