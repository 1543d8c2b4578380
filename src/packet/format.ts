// Human-readable packets: one line per packet in the shape of `tcpdump -n -e -S` (tcpdump 4.99 print-ether.c,
// print-arp.c, print-ip.c, print-tcp.c, print-udp.c, print-icmp.c, print-vxlan.c), plus a JSON form.
// Headers are read through the packet layer's views; nothing here throws on packet bytes: a header cut short by
// the capture prints tcpdump's `[|proto]` marker, a malformed one a bracketed note.
//
// Differences from tcpdump, on purpose: timestamps are UTC (tcpdump prints local time); sequence numbers are
// absolute (-S); application protocols are not decoded except VXLAN, DNS (port 53) and the HTTP
// request/status line.

import { formatIpv4, formatMac } from "./addr.js";
import { ArpView } from "./arp.js";
import { get16, get32 } from "./checksum.js";
import {
  ARPOP_REPLY,
  ARPOP_REQUEST,
  ETH_P_8021AD,
  ETH_P_8021Q,
  ETH_P_ARP,
  ETH_P_IP,
  ETH_P_IPV6,
  IANA_VXLAN_UDP_PORT,
  IPPROTO_ICMP,
  IPPROTO_TCP,
  IPPROTO_UDP,
} from "./constants.js";
import { PacketError } from "./error.js";
import { EthernetView } from "./ethernet.js";
import { formatDns } from "./format-dns.js";
import { formatIcmp } from "./format-icmp.js";
import { parsePacket } from "./parse.js";
import type { CaptureRecord } from "./pcap.js";
import { formatTcp } from "./format-tcp.js";
import { VxlanView } from "./vxlan.js";
import { UdpView } from "./udp.js";

/** The bytes being printed: `buf` may be a zero-padded copy; `cap` is the end of the bytes actually captured. */
export interface FrameBytes {
  buf: Uint8Array;
  cap: number;
}

/** tcpdump's ethertype names (ethertype_values in ethertype.c) for the types a dataplane meets. */
const ETHERTYPE_NAMES: Record<number, string> = {
  [ETH_P_IP]: "IPv4",
  [ETH_P_ARP]: "ARP",
  [ETH_P_8021Q]: "802.1Q",
  [ETH_P_8021AD]: "802.1Q-QinQ",
  [ETH_P_IPV6]: "IPv6",
  0x8035: "Reverse ARP",
  0x8847: "MPLS unicast",
  0x8848: "MPLS multicast",
  0x88cc: "LLDP",
  0x9100: "802.1Q-9100",
};

const hex4 = (v: number) => "0x" + v.toString(16).padStart(4, "0");
const two = (n: bigint | number) => String(n).padStart(2, "0");
const ethertype = (t: number) => `ethertype ${ETHERTYPE_NAMES[t] ?? "Unknown"} (${hex4(t)})`;

/** `HH:MM:SS.uuuuuu` (or 9 digits with nano) of the UTC time of day, as tcpdump prints by default. */
export function formatTimestamp(tsNs: bigint, nano = false): string {
  const dayNs = ((tsNs % 86_400_000_000_000n) + 86_400_000_000_000n) % 86_400_000_000_000n;
  const secs = Number(dayNs / 1_000_000_000n);
  const frac = dayNs % 1_000_000_000n;
  const f = nano ? String(frac).padStart(9, "0") : String(frac / 1000n).padStart(6, "0");
  return `${two(Math.floor(secs / 3600))}:${two(Math.floor(secs / 60) % 60)}:${two(secs % 60)}.${f}`;
}

/** a / b rounded towards minus infinity (bigint division truncates towards zero). */
const floorDiv = (a: bigint, b: bigint) => (a % b < 0n ? a / b - 1n : a / b);

/**
 * ISO 8601 UTC with nanoseconds, for JSON. Computed on the bigint itself (Howard Hinnant's civil_from_days), not
 * through Date: a pcapng timestamp is 64 bits of units plus a 64-bit offset, far beyond Date's +-275760 years.
 * Years outside 0000-9999 take the expanded form (sign and at least six digits), as Date.toISOString writes them.
 */
export function isoTimestamp(tsNs: bigint): string {
  const days = floorDiv(tsNs, 86_400_000_000_000n);
  const z = days + 719_468n;
  const era = floorDiv(z, 146_097n);
  const doe = z - era * 146_097n;
  const yoe = (doe - doe / 1460n + doe / 36_524n - doe / 146_096n) / 365n;
  const doy = doe - (365n * yoe + yoe / 4n - yoe / 100n);
  const mp = (5n * doy + 2n) / 153n;
  const day = doy - (153n * mp + 2n) / 5n + 1n;
  const month = mp < 10n ? mp + 3n : mp - 9n;
  const year = yoe + era * 400n + (month <= 2n ? 1n : 0n);
  const y = year >= 0n && year <= 9999n ? String(year).padStart(4, "0") : (year < 0n ? "-" : "+") + String(year < 0n ? -year : year).padStart(6, "0");
  return `${y}-${two(month)}-${two(day)}T${formatTimestamp(tsNs, true)}Z`;
}

/**
 * One Ethernet frame as `tcpdump -n -e -S` prints it after the timestamp. `origLen` is the length on the wire
 * (defaults to the captured length). A VXLAN packet prints its inner frame on a second line, as tcpdump does.
 */
export function formatFrame(data: Uint8Array, origLen = data.length): string {
  const f: FrameBytes = { buf: data, cap: data.length };
  return formatEther(f, 0, Math.max(origLen, data.length));
}

/** The frame at `off`, `len` bytes long on the wire. */
export function formatEther(f: FrameBytes, off: number, len: number): string {
  if (f.cap - off < 14) return " [|ether]";
  let s = `${formatMac(f.buf, off + 6)} > ${formatMac(f.buf, off)}, `;
  let type = get16(f.buf, off + 12);
  if (type < 0x0600) return s + `802.3, length ${len}: [LLC not decoded]`;
  s += `${ethertype(type)}, length ${len}: `;
  let at = off + 14;
  // 802.1Q / 802.1ad tags (print-ether.c): "vlan VID, p PCP[, DEI], ethertype NEXT, "
  while (type === ETH_P_8021Q || type === ETH_P_8021AD) {
    if (f.cap - at < 4) return s + " [|vlan]";
    const tci = get16(f.buf, at);
    type = get16(f.buf, at + 2);
    s += `vlan ${tci & 0xfff}, p ${tci >>> 13}${tci & 0x1000 ? ", DEI" : ""}, ${ethertype(type)}, `;
    at += 4;
  }
  const l3len = off + len - at;
  switch (type) {
    case ETH_P_IP:
      return s + formatIpv4Packet(f, at, l3len);
    case ETH_P_ARP:
      return s + formatArp(f, at, l3len);
    case ETH_P_IPV6:
      return s + `[IPv6 not decoded], length ${l3len}`;
    default:
      return s.slice(0, -1);
  }
}

function formatArp(f: FrameBytes, off: number, len: number): string {
  let arp: ArpView;
  try {
    arp = new ArpView().bind(f.buf, off, Math.min(len, f.cap - off));
  } catch (e) {
    return noteOf(e, "arp");
  }
  const spa = formatIpv4(arp.spa);
  const tpa = formatIpv4(arp.tpa);
  const op = arp.oper;
  if (op === ARPOP_REQUEST) {
    // tcpdump shows the target MAC only when a request carries a non-zero one.
    const tha = arp.tha !== 0 ? ` (${formatMac(f.buf, off + 18)})` : "";
    return `Request who-has ${tpa}${tha} tell ${spa}, length ${len}`;
  }
  if (op === ARPOP_REPLY) return `Reply ${spa} is-at ${formatMac(f.buf, off + 8)}, length ${len}`;
  return `arp-#${op} for proto type 0x0800 (4) hardware 1 (6), length ${len}`;
}

/** A PacketError (or anything else) as tcpdump's truncation marker or a bracketed note; never rethrows. */
export function noteOf(e: unknown, proto: string): string {
  if (e instanceof PacketError) return e.kind === "truncated" ? ` [|${proto}]` : ` [bad ${proto}: ${e.message}]`;
  return ` [error: ${e instanceof Error ? e.message : String(e)}]`;
}

/** Pads `f.buf` with zeros so views can bind declared lengths past the captured bytes (snaplen-cut packets). */
function padded(f: FrameBytes, end: number): FrameBytes {
  if (end <= f.buf.length) return f;
  const buf = new Uint8Array(end);
  buf.set(f.buf.subarray(0, f.cap));
  return { buf, cap: f.cap };
}

function formatIpv4Packet(fIn: FrameBytes, off: number, wireLen: number): string {
  if (fIn.cap - off < 20) return " [|ip]";
  const vihl = fIn.buf[off]!;
  if (vihl >>> 4 !== 4) return `[IPv4 version error: ${vihl >>> 4} != 4]`;
  const hl = (vihl & 15) * 4;
  const tot = get16(fIn.buf, off + 2);
  if (hl < 20) return `[bad ip header length ${hl}]`;
  if (tot < hl) return `[bad ip total length ${tot} < header length ${hl}]`;
  let s = "";
  // print-ip.c: a datagram longer than the bytes on the wire is "truncated-ip", then decoded as far as it goes.
  if (tot > wireLen) s += `truncated-ip - ${tot - wireLen} bytes missing! `;
  const f = padded(fIn, off + tot);
  const src = formatIpv4(get32(f.buf, off + 12));
  const dst = formatIpv4(get32(f.buf, off + 16));
  const proto = f.buf[off + 9]!;
  const fragOffset = get16(f.buf, off + 6) & 0x1fff;
  const l4 = off + hl;
  const l4len = tot - hl;
  if (fragOffset !== 0) return s + `${src} > ${dst}: ip-proto-${proto}`;
  switch (proto) {
    case IPPROTO_TCP:
      return s + formatTcp(f, l4, l4len, src, dst);
    case IPPROTO_UDP:
      return s + formatUdp(f, l4, l4len, src, dst);
    case IPPROTO_ICMP:
      return s + `${src} > ${dst}: ` + formatIcmp(f, l4, l4len);
    default:
      return s + `${src} > ${dst}:  ip-proto-${proto} ${l4len}`; // ip_demux_print's default: " ip-proto-N LEN"
  }
}

function formatUdp(f: FrameBytes, off: number, len: number, src: string, dst: string): string {
  if (f.cap - off < 4 || len < 4) return `${src} > ${dst}:  [|udp]`; // sic: tcpdump's two spaces here, one for TCP
  const sport = get16(f.buf, off);
  const dport = get16(f.buf, off + 2);
  const head = `${src}.${sport} > ${dst}.${dport}: `;
  if (f.cap - off < 8) return head + " [|udp]";
  let u: UdpView;
  try {
    u = new UdpView().bind(f.buf, off, len);
  } catch (e) {
    const ulen = get16(f.buf, off + 4);
    return head + (ulen < 8 ? `[bad udp length ${ulen} < 8]` : `[bad udp length ${ulen} > ${len}]`);
  }
  if (sport === IANA_VXLAN_UDP_PORT || dport === IANA_VXLAN_UDP_PORT) {
    return head + formatVxlan(f, u.payloadOff, u.payloadLen);
  }
  // tcpdump decodes DNS on port 53 (NAMESERVER_PORT); other application ports print as plain UDP here.
  if (sport === 53 || dport === 53) return head + formatDns(f.buf, u.payloadOff, u.payloadLen, f.cap);
  return head + `UDP, length ${u.payloadLen}`;
}

/** print-vxlan.c: flags once captured, then the VNI, then the inner frame on the next line. */
function formatVxlan(f: FrameBytes, off: number, len: number): string {
  const have = Math.min(f.cap - off, len);
  if (have < 1) return "VXLAN [|vxlan]";
  const flags = f.buf[off]!;
  const s = `VXLAN, flags [${flags & 0x08 ? "I" : "none"}] (0x${flags.toString(16).padStart(2, "0")}), `;
  if (have < 7) return s + " [|vxlan]";
  const vni = ((f.buf[off + 4]! << 16) | (f.buf[off + 5]! << 8) | f.buf[off + 6]!) >>> 0;
  if (have < 8) return s + `vni ${vni}\n [|vxlan]`;
  const v = new VxlanView().bind(f.buf, off, len);
  return s + `vni ${v.vni}\n` + formatEther(f, v.payloadOff, v.payloadLen);
}

export interface FormatOptions {
  /** Nanosecond timestamps (tcpdump --nano). */
  nano?: boolean;
  /** Put the interface name (and direction, if recorded) after the timestamp: several-interface captures. */
  showInterface?: boolean;
}

/** One capture record as a tcpdump-style line (two lines for VXLAN). */
export function formatRecord(rec: CaptureRecord, opts: FormatOptions = {}): string {
  let s = formatTimestamp(rec.tsNs, opts.nano) + " ";
  if (opts.showInterface) {
    s += `${rec.ifName ?? `if${rec.ifIndex}`} `;
    if (rec.direction) s += rec.direction === "inbound" ? "In " : "Out ";
  }
  return s + formatFrame(rec.data, rec.origLen);
}

/** JSON-safe: byte arrays become hex strings, bigints decimal strings. */
export function toJsonValue(v: unknown): unknown {
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("hex");
  if (typeof v === "bigint") return v.toString();
  if (Array.isArray(v)) return v.map(toJsonValue);
  if (v !== null && typeof v === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) if (x !== undefined) out[k] = toJsonValue(x);
    return out;
  }
  return v;
}

/** The JSON form of one packet: stable field names (documented in the README). */
export interface PacketJson {
  /** 1-based, as tshark's frame.number. */
  index: number;
  /** ISO 8601 UTC with nanoseconds. */
  time: string;
  /** Nanoseconds since the epoch, as a decimal string (exceeds 2^53). */
  tsNs: string;
  ifIndex: number;
  interface: string | null;
  direction?: string;
  comment?: string;
  /** Length on the wire. */
  length: number;
  capturedLength: number;
  /** The tcpdump-style text. */
  summary: string;
  /** parsePacket's plain form (bytes as hex); absent when the packet does not parse. */
  layers?: unknown;
  /** Why the packet did not parse (`tcp at byte 34: truncated tcp header: ...`). */
  error?: string;
}

export function recordJson(rec: CaptureRecord, opts: FormatOptions = {}): PacketJson {
  const j: PacketJson = {
    index: rec.index,
    time: isoTimestamp(rec.tsNs),
    tsNs: rec.tsNs.toString(),
    ifIndex: rec.ifIndex,
    interface: rec.ifName ?? null,
    length: rec.origLen,
    capturedLength: rec.data.length,
    summary: formatRecord(rec, { ...opts, showInterface: false }).replace(/^\S+ /, ""),
  };
  if (rec.direction) j.direction = rec.direction;
  if (rec.comment !== undefined) j.comment = rec.comment;
  try {
    j.layers = toJsonValue(parsePacket(rec.data));
  } catch (e) {
    j.error = e instanceof PacketError ? `${e.where}: ${e.message}` : e instanceof Error ? e.message : String(e);
  }
  return j;
}
