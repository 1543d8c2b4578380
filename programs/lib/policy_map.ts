// Identity and policy maps (bpf/lib/maps.h, policy.h, eps.h), filled by the agent (src/k8s/agent/policy-maps.ts).
//   cilium_ipcache    LPM trie: IP prefix -> security identity of whatever holds that address
//   cilium_lxc        local endpoints: IP -> endpoint id, identity and whether policy is enforced per direction
//   cilium_policy_v2  {endpoint, identity, dport, proto, direction} -> allow or deny
// Cilium has one policy map per endpoint (cilium_policy_<EP_ID>); tcbox puts the endpoint id in the key of one
// shared map, which is the same table.
import { BPF_MAP_TYPE_HASH, BPF_MAP_TYPE_LPM_TRIE, ipv4, be16, map_def, PIN_GLOBAL_NS } from "tcbox";

/** Reserved identities (pkg/identity/numericidentity.go). */
export const IDENTITY_UNKNOWN: u32 = 0;
export const IDENTITY_HOST: u32 = 1;
export const IDENTITY_WORLD: u32 = 2;
export const IDENTITY_UNMANAGED: u32 = 3;
export const IDENTITY_HEALTH: u32 = 4;
export const IDENTITY_INIT: u32 = 5;
export const IDENTITY_REMOTE_NODE: u32 = 6;
export const IDENTITY_KUBE_APISERVER: u32 = 7;

/** struct ipcache_key: an LPM key, prefixlen counting the address bits. */
@unmanaged
export class ipcache_key {
  prefixlen: u32; // bits of `addr` that matter (0..32)
  addr: ipv4; // network order
}

/** struct remote_endpoint_info. */
@unmanaged
export class remote_endpoint_info {
  sec_identity: u32; // the security identity of the prefix
  tunnel_endpoint: ipv4; // node hosting it (0: local or outside the cluster)
  flags: u8; // reserved
  key: u8; // encryption key index (unused)
  pad: u16;
}

/** endpoint_info.flags (tcbox: Cilium keeps these in the endpoint's compiled config). */
export const ENDPOINT_F_POLICY_INGRESS: u16 = 1 << 0; // a policy selects it for ingress: default deny
export const ENDPOINT_F_POLICY_EGRESS: u16 = 1 << 1; // a policy selects it for egress: default deny

/** struct endpoint_info (cilium_lxc value). */
@unmanaged
export class endpoint_info {
  ifindex: u32; // host-side veth
  lxc_id: u16; // endpoint id: part of the policy key
  flags: u16; // ENDPOINT_F_*
  sec_id: u32; // the endpoint's own identity
  pad: u32;
}

/** struct policy_key. dport 0 / protocol 0 / sec_label 0 are wildcards (see policy.ts for the probe order). */
@unmanaged
export class policy_key {
  sec_label: u32; // remote identity (0: any)
  lxc_id: u16; // the local endpoint the entry belongs to (Cilium: which map)
  dport: be16; // destination port, network order (0: any)
  protocol: u8; // IPPROTO_* (0: any)
  egress: u8; // 0 ingress, 1 egress
  pad: u16;
}

/** struct policy_entry. */
@unmanaged
export class policy_entry {
  proxy_port: be16; // L7 redirect (not modelled: must be 0)
  deny: u8; // 1: a deny entry (DROP_POLICY_DENY)
  auth_type: u8; // mutual auth (not modelled)
  pad: u32;
  packets: u64; // packets that matched it
  bytes: u64;
}

export const IPCACHE_MAP = map_def<ipcache_key, remote_endpoint_info>(BPF_MAP_TYPE_LPM_TRIE, 512000, "cilium_ipcache", PIN_GLOBAL_NS);
export const ENDPOINTS_MAP = map_def<u32, endpoint_info>(BPF_MAP_TYPE_HASH, 65535, "cilium_lxc", PIN_GLOBAL_NS);
export const POLICY_MAP = map_def<policy_key, policy_entry>(BPF_MAP_TYPE_HASH, 65536, "cilium_policy_v2", PIN_GLOBAL_NS);
