// Policy verdicts (bpf/lib/policy.h __policy_can_access, identity.h): the remote side's identity from the
// ipcache (longest prefix; WORLD when no prefix holds it), then the endpoint's policy entries, most specific
// first. The first entry found decides: allow, or deny (DROP_POLICY_DENY); none found is a default deny
// (DROP_POLICY) for an endpoint a policy selects. Deny precedence over broader allows is resolved by the agent
// when it writes the entries, as Cilium's agent does.
import { map_lookup, map_lookup_key } from "tcbox";
import { ENDPOINTS_MAP, endpoint_info, IDENTITY_WORLD, IPCACHE_MAP, ipcache_key, policy_entry, policy_key, POLICY_MAP, remote_endpoint_info } from "./policy_map";

export const POLICY_ALLOW: i32 = 0;
export const POLICY_DENY_DEFAULT: i32 = -1; // no entry: DROP_POLICY
export const POLICY_DENY_ENTRY: i32 = -2; // a deny entry: DROP_POLICY_DENY

const ikey = changetype<ipcache_key>(memory.data(offsetof<ipcache_key>()));
const pkey = changetype<policy_key>(memory.data(offsetof<policy_key>()));
const lkey = memory.data(4);

// Keys are written as whole words (as lib/conntrack.ts writes tuples): the map helpers read them as words, and a
// wide load of bytes just written by narrower stores stalls on the store buffer.

/** lookup_ip4_remote_endpoint(): identity of `addr` (raw), WORLD if unknown. */
export function identity_of(addr: u32): u32 {
  store<u64>(changetype<usize>(ikey), 32 | (<u64>addr << 32)); // prefixlen 32, addr
  const info = map_lookup<remote_endpoint_info>(IPCACHE_MAP, changetype<usize>(ikey));
  return info == null ? IDENTITY_WORLD : info.sec_identity;
}

/** lookup_ip4_endpoint(): the local endpoint at `addr`, or null. */
export function lookup_endpoint(addr: u32): endpoint_info | null {
  store<u32>(lkey, addr);
  return map_lookup_key<u32, endpoint_info>(ENDPOINTS_MAP, lkey);
}

/** policy_key {sec_label (0), lxc_id (4), dport (6), protocol (8), egress (9), pad (10)}, looked up. */
// @ts-ignore: decorator
@inline function probe(lxc_id: u16, egress: u8, id: u32, dport: u16, proto: u8): policy_entry | null {
  const k = changetype<usize>(pkey);
  store<u64>(k, <u64>id | (<u64>lxc_id << 32) | (<u64>dport << 48));
  store<u32>(k, <u32>proto | (<u32>egress << 8), 8);
  return map_lookup_key<policy_key, policy_entry>(POLICY_MAP, k);
}

/**
 * policy_can_access(): the verdict for traffic between endpoint `lxc_id` and remote identity `remote_id` on
 * (dport, proto) in one direction. Probe order: {id, port, proto}, {id, *, proto}, {*, port, proto},
 * {*, *, proto}, {id, *, *}, {*, *, *}. The matching entry counts the packet.
 */
export function policy_can_access(lxc_id: u16, remote_id: u32, dport: u16, proto: u8, egress: u8, bytes: u32): i32 {
  let e = probe(lxc_id, egress, remote_id, dport, proto);
  if (e == null) e = probe(lxc_id, egress, remote_id, 0, proto);
  if (e == null) e = probe(lxc_id, egress, 0, dport, proto);
  if (e == null) e = probe(lxc_id, egress, 0, 0, proto);
  if (e == null) e = probe(lxc_id, egress, remote_id, 0, 0);
  if (e == null) e = probe(lxc_id, egress, 0, 0, 0);
  if (e == null) return POLICY_DENY_DEFAULT;
  e.packets += 1;
  e.bytes += bytes;
  return e.deny != 0 ? POLICY_DENY_ENTRY : POLICY_ALLOW;
}
