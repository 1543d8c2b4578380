// Packet rewriting from a NAT binding (kernel nf_nat_packet, nf_nat_manip_pkt, nf_nat_ipv4_manip_pkt,
// tcp/udp/icmp_manip_pkt in nf_nat_proto.c, and nf_nat_icmp_reply_translation for RELATED ICMP errors).
//
// The target of a manip is the inverse of the other direction's tuple: original-direction packets get the reply
// tuple's inverse (DNAT destination, SNAT source), reply packets the original tuple's inverse (un-DNAT, un-SNAT).
// Checksums are updated incrementally (RFC 1624, the kernel's csum_replace4/2): IPv4 header, TCP and UDP with the
// pseudo-header address change and the port change; a UDP checksum of 0 ("none") stays 0 and a computed 0 is sent
// as 0xffff (CSUM_MANGLED_0); ICMP query ids with the ICMP checksum. Works on bytes, allocates nothing.
import { csumFinish, csumPartial, csumReplace16, csumReplace32, get16, get32, set16, set32 } from "../packet/checksum.js";
import type { Conntrack } from "./conntrack.js";
import { ctDir, IP_CT_RELATED, IP_CT_RELATED_REPLY } from "./conntrack.js";
import { IPS_DST_NAT, IPS_NAT_DONE_MASK, IPS_NAT_MASK, IPS_SRC_NAT } from "./conntrack-table.js";
import { NF_NAT_MANIP_SRC } from "./nat.js";
import { ICMP_REDIRECT, IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, invertPorts } from "./tuple.js";

if (NF_NAT_MANIP_SRC !== 0 || IPPROTO_TCP !== 6 || IPPROTO_UDP !== 17 || IPPROTO_ICMP !== 1) {
  throw new Error("netfilter/nat-packet.ts: literal manip type or protocol numbers out of step with nat.ts / tuple.ts");
}

/** icmp_manip_pkt rewrites the id of queries only. */
function icmpIsQuery(type: number): boolean {
  return type === 0 || type === 8 || type === 13 || type === 14 || type === 15 || type === 16 || type === 17 || type === 18;
}

/**
 * kernel nf_nat_ipv4_manip_pkt: rewrite the IPv4 datagram at `iph` (whose bytes end at `end`) to the target tuple
 * for one manip type. The target is conntrack node `node`'s tuple, inverted when `invert` (the usual case: the
 * inverse of the other direction). The tuple is read here rather than passed in so that no 32-bit value is boxed
 * on the call. Returns false when the L4 header is too short to rewrite.
 */
export function manipPkt(buf: Uint8Array, iph: number, end: number, ct: Conntrack, node: number, invert: boolean, maniptype: number): boolean {
  const isSrc = maniptype === 0 /* NF_NAT_MANIP_SRC */;
  // The target tuple's address on this manip's side (inverted: the other side of the node's tuple).
  const keys = ct.keys; // node's tuple: src, dst, ports, proto at node * 4
  const k = node * 4;
  const newIp = isSrc === invert ? keys[k + 1]! : keys[k]!;
  const ihl = (buf[iph]! & 15) * 4;
  const proto = buf[iph + 9]!;
  const hdroff = iph + ihl;
  const avail = end - hdroff;
  const ipOff = isSrc ? iph + 12 : iph + 16;
  // Byte reads and writes written out (per packet; the helpers are not always inlined this deep).
  const oldIp = ((buf[ipOff]! << 24) | (buf[ipOff + 1]! << 16) | (buf[ipOff + 2]! << 8) | buf[ipOff + 3]!) >>> 0;
  if (proto === 6 /* IPPROTO_TCP */ || proto === 17 /* IPPROTO_UDP */) {
    if (avail < 8) return false;
    const portOff = isSrc ? hdroff : hdroff + 2;
    const oldPort = (buf[portOff]! << 8) | buf[portOff + 1]!;
    // invertPorts for TCP/UDP swaps the two ports: the source port of the inverted tuple is the node's destination port.
    const ports = keys[k + 2]!;
    const newPort = isSrc === invert ? ports & 0xffff : ports >>> 16;
    if (proto === 6 /* IPPROTO_TCP */) {
      // An inner header quoted by an ICMP error may stop after 8 bytes: then only the port changes.
      if (avail >= 20) {
        const c = hdroff + 16;
        const check = csumReplace16(csumReplace32((buf[c]! << 8) | buf[c + 1]!, oldIp, newIp), oldPort, newPort);
        buf[c] = check >>> 8;
        buf[c + 1] = check & 255;
      }
    } else {
      let check = get16(buf, hdroff + 6);
      if (check !== 0) {
        check = csumReplace32(check, oldIp, newIp);
        check = csumReplace16(check, oldPort, newPort);
        set16(buf, hdroff + 6, check === 0 ? 0xffff : check);
      }
    }
    buf[portOff] = newPort >>> 8;
    buf[portOff + 1] = newPort & 255;
  } else if (proto === 1 /* IPPROTO_ICMP */) {
    if (avail < 8) return false;
    if (icmpIsQuery(buf[hdroff]!)) {
      const tports = invert ? invertPorts(ct.tProto[node]!, ct.tPorts[node]!) : ct.tPorts[node]!;
      const oldId = get16(buf, hdroff + 4);
      const newId = tports >>> 16;
      set16(buf, hdroff + 2, csumReplace16(get16(buf, hdroff + 2), oldId, newId));
      set16(buf, hdroff + 4, newId);
    }
  }
  // L3: the address and the header checksum.
  const ipCheck = csumReplace32((buf[iph + 10]! << 8) | buf[iph + 11]!, oldIp, newIp);
  buf[iph + 10] = ipCheck >>> 8;
  buf[iph + 11] = ipCheck & 255;
  buf[ipOff] = newIp >>> 24;
  buf[ipOff + 1] = (newIp >>> 16) & 255;
  buf[ipOff + 2] = (newIp >>> 8) & 255;
  buf[ipOff + 3] = newIp & 255;
  return true;
}

/**
 * kernel nf_nat_packet at a nat hook (`maniptype` SRC at POSTROUTING/INPUT, DST at PREROUTING/OUTPUT) for a packet
 * with conntrack `ref`. RELATED ICMP errors go through nf_nat_icmp_reply_translation. Returns false when the kernel
 * would drop the packet (a header it cannot rewrite).
 */
export function natPacket(ct: Conntrack, ref: number, maniptype: number, buf: Uint8Array, l3off: number): boolean {
  if (ref < 0) return true;
  const i = ref >>> 3;
  const ctinfo = ref & 7;
  const dir = ctDir(ref);
  if ((ctinfo === IP_CT_RELATED || ctinfo === IP_CT_RELATED_REPLY) && buf[l3off + 9] === IPPROTO_ICMP) {
    return icmpReplyTranslation(ct, i, dir, maniptype, buf, l3off);
  }
  let statusbit = maniptype === NF_NAT_MANIP_SRC ? IPS_SRC_NAT : IPS_DST_NAT;
  if (dir === 1) statusbit ^= IPS_NAT_MASK;
  if (!(ct.status[i]! & statusbit)) return true;
  const other = i * 2 + (dir ^ 1);
  const end = l3off + get16(buf, l3off + 2);
  return manipPkt(buf, l3off, end, ct, other, true, maniptype);
}

/**
 * kernel nf_nat_icmp_reply_translation: rewrite the quoted datagram with the other direction's tuple and the opposite
 * manip, recompute the ICMP checksum, then rewrite the outer header like a reply of the connection.
 */
function icmpReplyTranslation(ct: Conntrack, i: number, dir: number, maniptype: number, buf: Uint8Array, l3off: number): boolean {
  const hdrlen = (buf[l3off]! & 15) * 4;
  const icmp = l3off + hdrlen;
  const end = l3off + get16(buf, l3off + 2);
  if (end - icmp < 8 + 20) return false;
  const st = ct.status[i]!;
  if (buf[icmp] === ICMP_REDIRECT) {
    // Redirects are only translated for connections that were never NATed.
    if ((st & IPS_NAT_DONE_MASK) !== IPS_NAT_DONE_MASK) return false;
    if (st & IPS_NAT_MASK) return false;
  }
  let statusbit = maniptype === NF_NAT_MANIP_SRC ? IPS_SRC_NAT : IPS_DST_NAT;
  if (dir === 1) statusbit ^= IPS_NAT_MASK;
  if (!(st & statusbit)) return true;
  const other = i * 2 + (dir ^ 1);
  // Inner: the other direction's tuple itself (not inverted), opposite manip.
  if (!manipPkt(buf, icmp + 8, end, ct, other, false, maniptype ^ 1)) return false;
  set16(buf, icmp + 2, 0);
  set16(buf, icmp + 2, csumFinish(csumPartial(buf, icmp, end - icmp)));
  // Outer: as a reply to the other direction, L3 only (an ICMP error has no id to rewrite).
  const isSrc = maniptype === NF_NAT_MANIP_SRC;
  const off = isSrc ? l3off + 12 : l3off + 16;
  const newIp = isSrc ? ct.tDst[other]! : ct.tSrc[other]!;
  set16(buf, l3off + 10, csumReplace32(get16(buf, l3off + 10), get32(buf, off), newIp));
  set32(buf, off, newIp);
  return true;
}
