// SNAT (masquerading) maps (bpf/lib/nat.h, nat_46x64.h): the configuration Cilium compiles in, and
// cilium_snat_v4_external, which holds both directions of every translated connection.
import { BPF_MAP_TYPE_ARRAY, BPF_MAP_TYPE_LRU_HASH, ipv4, be16, map_def, PIN_GLOBAL_NS } from "tcbox";
import { ipv4_ct_tuple } from "./conntrack_map";

/** tcbox: node_config.h's IPV4_SNAT_EXCLUSION_DST_CIDR, IPV4_MASQUERADE and the port range, as a config entry. */
@unmanaged
export class snat_config {
  cluster_cidr: ipv4; // destinations inside it are not masqueraded (network order)
  cluster_mask: ipv4; // its netmask (network order)
  node_ip: ipv4; // IPV4_MASQUERADE: the address connections leave with
  min_port: u16; // NODEPORT_PORT_MIN_NAT (host order)
  max_port: u16; // NODEPORT_PORT_MAX_NAT (host order)
}

/** struct ipv4_nat_entry: TUPLE_F_OUT entries hold the new source, TUPLE_F_IN the original one to restore. */
@unmanaged
export class ipv4_nat_entry {
  created: u64; // bpf_mono_now() seconds
  to_addr: ipv4; // OUT: to_saddr; IN: to_daddr (network order)
  to_port: be16; // OUT: to_sport; IN: to_dport (network order)
  pad: u16;
}

/** SNAT_COLLISION_RETRIES (bpf/lib/nat.h). */
export const SNAT_COLLISION_RETRIES: u32 = 32;
/** Cilium's default SNAT map size (--bpf-nat-global-max 524288); tcbox: smaller. */
export const SNAT_MAP_SIZE: u32 = 131072;

export const SNAT_CONFIG_MAP = map_def<u32, snat_config>(BPF_MAP_TYPE_ARRAY, 1, "tcbox_snat_config", PIN_GLOBAL_NS);
export const SNAT_MAP = map_def<ipv4_ct_tuple, ipv4_nat_entry>(BPF_MAP_TYPE_LRU_HASH, SNAT_MAP_SIZE, "cilium_snat_v4_external", PIN_GLOBAL_NS);
