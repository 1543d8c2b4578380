// Load-balancer maps and types (bpf/lib/lb.h, maps in bpf/lib/maps.h), filled by the agent
// (src/k8s/agent/lb.ts) as cilium-agent fills them. Layouts are explicit @unmanaged structs; the host reads
// their field names from the program (tcbox's BTF) to print and parse entries.
import { BPF_MAP_TYPE_ARRAY, BPF_MAP_TYPE_HASH, BPF_MAP_TYPE_LRU_HASH, ipv4, be16, map_def, PIN_GLOBAL_NS } from "tcbox";

/** Service flags (lb4_service.flags, bpf/lib/common.h SVC_FLAG_*). */
export const SVC_FLAG_EXTERNAL_IP: u8 = 1 << 0;
export const SVC_FLAG_NODEPORT: u8 = 1 << 1;
export const SVC_FLAG_EXT_LOCAL_SCOPE: u8 = 1 << 2;
export const SVC_FLAG_HOSTPORT: u8 = 1 << 3;
export const SVC_FLAG_AFFINITY: u8 = 1 << 4; // sessionAffinity: ClientIP
export const SVC_FLAG_LOADBALANCER: u8 = 1 << 5;
export const SVC_FLAG_ROUTABLE: u8 = 1 << 6; // not a ClusterIP reachable only from inside
/** flags2: tcbox's per-service algorithm bit (Cilium: the lb-algorithm annotation / --bpf-lb-algorithm). */
export const SVC_FLAG2_MAGLEV: u8 = 1 << 7;

/** LB_LOOKUP_SCOPE_EXT / _INT (lb4_key.scope): two entries when internal and external traffic policies differ. */
export const LB_LOOKUP_SCOPE_EXT: u8 = 0;
export const LB_LOOKUP_SCOPE_INT: u8 = 1;

/** struct lb4_key: a frontend, and with backend_slot > 0 one of its backends. */
@unmanaged
export class lb4_key {
  address: ipv4; // frontend address (ClusterIP, NodeIP, LB or external IP), network order
  dport: be16; // frontend port, network order
  backend_slot: u16; // 0: the service itself; 1..count: its backends in order
  proto: u8; // IPPROTO_TCP / IPPROTO_UDP (Cilium >= 1.16 keys by protocol too)
  scope: u8; // LB_LOOKUP_SCOPE_*
  pad: u16; // zero: part of the hashed key
}

/**
 * struct lb4_service. Slot 0 holds the service (count, rev_nat_index, flags, affinity timeout); slots 1..count
 * hold backend_id. Cilium overlays backend_id and affinity_timeout in a union and has a u16 rev_nat_index;
 * tcbox keeps them apart and widens rev_nat_index to u32 so benches may hold more than 65535 frontends.
 */
@unmanaged
export class lb4_service {
  backend_id: u32; // slots >= 1: the backend's id in cilium_lb4_backends_v3
  affinity_timeout: u32; // slot 0, SVC_FLAG_AFFINITY: seconds a client sticks to its backend
  rev_nat_index: u32; // slot 0: the service's id; replies are reverse-NATed by cilium_lb4_reverse_nat[id]
  count: u16; // slot 0: number of backends (0: drop with DROP_NO_SERVICE)
  flags: u8; // SVC_FLAG_*
  flags2: u8; // SVC_FLAG2_*
}

/** Backend flags (BE_STATE_*). */
export const BE_STATE_ACTIVE: u8 = 0;
export const BE_STATE_TERMINATING: u8 = 1;
export const BE_STATE_QUARANTINED: u8 = 2;
export const BE_STATE_MAINTENANCE: u8 = 3;

/** struct lb4_backend. */
@unmanaged
export class lb4_backend {
  address: ipv4; // backend (pod) address, network order
  port: be16; // backend (target) port, network order
  proto: u8; // IPPROTO_*
  flags: u8; // BE_STATE_*
  cluster_id: u16; // ClusterMesh cluster (0 = local)
  zone: u8; // topology zone id (0 = unknown)
  pad: u8;
}

/** struct lb4_reverse_nat: what a reply's source is rewritten back to. */
@unmanaged
export class lb4_reverse_nat {
  address: ipv4; // frontend address, network order
  port: be16; // frontend port, network order
  pad: u16;
}

/** struct lb4_affinity_key (client_id is the client IP; Cilium also allows a netns cookie). */
@unmanaged
export class lb4_affinity_key {
  client_ip: ipv4; // client address, network order
  rev_nat_id: u32; // the service (Cilium: u16)
  netns_cookie: u8; // 0: client_ip is an address
  pad1: u8;
  pad2: u16;
}

/** struct lb_affinity_val. */
@unmanaged
export class lb_affinity_val {
  last_used: u64; // bpf_mono_now() seconds when the client last used it
  backend_id: u32;
  pad: u32;
}

/** struct lb_affinity_match: a backend still belongs to the service (the agent deletes it with the backend). */
@unmanaged
export class lb_affinity_match {
  backend_id: u32;
  rev_nat_id: u32;
}

/** tcbox: what Cilium compiles into node_config.h, as a one-entry array the agent writes. */
@unmanaged
export class lb4_config {
  maglev_seed: u32; // HASH_INIT4_SEED: jhash seed of the 5-tuple hash indexing the Maglev table
  lut_size: u32; // LB_MAGLEV_LUT_SIZE the agent computed tables for (must equal the program's)
}

// Sizes: Cilium's --bpf-lb-map-max defaults to 65536; tcbox's defaults fit the 100k-Service bench.
export const LB_SERVICE_MAP_MAX_ENTRIES: u32 = 524288;
export const LB_BACKEND_MAP_MAX_ENTRIES: u32 = 262144;
export const LB_REV_NAT_MAP_MAX_ENTRIES: u32 = 262144;
export const LB_AFFINITY_MAP_MAX_ENTRIES: u32 = 65536;

export const LB4_SERVICES_MAP = map_def<lb4_key, lb4_service>(BPF_MAP_TYPE_HASH, LB_SERVICE_MAP_MAX_ENTRIES, "cilium_lb4_services_v2", PIN_GLOBAL_NS);
export const LB4_BACKEND_MAP = map_def<u32, lb4_backend>(BPF_MAP_TYPE_HASH, LB_BACKEND_MAP_MAX_ENTRIES, "cilium_lb4_backends_v3", PIN_GLOBAL_NS);
export const LB4_REVERSE_NAT_MAP = map_def<u32, lb4_reverse_nat>(BPF_MAP_TYPE_HASH, LB_REV_NAT_MAP_MAX_ENTRIES, "cilium_lb4_reverse_nat", PIN_GLOBAL_NS);
export const LB4_AFFINITY_MAP = map_def<lb4_affinity_key, lb_affinity_val>(BPF_MAP_TYPE_LRU_HASH, LB_AFFINITY_MAP_MAX_ENTRIES, "cilium_lb4_affinity", PIN_GLOBAL_NS);
export const LB_AFFINITY_MATCH_MAP = map_def<lb_affinity_match, u8>(BPF_MAP_TYPE_HASH, LB_AFFINITY_MAP_MAX_ENTRIES, "cilium_lb_affinity_match", PIN_GLOBAL_NS);
export const LB4_CONFIG_MAP = map_def<u32, lb4_config>(BPF_MAP_TYPE_ARRAY, 1, "tcbox_lb4_config", PIN_GLOBAL_NS);
