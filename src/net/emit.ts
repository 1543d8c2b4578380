// Header writers for the packets the kernel itself originates (ARP, ICMP replies and errors, TCP resets,
// VXLAN outer headers) and for sockets sending. Numbers in, bytes out, checksums computed; no allocation.
import { csumFinish, csumPartial, get16, get32, ipv4HeaderChecksum, l4Checksum, set16, set32 } from "../packet/checksum.js";
import { AddrError } from "../packet/addr.js";
import { ARPOP_REQUEST, ETH_P_ARP, ETH_P_IP } from "./constants.js";

export const IP_DF = 0x4000;
export const IPV4_HLEN = 20;
export const UDP_HLEN = 8;
export const TCP_HLEN = 20;
export const ICMP_HLEN = 8;
export const ARP_LEN = 28;
/** IPTOS_PREC_INTERNETCONTROL: the precedence ICMP errors carry (icmp_send). */
export const IPTOS_PREC_INTERNETCONTROL = 0xc0;

export function getMac(buf: Uint8Array, off: number): number {
  return get16(buf, off) * 0x100000000 + get32(buf, off + 2);
}

export function setMac(buf: Uint8Array, off: number, mac: number): void {
  set16(buf, off, Math.floor(mac / 0x100000000));
  set32(buf, off + 2, mac >>> 0);
}

export function macToString(mac: number): string {
  let s = "";
  for (let i = 5; i >= 0; i--) {
    s += (Math.floor(mac / 2 ** (8 * i)) & 255).toString(16).padStart(2, "0");
    if (i) s += ":";
  }
  return s;
}

export function parseMacNum(text: string): number {
  const parts = text.split(":");
  if (parts.length !== 6 || parts.some((p) => !/^[0-9a-fA-F]{1,2}$/.test(p))) throw new AddrError(`invalid MAC address "${text}"`);
  return parts.reduce((acc, p) => acc * 256 + parseInt(p, 16), 0);
}

export function writeEth(buf: Uint8Array, off: number, dst: number, src: number, type: number): void {
  setMac(buf, off, dst);
  setMac(buf, off + 6, src);
  set16(buf, off + 12, type);
}

/** A 20-byte IPv4 header with its checksum. `totLen` covers header and payload. */
export function writeIpv4(
  buf: Uint8Array,
  off: number,
  tos: number,
  totLen: number,
  id: number,
  df: boolean,
  ttl: number,
  proto: number,
  src: number,
  dst: number,
): void {
  buf[off] = 0x45;
  buf[off + 1] = tos;
  set16(buf, off + 2, totLen);
  set16(buf, off + 4, id & 0xffff);
  set16(buf, off + 6, df ? IP_DF : 0);
  buf[off + 8] = ttl;
  buf[off + 9] = proto;
  set16(buf, off + 10, 0);
  set32(buf, off + 12, src);
  set32(buf, off + 16, dst);
  set16(buf, off + 10, ipv4HeaderChecksum(buf, off, IPV4_HLEN));
}

/** UDP header over `payloadLen` bytes already in place; `csum` false leaves 0 (allowed for IPv4, as VXLAN sends). */
export function writeUdp(buf: Uint8Array, off: number, sport: number, dport: number, payloadLen: number, src: number, dst: number, csum: boolean): void {
  set16(buf, off, sport);
  set16(buf, off + 2, dport);
  set16(buf, off + 4, UDP_HLEN + payloadLen);
  set16(buf, off + 6, 0);
  if (csum) {
    const c = l4Checksum(buf, off, UDP_HLEN + payloadLen, 6, src, dst, 17);
    set16(buf, off + 6, c === 0 ? 0xffff : c);
  }
}

/** A 20-byte TCP header (no options) over `payloadLen` bytes already in place. */
export function writeTcp(
  buf: Uint8Array,
  off: number,
  sport: number,
  dport: number,
  seq: number,
  ack: number,
  flags: number,
  window: number,
  payloadLen: number,
  src: number,
  dst: number,
): void {
  set16(buf, off, sport);
  set16(buf, off + 2, dport);
  set32(buf, off + 4, seq >>> 0);
  set32(buf, off + 8, ack >>> 0);
  buf[off + 12] = 5 << 4;
  buf[off + 13] = flags;
  set16(buf, off + 14, window);
  set16(buf, off + 16, 0);
  set16(buf, off + 18, 0);
  set16(buf, off + 16, l4Checksum(buf, off, TCP_HLEN + payloadLen, 16, src, dst, 6));
}

/** ICMP header (type, code, 4 bytes of rest) and checksum over header + `payloadLen` bytes already in place. */
export function writeIcmp(buf: Uint8Array, off: number, type: number, code: number, rest: number, payloadLen: number): void {
  buf[off] = type;
  buf[off + 1] = code;
  set16(buf, off + 2, 0);
  set32(buf, off + 4, rest >>> 0);
  set16(buf, off + 2, csumFinish(csumPartial(buf, off, ICMP_HLEN + payloadLen)));
}

/** An ARP packet for IPv4 over Ethernet (RFC 826) at `off` (after the Ethernet header). */
export function writeArp(buf: Uint8Array, off: number, op: number, sha: number, spa: number, tha: number, tpa: number): void {
  set16(buf, off, 1);
  set16(buf, off + 2, ETH_P_IP);
  buf[off + 4] = 6;
  buf[off + 5] = 4;
  set16(buf, off + 6, op);
  setMac(buf, off + 8, sha);
  set32(buf, off + 14, spa);
  setMac(buf, off + 18, tha);
  set32(buf, off + 24, tpa);
}

/** A whole ARP frame: broadcast request or unicast reply. Returns the frame length: 42 bytes, unpadded, as the kernel hands it to a veth. */
export function writeArpFrame(buf: Uint8Array, off: number, op: number, srcMac: number, dstMac: number, sha: number, spa: number, tha: number, tpa: number): number {
  writeEth(buf, off, dstMac, srcMac, ETH_P_ARP);
  writeArp(buf, off + 14, op, sha, spa, op === ARPOP_REQUEST ? 0 : tha, tpa);
  return 14 + ARP_LEN;
}
