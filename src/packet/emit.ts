// emitPacket: the plain parsed form -> bytes. Lengths (tot_len, UDP length, data offset, ihl) and checksums
// (IPv4 header, TCP/UDP with the pseudo-header, ICMP) are computed, never taken from the object; a UDP checksum of
// 0 in the object means "none" and is kept (RFC 768).
import { parseIpv4, parseMac48, setMac48 } from "./addr.js";
import { writeArp } from "./arp.js";
import { csumFinish, csumPartial, l4Checksum, set16, set32, udpChecksumValue } from "./checksum.js";
import { ETH_HLEN, IP_CE, IP_DF, IP_MF, IPPROTO_TCP, IPPROTO_UDP, VLAN_HLEN } from "./constants.js";
import { PacketError } from "./error.js";
import { writeVlanTag } from "./ethernet.js";
import { fromHex } from "./hex.js";
import { writeIpv4Header } from "./ipv4.js";
import type { ParsedIpv4, ParsedPacket } from "./repr.js";
import { encodeTcpOptions } from "./tcp-options.js";
import { writeTcpHeader } from "./tcp.js";
import { writeUdpHeader } from "./udp.js";
import { writeVxlanHeader } from "./vxlan.js";

const padded = (n: number) => (n + 3) & ~3;

function ipv4Options(ip: ParsedIpv4): Uint8Array | undefined {
  if (!ip.options) return undefined;
  const raw = fromHex(ip.options);
  if (raw.length % 4 === 0) return raw;
  const out = new Uint8Array(padded(raw.length));
  out.set(raw);
  return out;
}

/** Bytes emitPacket will produce (smoltcp's buffer_len). */
export function packetLen(p: ParsedPacket): number {
  let n = ETH_HLEN + (p.vlan ? p.vlan.length * VLAN_HLEN : 0) + l3Len(p);
  if (p.trailer) n += p.trailer.length;
  return n;
}

function l3Len(p: ParsedPacket): number {
  if (p.arp) return 28;
  if (!p.ipv4) return p.payload.length;
  const opts = p.ipv4.options ? padded(p.ipv4.options.length / 2) : 0;
  return 20 + opts + l4Len(p);
}

function l4Len(p: ParsedPacket): number {
  let n = p.payload.length + (p.l4Trailer ? p.l4Trailer.length : 0);
  if (p.tcp) n += 20 + (p.tcp.options ? encodeTcpOptions(p.tcp.options).length : 0);
  else if (p.udp) n += 8 + (p.vxlan ? 8 + packetLen(p.vxlan.inner) : 0);
  else if (p.icmp) n += 8;
  return n;
}

/** Emit into a new buffer. Throws PacketError if the object cannot be encoded (e.g. a length over 65535). */
export function emitPacket(p: ParsedPacket): Uint8Array {
  const out = new Uint8Array(packetLen(p));
  emitPacketInto(p, out, 0);
  return out;
}

/** Emit at `off` in `buf` (which must have packetLen(p) bytes there); returns the bytes written. */
export function emitPacketInto(p: ParsedPacket, buf: Uint8Array, off: number): number {
  setMac48(buf, off, parseMac48(p.eth.dst));
  setMac48(buf, off + 6, parseMac48(p.eth.src));
  let q = off + 12;
  if (p.vlan) {
    for (const t of p.vlan) q = writeVlanTag(buf, q, t.tpid, ((t.pcp & 7) << 13) | ((t.dei & 1) << 12) | (t.vid & 0xfff));
  }
  set16(buf, q, p.eth.type);
  q += 2;
  if (p.arp) {
    const a = p.arp;
    q = writeArp(buf, q, a.op, parseMac48(a.sha), parseIpv4(a.spa), parseMac48(a.tha), parseIpv4(a.tpa));
  } else if (p.ipv4) {
    q = emitIpv4(p, buf, q);
  } else {
    buf.set(p.payload, q);
    q += p.payload.length;
  }
  if (p.trailer) {
    buf.set(p.trailer, q);
    q += p.trailer.length;
  }
  return q - off;
}

function emitIpv4(p: ParsedPacket, buf: Uint8Array, off: number): number {
  const ip = p.ipv4!;
  const options = ipv4Options(ip);
  const hl = 20 + (options ? options.length : 0);
  const total = hl + l4Len(p);
  if (total > 0xffff) throw new PacketError("malformed", "ipv4", off, `total length ${total} > 65535`);
  const src = parseIpv4(ip.src);
  const dst = parseIpv4(ip.dst);
  const fragOff = (ip.rf ? IP_CE : 0) | (ip.df ? IP_DF : 0) | (ip.mf ? IP_MF : 0) | (ip.fragOffset & 0x1fff);
  const l4 = writeIpv4Header(buf, off, { tos: ip.tos, totalLength: total, id: ip.id, fragOff, ttl: ip.ttl, protocol: ip.protocol, src, dst, options });
  const end = off + total;
  let q = l4;
  if (p.tcp) {
    const t = p.tcp;
    const opts = t.options && t.options.length > 0 ? encodeTcpOptions(t.options) : undefined;
    q = writeTcpHeader(buf, l4, { sport: t.sport, dport: t.dport, seq: t.seq, ack: t.ack, flags: t.flags, window: t.window, urgent: t.urgent, options: opts });
    buf.set(p.payload, q);
    set16(buf, l4 + 16, l4Checksum(buf, l4, end - l4, 16, src, dst, IPPROTO_TCP));
    return end;
  }
  if (p.udp) {
    const u = p.udp;
    const ulen = end - l4 - (p.l4Trailer ? p.l4Trailer.length : 0);
    q = writeUdpHeader(buf, l4, u.sport, u.dport, ulen);
    if (p.vxlan) {
      q = writeVxlanHeader(buf, q, p.vxlan.vni);
      buf[q - 8] = p.vxlan.flags;
      emitPacketInto(p.vxlan.inner, buf, q);
    } else {
      buf.set(p.payload, q);
    }
    if (p.l4Trailer) buf.set(p.l4Trailer, l4 + ulen);
    if (u.checksum !== 0) set16(buf, l4 + 6, udpChecksumValue(l4Checksum(buf, l4, ulen, 6, src, dst, IPPROTO_UDP)));
    return end;
  }
  if (p.icmp) {
    const c = p.icmp;
    buf[l4] = c.type;
    buf[l4 + 1] = c.code;
    set16(buf, l4 + 2, 0);
    if (c.id !== undefined || c.seq !== undefined) {
      set16(buf, l4 + 4, c.id ?? 0);
      set16(buf, l4 + 6, c.seq ?? 0);
    } else {
      set32(buf, l4 + 4, c.rest ?? 0);
    }
    buf.set(p.payload, l4 + 8);
    set16(buf, l4 + 2, csumFinish(csumPartial(buf, l4, end - l4)));
    return end;
  }
  buf.set(p.payload, l4);
  return end;
}
