// parsePacket: bytes -> the plain parsed form (repr.ts), using the same views as the hot path, so the rules
// for what is valid live in one place (the views' bind). Throws PacketError on truncated or malformed headers.
import { formatIpv4, formatMac } from "./addr.js";
import { ArpView } from "./arp.js";
import { get16 } from "./checksum.js";
import {
  ETH_P_ARP,
  ETH_P_IP,
  IANA_VXLAN_UDP_PORT,
  ICMP_ECHO,
  ICMP_ECHOREPLY,
  ICMP_INFO_REPLY,
  ICMP_INFO_REQUEST,
  ICMP_TIMESTAMP,
  ICMP_TIMESTAMPREPLY,
  IPPROTO_ICMP,
  IPPROTO_SCTP,
  IPPROTO_TCP,
  IPPROTO_UDP,
  IP_CE,
  icmpIsError,
} from "./constants.js";
import { PacketError } from "./error.js";
import { EthernetView } from "./ethernet.js";
import { IcmpView } from "./icmp.js";
import { Ipv4View } from "./ipv4.js";
import type { ParsedIcmp, ParsedIpv4, ParsedPacket, ParsedQuoted, ParsedVlan } from "./repr.js";
import { decodeTcpOptions } from "./tcp-options.js";
import { TcpView } from "./tcp.js";
import { toHex } from "./hex.js";
import { UdpView } from "./udp.js";
import { VxlanView } from "./vxlan.js";

/** VXLAN is decapsulated this many levels deep; a VXLAN packet inside that stays plain UDP. */
const MAX_VXLAN_DEPTH = 1;

/** ICMP types whose bytes 4..8 are identifier and sequence (echo, timestamp, information). */
export function icmpHasIdSeq(type: number): boolean {
  return (
    type === ICMP_ECHO ||
    type === ICMP_ECHOREPLY ||
    type === ICMP_TIMESTAMP ||
    type === ICMP_TIMESTAMPREPLY ||
    type === ICMP_INFO_REQUEST ||
    type === ICMP_INFO_REPLY
  );
}

/** Parse an Ethernet frame (the `len` bytes at `off`). Throws PacketError. */
export function parsePacket(bytes: Uint8Array, off = 0, len = bytes.length - off): ParsedPacket {
  return parseFrame(bytes, off, len, 0);
}

function parseFrame(buf: Uint8Array, off: number, len: number, depth: number): ParsedPacket {
  const eth = new EthernetView().bind(buf, off, len);
  const p: ParsedPacket = {
    eth: { dst: formatMac(buf, off), src: formatMac(buf, off + 6), type: eth.etherType },
    payload: new Uint8Array(0),
  };
  if (eth.tags > 0) {
    const tags: ParsedVlan[] = [];
    for (let i = 0; i < eth.tags; i++) {
      const tci = eth.tagTci(i);
      tags.push({ tpid: eth.tagTpid(i), pcp: tci >>> 13, dei: (tci >>> 12) & 1, vid: tci & 0xfff });
    }
    p.vlan = tags;
  }
  const l3 = eth.payloadOff;
  const end = off + len;
  let l3end = end;
  if (eth.etherType === ETH_P_ARP) {
    const arp = new ArpView().bind(buf, l3, end - l3);
    p.arp = { op: arp.oper, sha: formatMac(buf, l3 + 8), spa: formatIpv4(arp.spa), tha: formatMac(buf, l3 + 18), tpa: formatIpv4(arp.tpa) };
    l3end = l3 + 28;
  } else if (eth.etherType === ETH_P_IP) {
    const ip = new Ipv4View().bind(buf, l3, end - l3);
    p.ipv4 = ipv4Repr(ip, buf);
    l3end = l3 + ip.totalLength;
    parseL4(p, ip, buf, depth);
  } else {
    p.payload = buf.slice(l3, end);
  }
  if (l3end < end) p.trailer = buf.slice(l3end, end);
  return p;
}

function ipv4Repr(ip: Ipv4View, buf: Uint8Array): ParsedIpv4 {
  const r: ParsedIpv4 = {
    tos: ip.tos,
    length: ip.totalLength,
    id: ip.ident,
    df: ip.df,
    mf: ip.mf,
    fragOffset: ip.fragOffset,
    ttl: ip.ttl,
    protocol: ip.protocol,
    checksum: ip.checksum,
    src: formatIpv4(ip.src),
    dst: formatIpv4(ip.dst),
  };
  if (ip.fragOff & IP_CE) r.rf = true;
  if (ip.headerLen > 20) r.options = toHex(buf, ip.off + 20, ip.headerLen - 20);
  return r;
}

function parseL4(p: ParsedPacket, ip: Ipv4View, buf: Uint8Array, depth: number): void {
  const off = ip.payloadOff;
  const len = ip.payloadLen;
  // Fragments carry no parseable (or checksummable) L4 header on their own; conntrack defragments first.
  if (ip.isFragment) {
    p.payload = buf.slice(off, off + len);
    return;
  }
  switch (ip.protocol) {
    case IPPROTO_TCP: {
      const t = new TcpView().bind(buf, off, len);
      p.tcp = { sport: t.sport, dport: t.dport, seq: t.seq, ack: t.ack, flags: t.flags, window: t.window, checksum: t.checksum, urgent: t.urgent };
      if (t.optionsLen > 0) p.tcp.options = decodeTcpOptions(buf, t.optionsOff, t.optionsLen);
      p.payload = buf.slice(t.payloadOff, t.payloadOff + t.payloadLen);
      return;
    }
    case IPPROTO_UDP: {
      const u = new UdpView().bind(buf, off, len);
      p.udp = { sport: u.sport, dport: u.dport, length: u.length, checksum: u.checksum };
      if (u.dport === IANA_VXLAN_UDP_PORT && depth < MAX_VXLAN_DEPTH) {
        const v = new VxlanView().bind(buf, u.payloadOff, u.payloadLen);
        let inner: ParsedPacket;
        try {
          inner = parseFrame(buf, v.payloadOff, v.payloadLen, depth + 1);
        } catch (e) {
          if (e instanceof PacketError) throw new PacketError(e.kind, `inner ${e.layer}`, e.offset, e.detail);
          throw e;
        }
        p.vxlan = { flags: v.flags, vni: v.vni, inner };
      } else {
        p.payload = buf.slice(u.payloadOff, u.payloadOff + u.payloadLen);
      }
      // Bytes in the IP payload past the UDP length field: udp_rcv trims them; keep them for a faithful emit.
      if (u.len < len) p.l4Trailer = buf.slice(off + u.len, off + len);
      return;
    }
    case IPPROTO_ICMP: {
      const c = new IcmpView().bind(buf, off, len);
      p.icmp = icmpRepr(c, buf);
      p.payload = buf.slice(c.payloadOff, c.payloadOff + c.payloadLen);
      return;
    }
    default:
      p.payload = buf.slice(off, off + len);
  }
}

function icmpRepr(c: IcmpView, buf: Uint8Array): ParsedIcmp {
  const r: ParsedIcmp = { type: c.type, code: c.code, checksum: c.checksum };
  if (icmpHasIdSeq(c.type)) {
    r.id = c.id;
    r.seq = c.seq;
  } else {
    r.rest = c.rest;
  }
  if (icmpIsError(c.type)) {
    const inner = c.bindQuoted(new Ipv4View());
    const q: ParsedQuoted = { ipv4: ipv4Repr(inner, buf) };
    const proto = inner.protocol;
    const l4 = inner.payloadOff;
    if (inner.fragOffset === 0) {
      if (proto === IPPROTO_TCP || proto === IPPROTO_UDP || proto === IPPROTO_SCTP) {
        q.sport = get16(buf, l4);
        q.dport = get16(buf, l4 + 2);
      } else if (proto === IPPROTO_ICMP && icmpHasIdSeq(buf[l4]!)) {
        q.id = get16(buf, l4 + 4);
      }
    }
    r.quoted = q;
  }
  return r;
}
