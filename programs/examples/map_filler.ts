// map_filler: inserts the packet's IPv4 source address into maps from the program side and reports the
// helper's return code in skb->mark (as a signed number), so tests see map semantics through programs:
// BPF_NOEXIST on a full hash map returns -E2BIG, an LRU map evicts its least recently used element.
import {
  __sk_buff, BPF_ANY, BPF_EXIST, BPF_MAP_TYPE_HASH, BPF_MAP_TYPE_LRU_HASH, BPF_NOEXIST, ETH_HLEN, load_be32, map_def,
  map_delete_elem, map_lookup, map_update_elem, TC_ACT_OK, ipv4,
} from "tcbox";

@unmanaged
class SeenKey {
  saddr: ipv4;
}
@unmanaged
class SeenVal {
  packets: u64;
}

const FILL = map_def<SeenKey, SeenVal>(BPF_MAP_TYPE_HASH, 4, "fill_hash");
const FILL_LRU = map_def<SeenKey, SeenVal>(BPF_MAP_TYPE_LRU_HASH, 4, "fill_lru");
const key = changetype<SeenKey>(memory.data(offsetof<SeenKey>()));
const val = changetype<SeenVal>(memory.data(offsetof<SeenVal>()));

// @ts-ignore: decorator
@inline function flags_of(skb: __sk_buff): u64 {
  return skb.cb0 == 1 ? BPF_NOEXIST : skb.cb0 == 2 ? BPF_EXIST : BPF_ANY;
}

/** Update fill_hash with {saddr} -> {packets: cb1}; flags from cb0 (0 any, 1 noexist, 2 exist). */
export function fill_hash(skb: __sk_buff): i32 {
  key.saddr = load_be32(skb, ETH_HLEN + 12);
  val.packets = skb.cb1;
  skb.mark = <u32>map_update_elem(FILL, changetype<usize>(key), changetype<usize>(val), flags_of(skb));
  return TC_ACT_OK;
}

/** Count the source in fill_lru: lookup (marks it used) and increment, or insert (may evict). */
export function fill_lru(skb: __sk_buff): i32 {
  key.saddr = load_be32(skb, ETH_HLEN + 12);
  const v = map_lookup<SeenVal>(FILL_LRU, changetype<usize>(key));
  if (v != null) {
    v.packets += 1;
    skb.mark = 1;
    return TC_ACT_OK;
  }
  val.packets = 1;
  skb.mark = <u32>map_update_elem(FILL_LRU, changetype<usize>(key), changetype<usize>(val), BPF_NOEXIST);
  return TC_ACT_OK;
}

/** Delete the source from fill_hash; mark = 0 or -ENOENT. */
export function forget(skb: __sk_buff): i32 {
  key.saddr = load_be32(skb, ETH_HLEN + 12);
  skb.mark = <u32>map_delete_elem(FILL, changetype<usize>(key));
  return TC_ACT_OK;
}

/** Delete the source from fill_lru; mark = 0 or -ENOENT. */
export function forget_lru(skb: __sk_buff): i32 {
  key.saddr = load_be32(skb, ETH_HLEN + 12);
  skb.mark = <u32>map_delete_elem(FILL_LRU, changetype<usize>(key));
  return TC_ACT_OK;
}
