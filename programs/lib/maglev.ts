// Maglev backend selection, program side (bpf/lib/lb.h lb4_select_backend_id_maglev): the agent computes one
// lookup table of LB_MAGLEV_LUT_SIZE backend ids per service (src/ebpf/maglev.ts); the program indexes it by a
// hash of the connection's 5-tuple, so every packet of a flow, on any node, picks the same backend.
//
// Cilium keeps the tables in a hash-of-maps (cilium_lb4_maglev: rev_nat_index -> inner array holding u32[M]).
// tcbox has no map-in-map; the same data is a hash map whose value is the whole u32[M] table.
import { BPF_MAP_TYPE_HASH, jhash_3words, map_lookup_elem, PIN_GLOBAL_NS } from "tcbox";

/** LB_MAGLEV_LUT_SIZE: Cilium's default M (--bpf-lb-maglev-table-size 16381, from its list of primes). */
export const LB_MAGLEV_LUT_SIZE: u32 = 16381;
/** Services that may use Maglev at once (each table is 64 KiB; Cilium sizes it like the service map). */
export const LB_MAGLEV_MAP_MAX_ENTRIES: u32 = 256;

// @ts-ignore: decorator
@external("tcbox", "map_create")
declare function __map_create(type: u32, key_size: u32, value_size: u32, max_entries: u32, map_flags: u32, name: string, pinning: u32, key_type: string, value_type: string): usize;

/** rev_nat_index (u32) -> u32[LB_MAGLEV_LUT_SIZE] backend ids. */
export const LB4_MAGLEV_MAP = __map_create(BPF_MAP_TYPE_HASH, 4, LB_MAGLEV_LUT_SIZE * 4, LB_MAGLEV_MAP_MAX_ENTRIES, 0, "cilium_lb4_maglev", PIN_GLOBAL_NS, "u32", "");

const mkey = memory.data(4);

/**
 * hash_from_tuple_v4(): jhash_3words(saddr, daddr, dport << 16 | sport, HASH_INIT4_SEED) over the raw
 * (network-order) fields, as Cilium computes it.
 */
// @ts-ignore: decorator
@inline export function hash_from_tuple_v4(saddr: u32, daddr: u32, sport: u16, dport: u16, seed: u32): u32 {
  return jhash_3words(saddr, daddr, (<u32>dport << 16) | <u32>sport, seed);
}

/** The backend id for a flow hash, or 0 when the service has no table. */
export function lb4_maglev_backend_id(rev_nat_index: u32, hash: u32): u32 {
  store<u32>(mkey, rev_nat_index);
  const lut = map_lookup_elem(LB4_MAGLEV_MAP, mkey);
  if (lut == 0) return 0;
  return load<u32>(lut + ((<usize>(hash % LB_MAGLEV_LUT_SIZE)) << 2));
}
