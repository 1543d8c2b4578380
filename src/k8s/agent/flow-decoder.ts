// Decode programs/lib/flow.ts ring-buffer records into flows and print them like `hubble observe`:
//   Nov 25 00:16:40.000: 10.244.1.5:40000 (ID:256) -> 10.96.0.10:80 (world) to-stack FORWARDED (TCP Flags: SYN)
//   Nov 25 00:16:40.001: 10.244.1.6:40001 (ID:257) -> 10.244.1.20:9090 (ID:258) Policy denied DROPPED (TCP Flags: SYN)
import type { BpfMap } from "../../ebpf/maps/map.js";
import { ringbufConsume } from "../../ebpf/maps/ringbuf.js";
import { formatIpv4 } from "../../packet/addr.js";
import { RESERVED_IDENTITIES } from "./identity.js";

/** offsetof<flow_event>() in programs/lib/flow.ts. */
export const FLOW_EVENT_SIZE = 44;

export type Verdict = "FORWARDED" | "DROPPED" | "VERDICT_UNKNOWN";

export interface Flow {
  timeNs: bigint;
  source: { ip: string; port: number; identity: number };
  destination: { ip: string; port: number; identity: number };
  protocol: "TCP" | "UDP" | "ICMPv4" | string;
  verdict: Verdict;
  /** Cilium's drop reason number (0 when forwarded) and its text. */
  dropReason: number;
  dropReasonDesc: string;
  observationPoint: string;
  isReply: boolean;
  tcpFlags: string[];
  ifindex: number;
  length: number;
}

/** pkg/monitor/api/drop.go texts for the reasons tcbox programs use. */
export const DROP_REASON_TEXT: Record<number, string> = {
  133: "Policy denied",
  134: "Invalid packet",
  135: "CT: Invalid header",
  142: "Unknown L4 protocol",
  155: "CT: Failed to create entry",
  158: "Service backend not found",
  159: "Unsupported protocol for service",
  167: "No mapping for NAT masquerade",
  168: "Unsupported L4 protocol for NAT masquerade",
  181: "Policy denied by denylist",
};

/** Hubble's TraceObservationPoint names as `hubble observe` prints them. */
export const OBSERVATION_POINTS: Record<number, string> = {
  0: "unknown", 1: "to-proxy", 2: "to-host", 3: "to-stack", 4: "to-overlay", 5: "from-endpoint", 6: "from-proxy",
  7: "from-host", 8: "from-stack", 9: "from-overlay", 10: "from-network", 11: "to-network", 101: "to-endpoint",
};

const PROTOCOLS: Record<number, string> = { 1: "ICMPv4", 6: "TCP", 17: "UDP", 132: "SCTP" };
const TCP_FLAG_NAMES: [number, string][] = [[0x02, "SYN"], [0x10, "ACK"], [0x01, "FIN"], [0x04, "RST"], [0x08, "PSH"], [0x20, "URG"], [0x40, "ECE"], [0x80, "CWR"]];

export function decodeFlowEvent(b: Uint8Array): Flow {
  const d = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const proto = b[28]!;
  const flags = b[33]!;
  const reason = b[30]!;
  const verdict = b[29] === 1 ? "FORWARDED" : b[29] === 2 ? "DROPPED" : "VERDICT_UNKNOWN";
  return {
    timeNs: d.getBigUint64(0, true),
    source: { ip: formatIpv4(d.getUint32(8, false)), port: d.getUint16(24, false), identity: d.getUint32(16, true) },
    destination: { ip: formatIpv4(d.getUint32(12, false)), port: d.getUint16(26, false), identity: d.getUint32(20, true) },
    protocol: PROTOCOLS[proto] ?? `proto-${proto}`,
    verdict,
    dropReason: reason,
    dropReasonDesc: reason === 0 ? "" : (DROP_REASON_TEXT[reason] ?? `drop reason ${reason}`),
    observationPoint: OBSERVATION_POINTS[b[31]!] ?? `point-${b[31]}`,
    isReply: b[32] === 1,
    tcpFlags: proto === 6 ? TCP_FLAG_NAMES.filter(([m]) => flags & m).map(([, n]) => n) : [],
    ifindex: d.getUint32(36, true),
    length: d.getUint32(40, true),
  };
}

/** Consume every pending record of the ring (libbpf's ring_buffer__consume) as flows. */
export function readFlows(ring: BpfMap): Flow[] {
  const out: Flow[] = [];
  ringbufConsume(ring, (rec) => out.push(decodeFlowEvent(rec)));
  return out;
}

function identityText(id: number, name?: (id: number) => string | undefined): string {
  const reserved = Object.entries(RESERVED_IDENTITIES).find(([, n]) => n === id);
  if (reserved) return reserved[0];
  return name?.(id) ?? `ID:${id}`;
}

function timeText(ns: bigint): string {
  const d = new Date(Number(ns / 1_000_000n));
  const mon = d.toLocaleString("en-US", { month: "short", timeZone: "UTC" });
  const pad = (n: number, w = 2) => String(n).padStart(w, "0");
  return `${mon} ${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}.${pad(d.getUTCMilliseconds(), 3)}`;
}

/** One `hubble observe` line. `name` may map an identity to labels or a pod name. */
export function formatFlow(f: Flow, name?: (id: number) => string | undefined): string {
  const ep = (e: Flow["source"]) => `${e.ip}${f.protocol === "TCP" || f.protocol === "UDP" ? `:${e.port}` : ""} (${identityText(e.identity, name)})`;
  const what = f.verdict === "DROPPED" ? `${f.dropReasonDesc} DROPPED` : `${f.observationPoint} ${f.verdict}`;
  const tail = f.protocol === "TCP" ? ` (TCP Flags: ${f.tcpFlags.join(", ")})` : f.protocol === "UDP" ? " (UDP)" : ` (${f.protocol})`;
  // hubble prints a reply with the connection's initiator on the left: "client <- server".
  const [left, right] = f.isReply ? [f.destination, f.source] : [f.source, f.destination];
  return `${timeText(f.timeNs)}: ${ep(left)} ${f.isReply ? "<-" : "->"} ${ep(right)} ${what}${tail}`;
}
