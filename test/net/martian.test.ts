// Martians through the model's full receive path: each case of the kernel-checked matrix (martian-cases.ts; the
// kernel's answers are asserted in test/kernel/martian-route.test.ts) sent as a real frame into the router's
// input device must end as routeInput() decided: dropped with the martian reason the kernel counts
// (martian source / martian destination / rp_filter / multicast not joined), delivered locally, or forwarded.
// Echo requests to broadcast and multicast addresses are not answered (icmp_echo_ignore_broadcasts=1).
import { describe, expect, it } from "vitest";
import { Drop, Ev, World, type NetNamespace } from "../../src/net/index.js";
import { RouteIn, routeInput } from "../../src/net/ipv4.js";
import { buildIcmpEcho, buildTcp, buildUdp, parseIpv4 } from "../../src/packet/index.js";
import { MARTIAN_CASES, RP_FILTER_MODES, buildModelRouter } from "./martian-cases.js";

const P = "tcbxm";

/** Inject an Ethernet frame as received by `dev` of R and return its trace events (ev, a) in order. */
function receive(w: World, ns: NetNamespace, iif: string, frame: Uint8Array): Array<[number, number]> {
  const dev = ns.dev(iif);
  w.trace.clear();
  const pkt = w.alloc();
  pkt.buf.set(frame, pkt.off);
  for (let i = 0; i < 6; i++) pkt.buf[pkt.off + i] = Number((BigInt(dev.mac) >> BigInt(8 * (5 - i))) & 0xffn);
  pkt.len = frame.length;
  w.enqueueRx(dev, pkt);
  w.run();
  const out: Array<[number, number]> = [];
  for (let i = 0; i < w.trace.count; i++) {
    const r = w.trace.get(i);
    out.push([r.ev, r.a]);
  }
  return out;
}

const WANT_DROP: Record<number, number> = {
  [RouteIn.MARTIAN_SRC]: Drop.MARTIAN,
  [RouteIn.MARTIAN_DST]: Drop.MARTIAN_DST,
  [RouteIn.RP_FILTER]: Drop.RP_FILTER,
  [RouteIn.MC_NOT_JOINED]: Drop.MC_NOT_JOINED,
  [RouteIn.MC_BAD_SOURCE]: Drop.MC_BAD_SOURCE,
};

describe.each(RP_FILTER_MODES)("martian frames through the router's receive path, rp_filter=%i", (rp) => {
  it("each ends as the input route decision says, with the kernel's martian counting", () => {
    const w = new World();
    const ns = buildModelRouter(w, P, rp);
    const tally: Record<string, number> = {};
    for (const [src, dst, iif] of MARTIAN_CASES) {
      const v = routeInput(ns, ns.dev(iif), parseIpv4(src), parseIpv4(dst), 0);
      const ev = receive(w, ns, iif, buildUdp({ src, dst, sport: 4000, dport: 5000, payload: new Uint8Array(8) }));
      const firstDrop = ev.find(([e]) => e === Ev.DROP)?.[1];
      const where = `${src} -> ${dst} iif ${iif}`;
      if (v in WANT_DROP) {
        expect(firstDrop, where).toBe(WANT_DROP[v]);
        expect(ev.some(([e]) => e === Ev.LOCAL_DELIVER || e === Ev.FORWARD), where).toBe(false);
      } else if (v === RouteIn.FORWARD) expect(ev.some(([e]) => e === Ev.FORWARD), where).toBe(true);
      else expect(ev.some(([e]) => e === Ev.LOCAL_DELIVER), where).toBe(true);
      tally[v] = (tally[v] ?? 0) + 1;
    }
    // The matrix exercises both kinds of martian, local and broadcast delivery and forwarding in every mode.
    for (const v of [RouteIn.MARTIAN_SRC, RouteIn.MARTIAN_DST, RouteIn.LOCAL, RouteIn.BROADCAST, RouteIn.MULTICAST, RouteIn.FORWARD, RouteIn.MC_NOT_JOINED]) {
      expect(tally[v], `outcome ${v}`).toBeGreaterThan(0);
    }
    if (rp === 1) expect(tally[RouteIn.RP_FILTER]).toBeGreaterThan(0);
  });
});

describe("no answers to broadcast and multicast", () => {
  const w = new World();
  const ns = buildModelRouter(w, P, 0);
  const answered = (frame: Uint8Array) => receive(w, ns, "r0", frame).some(([e]) => e === Ev.ICMP_SENT || e === Ev.TCP_RST);
  it.each(["255.255.255.255", "10.77.0.255", "224.0.0.1"])("to %s: no echo reply, no port unreachable, no RST", (dst) => {
    expect(answered(buildIcmpEcho({ src: "10.77.0.2", dst, id: 1, seq: 1 }))).toBe(false);
    expect(answered(buildUdp({ src: "10.77.0.2", dst, sport: 1, dport: 9 }))).toBe(false);
    expect(answered(buildTcp({ src: "10.77.0.2", dst, sport: 1, dport: 9, flags: 2 }))).toBe(false);
  });
  it("to the router's own address all three are answered", () => {
    const dst = "10.77.0.1";
    expect(answered(buildIcmpEcho({ src: "10.77.0.2", dst, id: 1, seq: 1 }))).toBe(true);
    expect(answered(buildUdp({ src: "10.77.0.2", dst, sport: 1, dport: 9 }))).toBe(true);
    expect(answered(buildTcp({ src: "10.77.0.2", dst, sport: 1, dport: 9, flags: 2 }))).toBe(true);
  });
});
