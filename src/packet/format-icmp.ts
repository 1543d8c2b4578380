// ICMP as `tcpdump -n` prints it (print-icmp.c, non-verbose): echo id/seq; for errors, what the quoted header
// says (the unreachable destination, protocol and port). Split from format.ts by noun.

import { formatIpv4 } from "./addr.js";
import { get16, get32 } from "./checksum.js";
import {
  ICMP_DEST_UNREACH,
  ICMP_ECHO,
  ICMP_ECHOREPLY,
  ICMP_PARAMETERPROB,
  ICMP_REDIRECT,
  ICMP_TIME_EXCEEDED,
  IPPROTO_TCP,
  IPPROTO_UDP,
} from "./constants.js";
import type { FrameBytes } from "./format.js";

/** icmp2str for the types printed by name only. */
const ICMP_NAMES: Record<number, string> = {
  4: "source quench",
  9: "router advertisement",
  10: "router solicitation",
  13: "time stamp request",
  14: "time stamp reply",
  15: "information request",
  16: "information reply",
  17: "address mask request",
  18: "address mask reply",
};

/** unreach2str: "%s" is the quoted destination. Codes 2 (protocol), 3 (port) and 4 (need frag) are built below. */
const UNREACH: Record<number, string> = {
  0: "net %s unreachable",
  1: "host %s unreachable",
  5: "%s unreachable - source route failed",
  6: "net %s unreachable - unknown",
  7: "host %s unreachable - unknown",
  8: "%s unreachable - source host isolated",
  9: "net %s unreachable - admin prohibited",
  10: "host %s unreachable - admin prohibited",
  11: "net %s unreachable - tos prohibited",
  12: "host %s unreachable - tos prohibited",
  13: "host %s unreachable - admin prohibited filter",
  14: "host %s unreachable - host precedence violation",
  15: "host %s unreachable - precedence cutoff",
};

const REDIRECT = ["redirect %s to net %s", "redirect %s to host %s", "redirect-tos %s to net %s", "redirect-tos %s to host %s"];

/** The ICMP message at `off` (`len` bytes: the IP payload), after "SRC > DST: ". Never throws. */
export function formatIcmp(f: FrameBytes, off: number, len: number): string {
  if (f.cap - off < 8 || len < 8) return " [|icmp]";
  const type = f.buf[off]!;
  const code = f.buf[off + 1]!;
  const tail = `, length ${len}`;
  if (type === ICMP_ECHO || type === ICMP_ECHOREPLY) {
    const what = type === ICMP_ECHO ? "request" : "reply";
    return `ICMP echo ${what}, id ${get16(f.buf, off + 4)}, seq ${get16(f.buf, off + 6)}${tail}`;
  }
  if (type === ICMP_TIME_EXCEEDED) {
    const what = code === 0 ? "time exceeded in-transit" : code === 1 ? "ip reassembly time exceeded" : `time exceeded-#${code}`;
    return `ICMP ${what}${tail}`;
  }
  if (type === ICMP_PARAMETERPROB) return `ICMP parameter problem - octet ${f.buf[off + 4]}${tail}`;
  if (type === ICMP_DEST_UNREACH || type === ICMP_REDIRECT) {
    // The quoted datagram's header (RFC 792: IP header + 8 bytes) names what was unreachable.
    const q = off + 8;
    if (f.cap - q < 20 || len < 28) return " [|icmp]";
    // Port unreachable also needs the quoted ports captured.
    if (type === ICMP_DEST_UNREACH && code === 3 && f.cap - (q + (f.buf[q]! & 15) * 4) < 4) return " [|icmp]";
    const qdst = formatIpv4(get32(f.buf, q + 16));
    if (type === ICMP_REDIRECT) {
      const tmpl = REDIRECT[code] ?? `redirect-#${code} %s to %s`;
      return `ICMP ${fill(tmpl, qdst, formatIpv4(get32(f.buf, off + 4)))}${tail}`;
    }
    return `ICMP ${unreachText(f, off, q, code, qdst)}${tail}`;
  }
  return `ICMP ${ICMP_NAMES[type] ?? `type-#${type}`}${tail}`;
}

function unreachText(f: FrameBytes, off: number, q: number, code: number, qdst: string): string {
  const qproto = f.buf[q + 9]!;
  if (code === 2) return `${qdst} protocol ${qproto} unreachable`;
  if (code === 3) {
    const qhl = (f.buf[q]! & 15) * 4;
    const qdport = get16(f.buf, q + qhl + 2);
    if (qproto === IPPROTO_TCP) return `${qdst} tcp port ${qdport} unreachable`;
    if (qproto === IPPROTO_UDP) return `${qdst} udp port ${qdport} unreachable`;
    return `${qdst} protocol ${qproto} port ${qdport} unreachable`;
  }
  if (code === 4) {
    // RFC 1191: the next-hop MTU is in bytes 6..8.
    const mtu = get16(f.buf, off + 6);
    return mtu ? `${qdst} unreachable - need to frag (mtu ${mtu})` : `${qdst} unreachable - need to frag`;
  }
  return fill(UNREACH[code] ?? `%s unreachable - #${code}`, qdst);
}

function fill(tmpl: string, ...args: string[]): string {
  let i = 0;
  return tmpl.replace(/%s/g, () => args[i++] ?? "");
}
