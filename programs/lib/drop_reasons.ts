// Drop reasons with Cilium's numbers (bpf/lib/common.h: DROP_* are negative there; the metrics map and Hubble
// use the positive value, as cilium_metrics keys do: reason = -DROP_*). Reason 0 is REASON_FORWARDED.
// The text Hubble prints for each is in src/k8s/agent/drop-reasons.ts (pkg/monitor/api/drop.go).
export const REASON_FORWARDED: u8 = 0;
export const DROP_POLICY: u8 = 133; // "Policy denied"
export const DROP_INVALID: u8 = 134; // "Invalid packet"
export const DROP_CT_INVALID_HDR: u8 = 135; // "CT: Invalid header"
export const DROP_UNKNOWN_L4: u8 = 142; // "Unknown L4 protocol"
export const DROP_CT_CREATE_FAILED: u8 = 155; // "CT: Failed to create entry"
export const DROP_NO_SERVICE: u8 = 158; // "Service backend not found"
export const DROP_UNSUPP_SERVICE_PROTO: u8 = 159; // "Unsupported protocol for service"
export const DROP_NAT_NO_MAPPING: u8 = 167; // "No mapping for NAT masquerade"
export const DROP_NAT_UNSUPP_PROTO: u8 = 168; // "Unsupported L4 protocol for NAT masquerade"
export const DROP_POLICY_DENY: u8 = 181; // "Policy denied by denylist"

/** Metric directions (cilium_metrics key `dir`, bpf/lib/metrics.h METRIC_*). */
export const METRIC_INGRESS: u8 = 1;
export const METRIC_EGRESS: u8 = 2;
export const METRIC_SERVICE: u8 = 3;
