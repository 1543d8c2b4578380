// ARP receive (net/ipv4/arp.c arp_process) with arp_ignore 0 and arp_accept 0: a request for any local address
// is answered with the receiving device's MAC and the sender is learned; with proxy_arp on the device and
// forwarding on, a request for an address routed out of another device is answered too (Calico's 169.254.1.1).
// Replies update an existing entry and release the packets waiting on it. proxy_delay (up to 0.8 s for a
// broadcast request) is not modelled: proxy replies are immediate.
import { get16, get32 } from "../packet/checksum.js";
import { ARPOP_REPLY, ARPOP_REQUEST, NUD_REACHABLE, NUD_STALE, RTN_LOCAL, RTN_UNICAST } from "./constants.js";
import type { NetDevice } from "./device.js";
import { getMac, writeArpFrame } from "./emit.js";
import type { NetNamespace } from "./netns.js";
import { neighFlush } from "./output.js";
import type { Pkt } from "./pkt.js";
import { Drop, Ev } from "./trace.js";

export function arpRcv(ns: NetNamespace, dev: NetDevice, pkt: Pkt): void {
  const w = ns.world;
  const buf = pkt.buf;
  const a = pkt.off + 14;
  if (pkt.len < 14 + 28 || get16(buf, a) !== 1 || get16(buf, a + 2) !== 0x0800 || buf[a + 4] !== 6 || buf[a + 5] !== 4) {
    w.drop(pkt, dev, Drop.NOT_IPV4);
    return;
  }
  const op = get16(buf, a + 6);
  const sha = getMac(buf, a + 8);
  const sip = get32(buf, a + 14);
  const tip = get32(buf, a + 24);
  w.trace.record(pkt.id, Ev.LOCAL_DELIVER, ns.id, dev.ifindex, 0, tip);
  if (op === ARPOP_REQUEST && sip !== 0) {
    const r = ns.routeLookup(tip, sip, dev, 0);
    if (r !== null && r.type === RTN_LOCAL) {
      ns.neigh.set(dev, sip, sha, NUD_STALE, w.now);
      sendReply(ns, dev, pkt, sha, sip, tip, 0);
      w.free(pkt);
      return;
    }
    // arp_fwd_proxy: forwarding on, proxy_arp on the device, and the target is routed out of another device.
    if (ns.sysctl.ipForward && dev.proxyArp && r !== null && r.type === RTN_UNICAST && r.dev !== dev) {
      const n = ns.neigh.get(dev, sip);
      if (n === undefined) ns.neigh.set(dev, sip, sha, NUD_STALE, w.now);
      sendReply(ns, dev, pkt, sha, sip, tip, 1);
      w.free(pkt);
      return;
    }
  }
  // Any ARP packet updates an existing entry for its sender (arp_accept 0: no new entries from replies).
  const n = ns.neigh.get(dev, sip);
  if (n !== undefined) {
    const hadQueue = n.queue.length > 0;
    ns.neigh.set(dev, sip, sha, op === ARPOP_REPLY ? NUD_REACHABLE : NUD_STALE, w.now);
    n.probes = 0;
    if (hadQueue) neighFlush(ns, n);
  }
  w.free(pkt);
}

function sendReply(ns: NetNamespace, dev: NetDevice, req: Pkt, toMac: number, toIp: number, forIp: number, proxy: number): void {
  const w = ns.world;
  const rep = w.alloc(req.id);
  rep.tag = req.tag;
  rep.len = writeArpFrame(rep.buf, rep.off, ARPOP_REPLY, dev.mac, toMac, dev.mac, forIp, toMac, toIp);
  w.trace.record(req.id, Ev.ARP_REPLY, ns.id, dev.ifindex, proxy, forIp);
  w.devXmit(dev, rep);
}
