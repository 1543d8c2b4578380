// Hostile packets for the fuzz suite: a seeded generator of valid-looking frames (UDP, TCP, ICMP to pods,
// Services, nodes, the internet) broken in the ways attackers and broken NICs break them, and an injector that
// hands each one to a generation's full path as a frame received on a node device (a pod's host-side veth, or the
// node's uplink for traffic from outside), then classifies what the model did with it from the trace.
import { buildIcmpEcho, buildIcmpError, buildTcp, buildUdp, formatIpv4, get16, ipv4HeaderChecksum, set16, set32 } from "../../src/packet/index.js";
import { Ev, type NetDevice, type World } from "../../src/net/index.js";
import { setMac } from "../../src/net/emit.js";

/** mulberry32: small, seeded, reproducible. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const MUTATIONS = [
  "valid", "truncated", "bad-ihl", "fragment", "ttl-1", "ttl-0", "martian-src", "martian-dst", "spoofed-src",
  "ip-csum-garbage", "l4-csum-garbage", "total-length-long", "total-length-short", "not-ipv4", "random-bytes",
  "icmp-error-garbage", "tcp-bad-doff", "options-garbage",
] as const;
export type Mutation = (typeof MUTATIONS)[number];

const MARTIANS = [0x7f000001, 0, 0xe0000001, 0xffffffff, 0xa9fe0001, 0xf0000001];

export interface Target {
  /** Addresses worth sending to: pods, Service ClusterIPs, nodes, the internet. */
  dsts: number[];
  /** Legitimate sources (the pod behind the veth). */
  src: number;
}

/** One hostile IPv4 packet (no Ethernet header) and the mutation applied. */
export function hostilePacket(r: () => number, t: Target): { ip: Uint8Array; mutation: Mutation } {
  const pick = <T>(a: readonly T[]): T => a[Math.floor(r() * a.length)]!;
  const mutation = pick(MUTATIONS);
  const src = formatIpv4(t.src);
  const dst = formatIpv4(pick(t.dsts));
  const sport = 1024 + Math.floor(r() * 60000);
  const dport = pick([53, 80, 443, 8080, 9090, 10250, 4789, Math.floor(r() * 65536)]);
  const kind = Math.floor(r() * 3);
  let f: Uint8Array;
  const payload = new Uint8Array(Math.floor(r() * 64));
  for (let i = 0; i < payload.length; i++) payload[i] = Math.floor(r() * 256);
  if (mutation === "icmp-error-garbage") {
    const inner = buildUdp({ src: dst, dst: src, sport: dport, dport: sport, payload });
    f = buildIcmpError(3, Math.floor(r() * 16), inner);
    f = f.slice();
    const ih = 14 + 20 + 8;
    for (let k = 0; k < 6; k++) f[ih + Math.floor(r() * Math.max(1, f.length - ih))] = Math.floor(r() * 256);
  } else if (kind === 0) f = buildUdp({ src, dst, sport, dport, payload });
  else if (kind === 1) f = buildTcp({ src, dst, sport, dport, flags: Math.floor(r() * 64), seq: Math.floor(r() * 2 ** 32), ack: Math.floor(r() * 2 ** 32), payload });
  else f = buildIcmpEcho({ src, dst, id: sport, seq: 1, payload });
  let ip = f.subarray(14).slice();
  switch (mutation) {
    case "truncated":
      ip = ip.slice(0, Math.floor(r() * ip.length));
      break;
    case "bad-ihl":
      ip[0] = 0x40 | pick([0, 1, 2, 3, 4, 6, 15]);
      break;
    case "fragment":
      set16(ip, 6, (r() < 0.5 ? 0x2000 : 0) | Math.floor(r() * 0x2000));
      break;
    case "ttl-1":
      ip[8] = 1;
      break;
    case "ttl-0":
      ip[8] = 0;
      break;
    case "martian-src":
      set32(ip, 12, pick(MARTIANS));
      break;
    case "martian-dst":
      set32(ip, 16, pick(MARTIANS));
      break;
    case "spoofed-src":
      set32(ip, 12, Math.floor(r() * 2 ** 32));
      break;
    case "ip-csum-garbage":
      set16(ip, 10, Math.floor(r() * 65536));
      break;
    case "l4-csum-garbage":
      if (ip.length > 28) set16(ip, ip[9] === 6 ? 36 : ip[9] === 17 ? 26 : 22, Math.floor(r() * 65536));
      break;
    case "total-length-long":
      set16(ip, 2, get16(ip, 2) + 1 + Math.floor(r() * 4000));
      break;
    case "total-length-short":
      set16(ip, 2, Math.floor(r() * get16(ip, 2)));
      break;
    case "not-ipv4":
      ip[0] = (pick([0, 5, 6, 15]) << 4) | (ip[0]! & 15);
      break;
    case "random-bytes":
      ip = new Uint8Array(Math.floor(r() * 120));
      for (let i = 0; i < ip.length; i++) ip[i] = Math.floor(r() * 256);
      if (ip.length > 0 && r() < 0.7) ip[0] = 0x40 | (ip[0]! & 15);
      break;
    case "tcp-bad-doff":
      if (ip[9] === 6 && ip.length > 33) ip[32] = pick([0, 1, 4, 15]) << 4;
      break;
    case "options-garbage": {
      const opt = 4 * (1 + Math.floor(r() * 10));
      const out = new Uint8Array(ip.length + opt);
      out.set(ip.subarray(0, 20));
      for (let i = 20; i < 20 + opt; i++) out[i] = Math.floor(r() * 256);
      out.set(ip.subarray(20), 20 + opt);
      out[0] = 0x40 | ((20 + opt) >> 2);
      set16(out, 2, out.length);
      ip = out;
      break;
    }
    default:
      break;
  }
  // Header fields changed on purpose keep a correct header checksum (so the packet reaches the code that should
  // judge the field), except where the checksum itself is the garbage.
  const ihl = ip.length > 0 ? (ip[0]! & 15) * 4 : 0;
  if (mutation !== "ip-csum-garbage" && ihl >= 20 && ihl <= ip.length) {
    set16(ip, 10, 0);
    set16(ip, 10, ipv4HeaderChecksum(ip, 0, ihl));
  }
  return { ip, mutation };
}

export type Outcome = "delivered" | "dropped" | "icmp" | "forwarded-out" | "unaccounted";

export interface FuzzTally {
  packets: number;
  crashes: number;
  outcomes: Record<Outcome, number>;
  dropReasons: Record<number, number>;
  /** Every DROP record by reason, the packet's descendants (ICMP errors, clones) included. */
  dropEvents: Record<number, number>;
  /** tc hook runs seen in the trace (TC_INGRESS + TC_EGRESS records). */
  tcRuns: number;
  firstCrash?: string;
  /** mutation -> outcome -> count */
  byMutation: Record<string, Record<string, number>>;
}

export function newTally(): FuzzTally {
  return { packets: 0, crashes: 0, outcomes: { delivered: 0, dropped: 0, icmp: 0, "forwarded-out": 0, unaccounted: 0 }, dropReasons: {}, dropEvents: {}, tcRuns: 0, byMutation: {} };
}

/**
 * Inject one frame as received by `dev` (from its peer or the wire) and run the world. Outcome from the trace:
 * a socket got it (delivered), an ICMP error was sent, it was dropped with a reason, or it left through the
 * edge device `edge` (the internet namespace's interface: the model's end of the world).
 */
export function inject(world: World, dev: NetDevice, srcMac: number, ip: Uint8Array, tally: FuzzTally, mutation = "valid", dstMac = dev.mac): void {
  tally.packets++;
  world.trace.clear();
  const pkt = world.alloc();
  const b = pkt.buf;
  const o = pkt.off;
  setMac(b, o, dstMac);
  setMac(b, o + 6, srcMac);
  set16(b, o + 12, 0x0800);
  b.set(ip, o + 14);
  pkt.len = 14 + ip.length;
  try {
    world.enqueueRx(dev, pkt);
    world.run();
  } catch (e) {
    tally.crashes++;
    tally.firstCrash ??= `${(e as Error).stack ?? e}`;
    return;
  }
  let delivered = false, dropped = false, icmp = false, reason = 0;
  const tr = world.trace;
  for (let i = 0; i < tr.count; i++) {
    const rec = tr.get(i);
    if (rec.ev === Ev.SOCKET_RX || rec.ev === Ev.LOCAL_DELIVER) delivered = true;
    else if (rec.ev === Ev.ICMP_SENT || rec.ev === Ev.TCP_RST) icmp = true;
    else if (rec.ev === Ev.TC_INGRESS || rec.ev === Ev.TC_EGRESS) tally.tcRuns++;
    else if (rec.ev === Ev.DROP) {
      tally.dropEvents[rec.a] = (tally.dropEvents[rec.a] ?? 0) + 1;
      dropped = true;
      if (reason === 0) reason = rec.a;
    }
  }
  const out: Outcome = delivered ? "delivered" : icmp ? "icmp" : dropped ? "dropped" : "unaccounted";
  tally.outcomes[out]++;
  const m = (tally.byMutation[mutation] ??= {});
  const key = out === "dropped" ? `dropped:${reason}` : out;
  m[key] = (m[key] ?? 0) + 1;
  if (dropped && !delivered && !icmp) tally.dropReasons[reason] = (tally.dropReasons[reason] ?? 0) + 1;
}
