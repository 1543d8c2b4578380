// Service load balancing (bpf/lib/lb.h): frontend lookup, backend selection (random, Maglev, session
// affinity), the DNAT of requests and the reverse NAT of replies. Maps and types are in lb_map.ts.
import { __sk_buff, BPF_ANY, get_prandom_u32, map_lookup, map_lookup_elem, map_lookup_key, map_update_elem } from "tcbox";
import { CT_MAP, ct_entry, ipv4_ct_tuple, TUPLE_F_OUT } from "./conntrack_map";
import { ct_tuple_set } from "./conntrack";
import {
  LB4_AFFINITY_MAP, LB4_BACKEND_MAP, LB4_CONFIG_MAP, LB4_REVERSE_NAT_MAP, LB4_SERVICES_MAP, LB_AFFINITY_MATCH_MAP,
  lb4_affinity_key, lb4_backend, lb4_config, lb4_key, lb4_reverse_nat, lb4_service, lb_affinity_val, lb_affinity_match,
  LB_LOOKUP_SCOPE_EXT, SVC_FLAG2_MAGLEV,
} from "./lb_map";
import { hash_from_tuple_v4, lb4_maglev_backend_id } from "./maglev";
import { IP_DADDR, IP_SADDR, nat_rewrite } from "./nat";

const key = changetype<lb4_key>(memory.data(offsetof<lb4_key>()));
const u32key = memory.data(4);
const aff_key = changetype<lb4_affinity_key>(memory.data(offsetof<lb4_affinity_key>()));
const aff_val = changetype<lb_affinity_val>(memory.data(offsetof<lb_affinity_val>()));
const match_key = changetype<lb_affinity_match>(memory.data(offsetof<lb_affinity_match>()));
const rev_tuple = changetype<ipv4_ct_tuple>(memory.data(offsetof<ipv4_ct_tuple>()));

// Keys are written as whole words (lb4_key: address (0), dport (4), backend_slot (6), proto (8), scope (9),
// pad (10)), as lib/conntrack.ts writes tuples: the map helpers read them as words, and a wide load of bytes
// written by narrower stores stalls on the store buffer.

/** lb4_lookup_service(): the frontend {address, dport, proto} (slot 0), or null. */
export function lb4_lookup_service(address: u32, dport: u16, proto: u8): lb4_service | null {
  const k = changetype<usize>(key);
  store<u64>(k, <u64>address | (<u64>dport << 32)); // backend_slot 0
  store<u32>(k, <u32>proto | (<u32>LB_LOOKUP_SCOPE_EXT << 8), 8); // pad 0
  return map_lookup_key<lb4_key, lb4_service>(LB4_SERVICES_MAP, k);
}

/** Backend id in slot `slot` of the service last looked up (the key still holds its frontend). */
function lb4_slot_backend_id(slot: u16): u32 {
  const k = changetype<usize>(key);
  const frontend = load<u64>(k) & 0xffffffffffff;
  store<u64>(k, frontend | (<u64>slot << 48));
  const s = map_lookup_key<lb4_key, lb4_service>(LB4_SERVICES_MAP, k);
  store<u64>(k, frontend);
  return s == null ? 0 : s.backend_id;
}

/** lb4_lookup_backend(). */
// @ts-ignore: decorator
@inline export function lb4_lookup_backend(backend_id: u32): lb4_backend | null {
  store<u32>(u32key, backend_id);
  return map_lookup_key<u32, lb4_backend>(LB4_BACKEND_MAP, u32key);
}

/**
 * lb4_select_backend_id(): Maglev when the service is flagged so and has a table (same flow, same backend on
 * any node), else random: slot get_prandom_u32() % count + 1, as Cilium's LB_SELECTION_RANDOM.
 */
export function lb4_select_backend_id(svc: lb4_service, saddr: u32, daddr: u32, sport: u16, dport: u16): u32 {
  if ((svc.flags2 & SVC_FLAG2_MAGLEV) != 0) {
    store<u32>(u32key, 0);
    const cfg = map_lookup<lb4_config>(LB4_CONFIG_MAP, u32key);
    const seed = cfg == null ? 0 : cfg.maglev_seed;
    const id = lb4_maglev_backend_id(svc.rev_nat_index, hash_from_tuple_v4(saddr, daddr, sport, dport, seed));
    if (id != 0) return id;
  }
  const slot = <u16>(get_prandom_u32() % <u32>svc.count) + 1;
  return lb4_slot_backend_id(slot);
}

/** lb4_affinity_key {client_ip (0), rev_nat_id (4), netns_cookie 0 (8), pad1 (9), pad2 (10)}, as whole words. */
// @ts-ignore: decorator
@inline function aff_key_set(client: u32, rev_nat_id: u32): void {
  store<u64>(changetype<usize>(aff_key), <u64>client | (<u64>rev_nat_id << 32));
  store<u32>(changetype<usize>(aff_key), 0, 8);
}

/**
 * lb4_affinity_backend_id_by_addr(): the backend this client used last for the service, if within the
 * timeout and still one of its backends (cilium_lb_affinity_match); else 0 (and the stale entry is ignored).
 */
export function lb4_affinity_backend_id(svc: lb4_service, client: u32, now: u32): u32 {
  aff_key_set(client, svc.rev_nat_index);
  const v = map_lookup<lb_affinity_val>(LB4_AFFINITY_MAP, changetype<usize>(aff_key));
  if (v == null || v.last_used + <u64>svc.affinity_timeout < <u64>now) return 0;
  store<u64>(changetype<usize>(match_key), <u64>v.backend_id | (<u64>svc.rev_nat_index << 32)); // backend_id, rev_nat_id
  if (map_lookup_elem(LB_AFFINITY_MATCH_MAP, changetype<usize>(match_key)) == 0) return 0;
  v.last_used = now;
  return v.backend_id;
}

/** lb4_update_affinity_by_addr(). */
export function lb4_update_affinity(svc: lb4_service, client: u32, backend_id: u32, now: u32): void {
  aff_key_set(client, svc.rev_nat_index);
  aff_val.last_used = now;
  aff_val.backend_id = backend_id;
  aff_val.pad = 0;
  map_update_elem(LB4_AFFINITY_MAP, changetype<usize>(aff_key), changetype<usize>(aff_val), BPF_ANY);
}

/** lb4_xlate(): DNAT the request to the backend (destination address and port, both checksums). */
// @ts-ignore: decorator
@inline export function lb4_xlate(skb: __sk_buff, daddr: u32, dport: u16, be: lb4_backend): void {
  nat_rewrite(skb, IP_DADDR, daddr, be.address, 2, dport, be.port);
}

/**
 * lb4_rev_nat(): a reply from a backend (saddr:sport) to a client whose connection went through a service:
 * the reversed tuple finds the connection's entry; its rev_nat_index gives the frontend to write back as the
 * source. Returns the entry (the caller accounts the packet) or null when this is no such reply.
 */
export function lb4_rev_nat_lookup(saddr: u32, daddr: u32, sport: u16, dport: u16, nexthdr: u8, now: u32): ct_entry | null {
  ct_tuple_set(rev_tuple, daddr, saddr, dport, sport, nexthdr, TUPLE_F_OUT);
  const e = map_lookup_key<ipv4_ct_tuple, ct_entry>(CT_MAP, changetype<usize>(rev_tuple));
  if (e == null || e.rev_nat_index == 0 || e.lifetime < now) return null;
  return e;
}

/** Rewrite the reply's source to the frontend of `rev_nat_index`; false when that entry is gone. */
export function lb4_rev_nat(skb: __sk_buff, rev_nat_index: u32, saddr: u32, sport: u16): bool {
  store<u32>(u32key, rev_nat_index);
  const nat = map_lookup_key<u32, lb4_reverse_nat>(LB4_REVERSE_NAT_MAP, u32key);
  if (nat == null) return false;
  nat_rewrite(skb, IP_SADDR, saddr, nat.address, 0, sport, nat.port);
  return true;
}
