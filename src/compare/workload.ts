// The compare workload: YAML with a `flows:` list, each entry
//   {from: NS/POD, to: DEST, protocol: TCP|UDP|ICMP, packets: N, count: K}
// DEST is service/NS/NAME:PORT, pod/NS/NAME:PORT, IP:PORT or a DNS name with a port (NAME:PORT, resolved by the
// client pod through CoreDNS). For ICMP the port may be left out (echo has no ports). `packets` (default 1) is the
// number of data packets each way; `count` (default 1) the number of connections. A bad entry is an error naming
// the file, the entry and the field (`wl.yaml: flows[2].protocol`), before anything runs.
import { LineCounter, parseDocument } from "yaml";
import { yamlDocValue } from "../k8s/manifest-reader.js";

export type FlowProtocol = "TCP" | "UDP" | "ICMP";

export interface WorkloadFlow {
  from: string;
  to: string;
  protocol: FlowProtocol;
  /** Data packets each way: TCP segments with payload, UDP datagrams, ICMP echo requests. */
  packets: number;
  count: number;
}

/** A destination as the engine reads it; `port` is 0 for an ICMP destination given without one. */
export type Destination =
  | { kind: "service" | "pod"; namespace: string; name: string; port: number }
  | { kind: "ip"; addr: string; port: number }
  | { kind: "name"; name: string; port: number };

export class WorkloadError extends Error {
  constructor(
    message: string,
    readonly where: string,
  ) {
    super(message);
    this.name = "WorkloadError";
  }
}

const PROTOCOLS: readonly string[] = ["TCP", "UDP", "ICMP"];
const FIELDS = new Set(["from", "to", "protocol", "packets", "count"]);
/** Upper bounds that keep one run bounded (each packet is simulated hop by hop in every generation). */
export const MAX_PACKETS = 100_000;
export const MAX_COUNT = 100_000;

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;
/** RFC 1123 host name labels (letters, digits, hyphens; not starting or ending with a hyphen); `_` as in SRV names. */
const LABEL = /^[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/;
export const DEST_FORMS = "service/NS/NAME:PORT, pod/NS/NAME:PORT, IP:PORT or NAME:PORT (a DNS name)";

/** The destination of `to`, or an error message. */
export function parseDestination(to: string, protocol: FlowProtocol): Destination | string {
  const portless = protocol === "ICMP";
  const colon = to.lastIndexOf(":");
  const host = colon < 0 ? to : to.slice(0, colon);
  let port = 0;
  if (colon >= 0) {
    const ps = to.slice(colon + 1);
    if (!/^\d{1,5}$/.test(ps) || Number(ps) < 1 || Number(ps) > 65535) return `port "${ps}" in "${to}" is not a port number (1-65535)`;
    port = Number(ps);
  } else if (!portless) return `"${to}" has no port: ${DEST_FORMS}`;
  const kn = /^(service|pod)\/([^/]+)\/([^/]+)$/.exec(host);
  if (kn !== null) return { kind: kn[1] as "service" | "pod", namespace: kn[2]!, name: kn[3]!, port };
  if (host.includes("/")) return `destination "${to}" is not ${DEST_FORMS}`;
  const ip = IPV4.exec(host);
  if (ip !== null) {
    if (ip.slice(1).some((o) => Number(o) > 255)) return `"${host}" is not an IPv4 address`;
    return { kind: "ip", addr: host, port };
  }
  const name = host.endsWith(".") ? host.slice(0, -1) : host;
  if (name.length === 0 || name.length > 253 || !name.split(".").every((l) => LABEL.test(l)) || /^[\d.]+$/.test(name)) {
    return `destination "${to}" is not ${DEST_FORMS}`;
  }
  return { kind: "name", name: host.toLowerCase(), port };
}

function positive(v: unknown, max: number, at: string): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1) throw new WorkloadError(`must be a positive integer, got ${JSON.stringify(v)}`, at);
  if (v > max) throw new WorkloadError(`${v} is more than ${max}`, at);
  return v;
}

/** Check one parsed `flows:` entry; `at(field)` names its place. */
export function checkFlow(f: unknown, at: (field: string) => string): WorkloadFlow {
  if (f === null || typeof f !== "object" || Array.isArray(f)) throw new WorkloadError("must be a mapping {from, to, protocol, packets, count}", at("").replace(/\.$/, ""));
  const o = f as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!FIELDS.has(k)) throw new WorkloadError(`unknown field (fields: ${[...FIELDS].join(", ")})`, at(k));
  if (typeof o.from !== "string" || !/^[^/\s]+\/[^/\s]+$/.test(o.from)) throw new WorkloadError("must be NS/POD", at("from"));
  const protocol = o.protocol ?? "TCP";
  if (typeof protocol !== "string" || !PROTOCOLS.includes(protocol)) throw new WorkloadError(`protocol "${String(protocol)}" not supported (${PROTOCOLS.join(", ")})`, at("protocol"));
  if (typeof o.to !== "string") throw new WorkloadError(`must be ${DEST_FORMS}`, at("to"));
  const d = parseDestination(o.to, protocol as FlowProtocol);
  if (typeof d === "string") throw new WorkloadError(d, at("to"));
  const packets = positive(o.packets ?? 1, MAX_PACKETS, at("packets"));
  const count = positive(o.count ?? 1, MAX_COUNT, at("count"));
  return { from: o.from, to: o.to, protocol: protocol as FlowProtocol, packets, count };
}

/** A workload file's text: every entry checked before anything runs. */
export function parseWorkload(text: string, file: string): WorkloadFlow[] {
  const lines = new LineCounter();
  const parsed = parseDocument(text, { lineCounter: lines });
  const doc = yamlDocValue(parsed, lines, (message, line) => new WorkloadError(`not YAML: ${message}`, `${file}${line ? `:${line}` : ""}`));
  const flows = (doc as { flows?: unknown } | null)?.flows;
  if (doc === null || typeof doc !== "object" || !Array.isArray(flows)) throw new WorkloadError("expected a `flows:` list", `${file}: flows`);
  return flows.map((f: unknown, i: number) => checkFlow(f, (field) => `${file}: flows[${i}].${field}`));
}
