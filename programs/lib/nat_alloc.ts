// snat_v4_new_mapping() (bpf/lib/nat.h): pick the source port a connection leaves with. Keep the original port
// when it is in the range and free for this remote (the kernel's MASQUERADE does the same), else try random
// ports in the range, SNAT_COLLISION_RETRIES times. "Free" means no reverse (TUPLE_F_IN) entry exists yet for
// {remote, node_ip, port}: the reverse entry is created with BPF_NOEXIST, so the check and the claim are one step.
// ICMP echo: the identifier is the "port" (sport = id, dport = 0 in the OUT tuple; sport = 0, dport = the new id
// in the IN tuple) and is allocated over the whole 16-bit range (Cilium: "Don't clamp the ID field").
import { BPF_ANY, BPF_NOEXIST, bpf_htons, bpf_ntohs, get_prandom_u32, map_update_elem } from "tcbox";
import { ct_tuple_set } from "./conntrack";
import { ipv4_ct_tuple, TUPLE_F_IN, TUPLE_F_OUT } from "./conntrack_map";
import { ipv4_nat_entry, SNAT_COLLISION_RETRIES, SNAT_MAP, snat_config } from "./nat_map";

const rtuple = changetype<ipv4_ct_tuple>(memory.data(offsetof<ipv4_ct_tuple>()));
const otuple = changetype<ipv4_ct_tuple>(memory.data(offsetof<ipv4_ct_tuple>()));
const rval = changetype<ipv4_nat_entry>(memory.data(offsetof<ipv4_nat_entry>()));
const oval = changetype<ipv4_nat_entry>(memory.data(offsetof<ipv4_nat_entry>()));

/** __snat_clamp_port_range(). */
// @ts-ignore: decorator
@inline function clamp_port(min: u32, max: u32, v: u32): u32 {
  return (v % (max - min + 1)) + min;
}

/**
 * New mapping for saddr:sport -> daddr:dport with ports from [min, max] (host order): the chosen port (network
 * order) with both entries written, or -1 when every try collided (DROP_NAT_NO_MAPPING).
 */
export function snat_v4_new_mapping(cfg: snat_config, min: u32, max: u32, saddr: u32, daddr: u32, sport: u16, dport: u16, nexthdr: u8, now: u32): i32 {
  const orig = <u32>bpf_ntohs(sport);
  let port = orig >= min && orig <= max ? orig : clamp_port(min, max, get_prandom_u32());
  rval.created = now;
  rval.to_addr = saddr;
  rval.to_port = sport;
  rval.pad = 0;
  let ok = false;
  for (let i: u32 = 0; i <= SNAT_COLLISION_RETRIES; i++) {
    ct_tuple_set(rtuple, daddr, cfg.node_ip, dport, bpf_htons(port), nexthdr, TUPLE_F_IN);
    if (map_update_elem(SNAT_MAP, changetype<usize>(rtuple), changetype<usize>(rval), BPF_NOEXIST) == 0) {
      ok = true;
      break;
    }
    port = clamp_port(min, max, get_prandom_u32());
  }
  if (!ok) return -1;
  ct_tuple_set(otuple, saddr, daddr, sport, dport, nexthdr, TUPLE_F_OUT);
  oval.created = now;
  oval.to_addr = cfg.node_ip;
  oval.to_port = bpf_htons(port);
  oval.pad = 0;
  map_update_elem(SNAT_MAP, changetype<usize>(otuple), changetype<usize>(oval), BPF_ANY);
  return <i32>bpf_htons(port);
}
