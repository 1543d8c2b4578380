// What a compare connection carries, so a capture decodes as the application it stands for (no "malformed" in
// Wireshark): port 53 is DNS (a query for the cluster's kubernetes Service and its answer; over TCP with the
// two-byte length prefix of RFC 1035 4.2.2), any other TCP port an HTTP/1.1 keep-alive request and response,
// any other UDP port opaque bytes. Built once per connection; every data packet of it carries the same bytes.
import type { BuiltGeneration } from "../gens/types.js";
import { clusterRecords, CLUSTER_DOMAIN, dnsResponse } from "./dns.js";
import { dnsQuery } from "./scenarios/ndots.js";

export interface AppPayloads {
  request: Uint8Array;
  response: Uint8Array;
}

const enc = new TextEncoder();
const OPAQUE = Uint8Array.from({ length: 64 }, (_, i) => 0x41 + (i % 26));
const OPAQUE_PAYLOADS: AppPayloads = { request: OPAQUE, response: OPAQUE };

function tcpFramed(m: Uint8Array): Uint8Array {
  const out = new Uint8Array(2 + m.length);
  out[0] = m.length >> 8;
  out[1] = m.length & 255;
  out.set(m, 2);
  return out;
}

/** The request and response bytes for a connection to `host:port`; `id` varies the DNS id per connection. */
export function appPayloads(g: BuiltGeneration, tcp: boolean, host: string, port: number, id: number): AppPayloads {
  if (port === 53) {
    const name = `kubernetes.default.svc.${CLUSTER_DOMAIN}`;
    const q = dnsQuery(id & 0xffff, name, 1);
    const recs = clusterRecords(g, name);
    const r = dnsResponse(q, recs === null ? 3 : 0, recs ?? [], 5, true);
    return tcp ? { request: tcpFramed(q), response: tcpFramed(r) } : { request: q, response: r };
  }
  if (!tcp) return OPAQUE_PAYLOADS;
  return {
    request: enc.encode(`GET / HTTP/1.1\r\nHost: ${host}:${port}\r\nUser-Agent: tcbox\r\nAccept: */*\r\n\r\n`),
    response: enc.encode("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n"),
  };
}
