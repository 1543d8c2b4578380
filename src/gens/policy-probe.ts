// Policy probes on the model's path: the e2e netpol suite's "can pod X connect to pod Y on port P/proto", answered
// by sending the connection's first packet (TCP SYN, a UDP datagram, an SCTP INIT) from the source pod's network
// namespace through the built generation and watching whether it is delivered to the destination pod's namespace
// (ip_local_deliver there). The dataplane decides: iptables rules (Gen 1-3) or tc programs (Gen 4).
// Each probe uses its own source port so conntrack sees a new connection (ctstate NEW), as a fresh connect() does.
import { Ev, IPPROTO_TCP, IPPROTO_UDP, sendIpv4, sendTcp, sendUdp } from "../net/index.js";
import { parseIpv4 } from "../packet/addr.js";
import { ipv4HeaderChecksum, set16, set32 } from "../packet/checksum.js";
import type { Protocol } from "../k8s/types.js";
import type { Conntrack } from "../netfilter/conntrack.js";
import { podOf, type BuiltGeneration } from "./types.js";

export const IPPROTO_SCTP = 132;
const TCP_SYN = 0x02;

export interface Probe {
  from: string;
  to: string;
  port: number;
  protocol: Protocol;
}

let sportNext = 20000;
function nextSport(): number {
  sportNext = sportNext >= 60000 ? 20000 : sportNext + 1;
  return sportNext;
}

const CRC32C = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[i] = c >>> 0;
  }
  return t;
})();

/** RFC 4960 appendix B: CRC32c over the SCTP packet with the checksum field zero. */
export function crc32c(buf: Uint8Array, off: number, len: number): number {
  let c = 0xffffffff;
  for (let i = off; i < off + len; i++) c = CRC32C[(c ^ buf[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

/** IPv4 + SCTP common header + INIT chunk (RFC 4960 3.3.2), checksums valid. */
export function sctpInit(src: number, dst: number, sport: number, dport: number): Uint8Array {
  const b = new Uint8Array(20 + 12 + 20);
  b[0] = 0x45;
  set16(b, 2, b.length);
  b[6] = 0x40; // DF
  b[8] = 64;
  b[9] = IPPROTO_SCTP;
  set32(b, 12, src);
  set32(b, 16, dst);
  set16(b, 10, ipv4HeaderChecksum(b, 0, 20));
  set16(b, 20, sport);
  set16(b, 22, dport);
  // verification tag 0 for INIT; chunk: type 1, flags 0, length 20, initiate tag, a_rwnd, OS, MIS, initial TSN.
  b[32] = 1;
  set16(b, 34, 20);
  set32(b, 36, 0x1234abcd);
  set32(b, 40, 65536);
  set16(b, 44, 10);
  set16(b, 46, 10);
  set32(b, 48, 1);
  const crc = crc32c(b, 20, 32);
  // Linux stores the CRC little-endian (sctp_compute_cksum returns cpu_to_le32).
  b[28] = crc & 0xff;
  b[29] = (crc >>> 8) & 0xff;
  b[30] = (crc >>> 16) & 0xff;
  b[31] = crc >>> 24;
  return b;
}

/**
 * The model's conntrack tracks SCTP as a generic protocol (no ports: the kernel's nf_conntrack_proto_sctp keys
 * on ports), so an earlier probe b -> a would look like the reply of a -> b. Each probe is a fresh association,
 * so before an SCTP probe the conntrack clock of every node moves past the generic timeout (600 s) and gc runs.
 */
function expireConntrack(g: BuiltGeneration): void {
  for (const n of g.nodes) {
    const ct = (n.ns.netfilter as { conntrack?: Conntrack }).conntrack;
    if (ct !== undefined) ct.setTime(ct.now + 3600);
  }
}

/** Send one probe and report whether its first packet reached the destination pod's namespace. */
export function probe(g: BuiltGeneration, p: Probe): boolean {
  const from = podOf(g, p.from);
  const to = podOf(g, p.to);
  const src = parseIpv4(from.ip);
  const dst = parseIpv4(to.ip);
  const sport = nextSport();
  const trace = g.world.trace;
  const wasEnabled = trace.enabled;
  trace.enabled = true;
  trace.clear();
  let proto: number;
  if (p.protocol === "TCP") {
    proto = IPPROTO_TCP;
    sendTcp(from.ns, { src, dst, sport, dport: p.port, flags: TCP_SYN, seq: 1000, window: 64240 });
  } else if (p.protocol === "UDP") {
    proto = IPPROTO_UDP;
    sendUdp(from.ns, { src, dst, sport, dport: p.port, payload: 8 });
  } else {
    proto = IPPROTO_SCTP;
    expireConntrack(g);
    sendIpv4(from.ns, sctpInit(src, dst, sport, p.port));
  }
  g.world.run();
  let delivered = false;
  for (let i = 0; i < trace.count && !delivered; i++) {
    const r = trace.get(i);
    // LOCAL_DELIVER records (proto, dport); dport is 0 for protocols other than TCP/UDP.
    if (r.ev === Ev.LOCAL_DELIVER && r.ns === to.ns.id && r.a === proto && (r.b === p.port || proto === IPPROTO_SCTP)) delivered = true;
  }
  trace.clear();
  trace.enabled = wasEnabled;
  return delivered;
}
