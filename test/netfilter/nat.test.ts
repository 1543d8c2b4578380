// NAT: bindings chosen as nf_nat_core does, packets of both directions rewritten from them, every checksum checked
// by a full recompute. A tiny hook walk stands in for the rules engine: DNAT at PREROUTING, SNAT at POSTROUTING.
import { describe, expect, it } from "vitest";
import { formatIpv4 } from "../../src/packet/addr.js";
import { buildIcmpError } from "../../src/packet/build.js";
import { get16, get32, ipv4HeaderChecksum } from "../../src/packet/checksum.js";
import { Conntrack, CT_DROP, ctIndex, ctInfo, IP_CT_RELATED_REPLY, IPS_DST_NAT, IPS_SRC_NAT, isNew, XT_CONNTRACK_STATE_DNAT } from "../../src/netfilter/conntrack.js";
import { formatEntry } from "../../src/netfilter/conntrack-format.js";
import { jhash2x4, natInitialized, natNullBinding, natSetupInfo, NF_NAT_MANIP_DST, NF_NAT_MANIP_SRC, parseNatRange, type NatRange } from "../../src/netfilter/nat.js";
import { natPacket } from "../../src/netfilter/nat-packet.js";
import { jhash2 } from "../../src/packet/jhash.js";
import { checksumsOk, F, ip, L3, ping, tcp, udp } from "./conntrack-fixtures.js";

interface Rules {
  dnat?: NatRange;
  snat?: NatRange;
}

/** PREROUTING (conntrack, nat DST) → POSTROUTING (nat SRC, confirm), as nf_nat_inet_fn does for NEW packets. */
function forward(ct: Conntrack, frame: Uint8Array, rules: Rules): number {
  let ref = ct.in(frame, L3, frame.length - L3);
  if (ref < 0) return ref;
  for (const [manip, range] of [[NF_NAT_MANIP_DST, rules.dnat], [NF_NAT_MANIP_SRC, rules.snat]] as const) {
    const i = ctIndex(ref);
    if (isNew(ref) && !natInitialized(ct, i, manip)) {
      if (range) natSetupInfo(ct, i, range, manip);
      else natNullBinding(ct, i, manip);
    }
    if (!natPacket(ct, ref, manip, frame, L3)) return CT_DROP;
  }
  ref = ct.confirm(ref);
  return ref;
}

function addrs(frame: Uint8Array): string {
  const ihl = (frame[L3]! & 15) * 4;
  const proto = frame[L3 + 9]!;
  const l4 = L3 + ihl;
  const s = formatIpv4(get32(frame, L3 + 12));
  const d = formatIpv4(get32(frame, L3 + 16));
  if (proto === 1) return `${s} > ${d} id ${get16(frame, l4 + 4)}`;
  return `${s}:${get16(frame, l4)} > ${d}:${get16(frame, l4 + 2)}`;
}

const VIP = "10.96.0.10";
const POD = "10.244.2.7";
const CLIENT = "10.244.1.5";
const NODE = "192.168.1.10";

describe("DNAT (a ClusterIP to a pod) both ways", () => {
  const rules = { dnat: parseNatRange(`${POD}:8080`) };
  it("rewrites the destination going out and the source coming back, with valid checksums", () => {
    const ct = new Conntrack();
    const steps: [Uint8Array, string][] = [
      [tcp(CLIENT, 43210, VIP, 80, F.SYN, 1), `${CLIENT}:43210 > ${POD}:8080`],
      [tcp(POD, 8080, CLIENT, 43210, F.SYN | F.ACK, 9, 2), `${VIP}:80 > ${CLIENT}:43210`],
      [tcp(CLIENT, 43210, VIP, 80, F.ACK | F.PSH, 2, 10, 33), `${CLIENT}:43210 > ${POD}:8080`],
      [udp(CLIENT, 5353, VIP, 80, 11), `${CLIENT}:5353 > ${POD}:8080`],
      [udp(POD, 8080, CLIENT, 5353, 3), `${VIP}:80 > ${CLIENT}:5353`],
    ];
    let last = -1;
    for (const [f, want] of steps) {
      last = forward(ct, f, rules);
      expect(last).toBeGreaterThanOrEqual(0);
      expect(addrs(f)).toBe(want);
      expect(checksumsOk(f)).toBe(true);
    }
    const t = ct.lookup(ip(CLIENT), ip(VIP), ((43210 << 16) | 80) >>> 0, 6) >> 1;
    expect(ct.status[t]! & IPS_DST_NAT).toBeTruthy();
    expect(ct.ctStateBits(last) & XT_CONNTRACK_STATE_DNAT).toBeTruthy();
    // The 33 data bytes were never acknowledged: the UNACK timeout (300 s) applies.
    expect(formatEntry(ct, t)).toBe(
      `tcp      6 300 ESTABLISHED src=${CLIENT} dst=${VIP} sport=43210 dport=80 src=${POD} dst=${CLIENT} sport=8080 dport=43210 [ASSURED] mark=0 use=1`,
    );
  });

  it("a UDP checksum of 0 stays 0", () => {
    const ct = new Conntrack();
    const f = udp(CLIENT, 5353, VIP, 80, 5, false);
    forward(ct, f, rules);
    expect(addrs(f)).toBe(`${CLIENT}:5353 > ${POD}:8080`);
    expect(get16(f, L3 + 20 + 6)).toBe(0);
    expect(checksumsOk(f)).toBe(true);
  });
});

describe("MASQUERADE / SNAT port selection", () => {
  const masq = { snat: parseNatRange(NODE) };
  it("keeps the source port when it is free; a second client with the same port gets another one", () => {
    const ct = new Conntrack({ seed: 7 });
    const a = udp(CLIENT, 40000, "8.8.8.8", 53);
    const b = udp("10.244.1.6", 40000, "8.8.8.8", 53);
    forward(ct, a, masq);
    forward(ct, b, masq);
    expect(addrs(a)).toBe(`${NODE}:40000 > 8.8.8.8:53`);
    const bport = get16(b, L3 + 20);
    expect(bport).not.toBe(40000);
    expect(bport).toBeGreaterThanOrEqual(1024);
    expect(checksumsOk(a) && checksumsOk(b)).toBe(true);
    // Replies go back to the right client.
    const ra = udp("8.8.8.8", 53, NODE, 40000);
    const rb = udp("8.8.8.8", 53, NODE, bport);
    forward(ct, ra, masq);
    forward(ct, rb, masq);
    expect(addrs(ra)).toBe(`8.8.8.8:53 > ${CLIENT}:40000`);
    expect(addrs(rb)).toBe(`8.8.8.8:53 > 10.244.1.6:40000`);
    expect(checksumsOk(ra) && checksumsOk(rb)).toBe(true);
  });

  it("ports below 1024 stay in 1..511 or 600..1023", () => {
    const ct = new Conntrack({ seed: 3 });
    for (const [sport, lo, hi] of [[123, 1, 511], [700, 600, 1023]] as const) {
      forward(ct, udp(CLIENT, sport, "8.8.8.8", 53), masq);
      const f = udp("10.244.1.6", sport, "8.8.8.8", 53);
      forward(ct, f, masq);
      const p = get16(f, L3 + 20);
      expect(p).not.toBe(sport);
      expect(p >= lo && p <= hi).toBe(true);
    }
  });

  it("the same source keeps its mapping toward other destinations (find_appropriate_src)", () => {
    const ct = new Conntrack({ seed: 5 });
    forward(ct, udp(CLIENT, 40000, "8.8.8.8", 53), masq);
    const b = udp("10.244.1.6", 40000, "8.8.8.8", 53);
    forward(ct, b, masq);
    const mapped = get16(b, L3 + 20);
    const c = udp("10.244.1.6", 40000, "1.1.1.1", 53);
    forward(ct, c, masq);
    expect(get16(c, L3 + 20)).toBe(mapped);
  });

  it("--random-fully picks a random port even when the original is free", () => {
    const ct = new Conntrack({ seed: 11 });
    const f = udp(CLIENT, 40000, "8.8.8.8", 53);
    forward(ct, f, { snat: parseNatRange(NODE, { randomFully: true }) });
    expect(get16(f, L3 + 20)).not.toBe(40000);
  });

  it("an exhausted port range fails at confirmation: insert_failed and drop", () => {
    const ct = new Conntrack();
    const r = { snat: parseNatRange(`${NODE}:5000-5001`) };
    const refs = [1, 2, 3].map((n) => forward(ct, udp(`10.244.1.${n}`, 40000, "8.8.8.8", 53), r));
    expect(refs[0]).toBeGreaterThanOrEqual(0);
    expect(refs[1]).toBeGreaterThanOrEqual(0);
    expect(refs[2]).toBe(CT_DROP);
    expect(ct.stats.insert_failed).toBe(1);
  });

  it("ICMP echo ids are remapped on clash, with the ICMP checksum", () => {
    const ct = new Conntrack({ seed: 9 });
    const a = ping(CLIENT, "8.8.8.8", 100);
    const b = ping("10.244.1.6", "8.8.8.8", 100);
    forward(ct, a, masq);
    forward(ct, b, masq);
    expect(addrs(a)).toBe(`${NODE} > 8.8.8.8 id 100`);
    const id = get16(b, L3 + 24);
    expect(id).not.toBe(100);
    expect(checksumsOk(b)).toBe(true);
    const reply = ping("8.8.8.8", NODE, id, true);
    forward(ct, reply, masq);
    expect(addrs(reply)).toBe(`8.8.8.8 > 10.244.1.6 id 100`);
    expect(checksumsOk(reply)).toBe(true);
  });

  it("a null binding remaps a clashing source port even without a SNAT rule", () => {
    const ct = new Conntrack({ seed: 1 });
    // Conntrack A: 10.0.0.1:1000 -> 10.0.0.9:53 DNATed to 10.0.0.2:53 ...
    forward(ct, udp("10.0.0.1", 1000, "10.0.0.9", 53), { dnat: parseNatRange("10.0.0.2") });
    // ... then a direct flow to 10.0.0.2 with the same ports would share A's reply tuple.
    const f = udp("10.0.0.1", 1000, "10.0.0.2", 53);
    const ref = forward(ct, f, {});
    expect(ref).toBeGreaterThanOrEqual(0);
    expect(get16(f, L3 + 20)).not.toBe(1000);
    expect(ct.status[ctIndex(ref)]! & IPS_SRC_NAT).toBeTruthy();
  });

  it("SNAT to an address range picks the address with the kernel's jhash2 of source and destination", () => {
    // Our 4-word jhash2 agrees with the packet layer's general one.
    expect(jhash2x4(0x0501f40a, 0, 0, 0, 0x0808_0808)).toBe(jhash2([0x0501f40a, 0, 0, 0], 0, 4, 0x0808_0808));
    const ct = new Conntrack();
    const f = udp(CLIENT, 40000, "8.8.8.8", 53);
    forward(ct, f, { snat: parseNatRange("192.168.1.10-192.168.1.13") });
    const chosen = get32(f, L3 + 12);
    expect(chosen >= ip("192.168.1.10") && chosen <= ip("192.168.1.13")).toBe(true);
    // Same source and destination → same address (consistent mapping).
    const g = udp(CLIENT, 40001, "8.8.8.8", 53);
    forward(ct, g, { snat: parseNatRange("192.168.1.10-192.168.1.13") });
    expect(get32(g, L3 + 12)).toBe(chosen);
  });
});

describe("RELATED ICMP errors through NAT", () => {
  it("an ICMP error from the pod is translated back: outer source and quoted datagram", () => {
    const ct = new Conntrack();
    const out = udp(CLIENT, 5353, VIP, 80);
    forward(ct, out, { dnat: parseNatRange(`${POD}:8080`) });
    expect(addrs(out)).toBe(`${CLIENT}:5353 > ${POD}:8080`);
    const err = buildIcmpError(3, 3, out); // the pod answers port unreachable
    const ref = forward(ct, err, {});
    expect(ctInfo(ref)).toBe(IP_CT_RELATED_REPLY);
    expect(formatIpv4(get32(err, L3 + 12))).toBe(VIP);
    expect(formatIpv4(get32(err, L3 + 16))).toBe(CLIENT);
    const inner = L3 + 28;
    expect(formatIpv4(get32(err, inner + 16))).toBe(VIP);
    expect(get16(err, inner + 22)).toBe(80);
    expect(checksumsOk(err)).toBe(true);
    // The quoted IPv4 header's checksum was kept valid too.
    expect(ipv4HeaderChecksum(err, inner, 20)).toBe(get16(err, inner + 10));
  });

  it("an error about a masqueraded datagram goes back to the pod", () => {
    const ct = new Conntrack({ seed: 2 });
    const masq = { snat: parseNatRange(NODE) };
    forward(ct, udp("10.244.1.6", 40000, "8.8.8.8", 53), masq);
    const out = udp(CLIENT, 40000, "8.8.8.8", 53);
    forward(ct, out, masq);
    const mapped = get16(out, L3 + 20);
    const err = buildIcmpError(11, 0, out, { src: "172.16.0.1" }); // time exceeded from a router on the way
    forward(ct, err, masq);
    expect(formatIpv4(get32(err, L3 + 16))).toBe(CLIENT);
    expect(formatIpv4(get32(err, L3 + 28 + 12))).toBe(CLIENT);
    expect(get16(err, L3 + 28 + 20)).toBe(40000);
    expect(mapped).not.toBe(40000);
    expect(checksumsOk(err)).toBe(true);
  });
});

describe("the UDP DNAT race (two unconfirmed packets of one socket)", () => {
  it("same endpoint chosen: the second packet joins the first entry", () => {
    const ct = new Conntrack();
    const r = parseNatRange(`${POD}:53`);
    const a = udp(CLIENT, 40000, VIP, 53);
    const b = udp(CLIENT, 40000, VIP, 53);
    const ra = ct.in(a, L3, a.length - L3);
    const rb = ct.in(b, L3, b.length - L3);
    natSetupInfo(ct, ctIndex(ra), r, NF_NAT_MANIP_DST);
    natSetupInfo(ct, ctIndex(rb), r, NF_NAT_MANIP_DST);
    const ca = ct.confirm(ra);
    const cb = ct.confirm(rb);
    expect(ctIndex(cb)).toBe(ctIndex(ca));
    expect(ct.stats.clash_resolve).toBe(1);
  });

  it("different endpoints: the loser lives on as a hidden 1 s NAT_CLASH entry reachable by its reply", () => {
    const ct = new Conntrack();
    const a = udp(CLIENT, 40000, VIP, 53);
    const b = udp(CLIENT, 40000, VIP, 53);
    const ra = ct.in(a, L3, a.length - L3);
    const rb = ct.in(b, L3, b.length - L3);
    natSetupInfo(ct, ctIndex(ra), parseNatRange("10.244.2.7:53"), NF_NAT_MANIP_DST);
    natSetupInfo(ct, ctIndex(rb), parseNatRange("10.244.3.8:53"), NF_NAT_MANIP_DST);
    ct.confirm(ra);
    const cb = ct.confirm(rb);
    expect(ctIndex(cb)).toBe(ctIndex(rb));
    expect(ct.remaining(ctIndex(cb))).toBe(1);
    // A reply from the second endpoint still finds the loser's entry and is un-DNATed.
    const reply = udp("10.244.3.8", 53, CLIENT, 40000);
    const rr = forward(ct, reply, {});
    expect(ctIndex(rr)).toBe(ctIndex(rb));
    expect(addrs(reply)).toBe(`${VIP}:53 > ${CLIENT}:40000`);
  });
});
