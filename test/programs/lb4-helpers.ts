// Shared by the program tests: a kernel with programs loaded, packet checks (full checksum recompute, header
// fields), tshark validation of a capture of every output, and raw (network-order) words as programs see them.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { formatIpv4, get16, get32, ipv4HeaderChecksum, l4Checksum } from "../../src/packet/index.js";
import { writePcap, type PacketToWrite } from "../../src/packet/pcap.js";

export const IP = 14;

export interface Hdr {
  saddr: string;
  daddr: string;
  sport: number;
  dport: number;
  proto: number;
}

export function hdr(p: Uint8Array): Hdr {
  const l4 = IP + ((p[IP]! & 15) << 2);
  return { saddr: formatIpv4(get32(p, IP + 12)), daddr: formatIpv4(get32(p, IP + 16)), sport: get16(p, l4), dport: get16(p, l4 + 2), proto: p[IP + 9]! };
}

/** IP header and TCP/UDP/ICMP checksums recomputed from scratch equal the ones in the packet. */
export function checksumsValid(p: Uint8Array): boolean {
  const ihl = (p[IP]! & 15) << 2;
  if (ipv4HeaderChecksum(p, IP, ihl) !== get16(p, IP + 10)) return false;
  const proto = p[IP + 9]!;
  const l4 = IP + ihl;
  const l4len = get16(p, IP + 2) - ihl;
  if (proto === 6) return l4Checksum(p, l4, l4len, 16, get32(p, IP + 12), get32(p, IP + 16), 6) === get16(p, l4 + 16);
  if (proto === 17) return get16(p, l4 + 6) === 0 || l4Checksum(p, l4, l4len, 6, get32(p, IP + 12), get32(p, IP + 16), 17) === get16(p, l4 + 6);
  return true;
}

/** bswap32 of a dotted address: the raw word a program loads (C's ip4->saddr on little-endian). */
export function raw32(addr: number): number {
  return (((addr & 0xff) << 24) | ((addr & 0xff00) << 8) | ((addr >>> 8) & 0xff00) | (addr >>> 24)) >>> 0;
}
export function raw16(port: number): number {
  return ((port & 0xff) << 8) | (port >>> 8);
}

/** Packets collected for a tshark check at the end of a test file. */
export class Capture {
  readonly packets: PacketToWrite[] = [];
  add(p: Uint8Array): void {
    this.packets.push({ tsNs: BigInt(this.packets.length) * 1000n, data: p.slice() });
  }
}

export function haveTshark(): boolean {
  try {
    execFileSync("tshark", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/**
 * tshark's verdicts with checksum validation on: one line per packet with the IP, TCP and UDP checksum status
 * fields (Wireshark's status: 0 bad, 1 good, 2 unverified, 3 not present).
 */
export function tsharkChecksums(cap: Capture): string[] {
  const dir = mkdtempSync(join(tmpdir(), "tcbox-lb4-"));
  try {
    // Classic pcap (src/packet/pcap.ts): the pcapng writer is being moved between files as this is written.
    const file = join(dir, "out.pcap");
    writeFileSync(file, writePcap(cap.packets));
    const out = execFileSync("tshark", [
      "-n", "-r", file, "-o", "ip.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE",
      "-T", "fields", "-e", "ip.checksum.status", "-e", "tcp.checksum.status", "-e", "udp.checksum.status", "-e", "_ws.expert.message",
    ], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
    return out.trim().split("\n");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
