// Reference packets from scapy (/usr/bin/python3): scapy builds each frame and reports the fields it decodes;
// our builders (or emitPacket) must produce the identical bytes, and parsePacket must read the same fields.
// Skips with a message when scapy is not installed. No namespaces or traffic: scapy only builds bytes.
import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import {
  ARPOP_REPLY,
  buildArp,
  buildIcmpEcho,
  buildIcmpError,
  buildTcp,
  buildUdp,
  buildVxlan,
  emitPacket,
  encodeTcpOptions,
  fromHex,
  ICMP_DEST_UNREACH,
  ICMP_EXC_TTL,
  ICMP_FRAG_NEEDED,
  ICMP_PORT_UNREACH,
  ICMP_TIME_EXCEEDED,
  parsePacket,
  TCP_FLAGS,
  toHex,
  type ParsedPacket,
} from "../../src/packet/index.js";

const PY = "/usr/bin/python3";

// Each case: a scapy expression for the frame. The script prints, per case, the frame's hex and the fields scapy
// decodes when it re-dissects the bytes (checksums included, as computed by scapy).
const SCRIPT = String.raw`
import json, sys
from scapy.all import Ether, Dot1Q, IP, TCP, UDP, ICMP, ARP, VXLAN, Raw, IPOption_Router_Alert
E = lambda: Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
udp_orig = E()/IP(src="10.0.0.1", dst="10.0.0.2", id=5)/UDP(sport=1234, dport=9999)/b"xyzxyzxyz"
tcp_orig = E()/IP(src="10.0.0.1", dst="10.0.0.9", id=77, ttl=1)/TCP(sport=40001, dport=443, flags="S", seq=7)
inner = Ether(src="0a:58:0a:f4:01:02", dst="0a:58:0a:f4:02:03")/IP(src="10.244.1.2", dst="10.244.2.3", id=3)/TCP(sport=33000, dport=8080, flags="PA", seq=100, ack=200, window=502)/b"GET / HTTP/1.1\r\n\r\n"
cases = {
  "tcp_syn_options": E()/IP(src="10.0.0.1", dst="10.96.0.1", id=0x1234, flags="DF", ttl=63)/TCP(sport=40000, dport=80, flags="S", seq=123456789, window=64240, options=[("MSS",1460),("SAckOK",b""),("Timestamp",(12345,0)),("NOP",None),("WScale",7)]),
  "tcp_data": E()/IP(src="10.0.0.1", dst="10.0.0.2", id=2, tos=0x10)/TCP(sport=50000, dport=8080, flags="PA", seq=0xfffffff0, ack=0x80000001, window=501, options=[("NOP",None),("NOP",None),("Timestamp",(0xdeadbeef,0x01020304))])/b"hello, world",
  "udp": E()/IP(src="10.0.0.1", dst="10.96.0.10", id=7)/UDP(sport=5353, dport=53)/b"\x12\x34\x01\x00\x00\x01",
  "udp_odd": E()/IP(src="192.168.1.1", dst="192.168.1.255", id=9)/UDP(sport=68, dport=67)/b"odd",
  "icmp_echo": E()/IP(src="10.0.0.1", dst="10.0.0.2", id=1)/ICMP(type=8, id=0x42, seq=1)/b"abcdefghijklmnop",
  "icmp_echo_reply": E()/IP(src="10.0.0.2", dst="10.0.0.1", id=0)/ICMP(type=0, id=0x42, seq=1)/b"abcdefghijklmnop",
  "icmp_port_unreach": Ether(src="02:00:00:00:00:02", dst="02:00:00:00:00:01")/IP(src="10.0.0.2", dst="10.0.0.1", tos=0xc0, id=0)/ICMP(type=3, code=3)/bytes(udp_orig)[14:14+28],
  "icmp_time_exceeded": Ether(src="02:00:00:00:00:02", dst="02:00:00:00:00:01")/IP(src="10.0.0.254", dst="10.0.0.1", tos=0xc0, id=0)/ICMP(type=11, code=0)/bytes(tcp_orig)[14:14+28],
  "icmp_frag_needed": Ether(src="02:00:00:00:00:02", dst="02:00:00:00:00:01")/IP(src="10.0.0.2", dst="10.0.0.1", tos=0xc0, id=0)/ICMP(type=3, code=4, nexthopmtu=1450)/bytes(tcp_orig)[14:14+28],
  "arp_request": Ether(src="02:00:00:00:00:01", dst="ff:ff:ff:ff:ff:ff")/ARP(op=1, hwsrc="02:00:00:00:00:01", psrc="10.0.0.1", hwdst="00:00:00:00:00:00", pdst="10.0.0.2"),
  "arp_reply": Ether(src="02:00:00:00:00:02", dst="02:00:00:00:00:01")/ARP(op=2, hwsrc="02:00:00:00:00:02", psrc="10.0.0.2", hwdst="02:00:00:00:00:01", pdst="10.0.0.1"),
  "vlan_udp": E()/Dot1Q(vlan=100)/IP(src="10.0.0.1", dst="10.0.0.2", id=0)/UDP(sport=1000, dport=2000)/b"vlan",
  "vlan_prio_tcp": E()/Dot1Q(vlan=4094, prio=5, id=1)/IP(src="10.1.0.1", dst="10.1.0.2", id=4)/TCP(sport=1, dport=2, flags="R"),
  "vxlan_csum0": Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")/IP(src="192.168.0.1", dst="192.168.0.2", id=0, flags="DF")/UDP(sport=50000, dport=4789, chksum=0)/VXLAN(vni=1, flags=0x08)/inner,
  "vxlan_csum": Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")/IP(src="192.168.0.1", dst="192.168.0.2", id=0)/UDP(sport=61000, dport=4789)/VXLAN(vni=0xabcdef, flags=0x08)/inner,
  "ip_options": E()/IP(src="10.0.0.1", dst="224.0.0.22", id=0, ttl=1, options=[IPOption_Router_Alert()])/UDP(sport=1, dport=2)/b"x",
}
out = {}
for name, p in cases.items():
  raw = bytes(p)
  d = Ether(raw)
  f = {"len": len(raw)}
  if Dot1Q in d: f["vlan"] = [d[Dot1Q].vlan, d[Dot1Q].prio]
  if ARP in d: a = d[ARP]; f["arp"] = [a.op, a.hwsrc, a.psrc, a.hwdst, a.pdst]
  if IP in d:
    ip = d[IP]
    f["ip"] = [ip.src, ip.dst, ip.ttl, ip.id, int(ip.flags), ip.frag, ip.proto, ip.chksum, ip.len, ip.tos]
  if TCP in d:
    t = d[TCP]
    f["tcp"] = [t.sport, t.dport, t.seq, t.ack, int(t.flags), t.window, t.chksum, t.dataofs, len(bytes(t.payload))]
  if UDP in d:
    u = d[UDP]
    f["udp"] = [u.sport, u.dport, u.len, u.chksum]
  if ICMP in d:
    c = d[ICMP]
    f["icmp"] = [c.type, c.code, c.chksum, c.id if c.type in (0, 8) else None, c.seq if c.type in (0, 8) else None]
  if VXLAN in d: f["vxlan"] = [d[VXLAN].vni, int(d[VXLAN].flags)]
  out[name] = {"hex": raw.hex(), "fields": f}
json.dump(out, sys.stdout)
`;

interface Ref {
  hex: string;
  fields: {
    len: number;
    vlan?: [number, number];
    arp?: [number, string, string, string, string];
    ip?: [string, string, number, number, number, number, number, number, number, number];
    tcp?: [number, number, number, number, number, number, number, number, number];
    udp?: [number, number, number, number];
    icmp?: [number, number, number, number | null, number | null];
    vxlan?: [number, number];
  };
}

function runScapy(): { refs?: Record<string, Ref>; skip?: string } {
  const probe = spawnSync(PY, ["-c", "import scapy"], { encoding: "utf8" });
  if (probe.error || probe.status !== 0) return { skip: `scapy not importable by ${PY}: ${probe.error?.message ?? probe.stderr.trim()}` };
  const r = spawnSync(PY, ["-c", SCRIPT], { encoding: "utf8", maxBuffer: 1 << 24 });
  if (r.status !== 0) throw new Error(`scapy script failed: ${r.stderr}`);
  return { refs: JSON.parse(r.stdout) as Record<string, Ref> };
}

const { refs, skip } = runScapy();
if (skip) process.stderr.write(`packet-scapy: SKIPPED: ${skip}\n`);

const text = (s: string) => new TextEncoder().encode(s);
const UDP_ORIG = buildUdp({ src: "10.0.0.1", dst: "10.0.0.2", id: 5, sport: 1234, dport: 9999, payload: text("xyzxyzxyz") });
const TCP_ORIG = buildTcp({ src: "10.0.0.1", dst: "10.0.0.9", id: 77, ttl: 1, sport: 40001, dport: 443, flags: TCP_FLAGS.SYN, seq: 7, window: 8192 });
const INNER = buildTcp({
  srcMac: "0a:58:0a:f4:01:02", dstMac: "0a:58:0a:f4:02:03", src: "10.244.1.2", dst: "10.244.2.3", id: 3,
  sport: 33000, dport: 8080, flags: TCP_FLAGS.PSH | TCP_FLAGS.ACK, seq: 100, ack: 200, window: 502, payload: text("GET / HTTP/1.1\r\n\r\n"),
});

// Our side of each case. scapy's defaults differ from ours (IP id 1, TCP window 8192): stated explicitly.
const OURS: Record<string, () => Uint8Array> = {
  tcp_syn_options: () => buildTcp({
    src: "10.0.0.1", dst: "10.96.0.1", id: 0x1234, df: true, ttl: 63, sport: 40000, dport: 80, flags: TCP_FLAGS.SYN, seq: 123456789, window: 64240,
    options: [{ kind: "mss", mss: 1460 }, { kind: "sackPermitted" }, { kind: "timestamp", tsval: 12345, tsecr: 0 }, { kind: "nop" }, { kind: "wscale", shift: 7 }],
  }),
  tcp_data: () => buildTcp({
    src: "10.0.0.1", dst: "10.0.0.2", id: 2, tos: 0x10, sport: 50000, dport: 8080, flags: TCP_FLAGS.PSH | TCP_FLAGS.ACK, seq: 0xfffffff0, ack: 0x80000001, window: 501,
    options: [{ kind: "nop" }, { kind: "nop" }, { kind: "timestamp", tsval: 0xdeadbeef, tsecr: 0x01020304 }], payload: text("hello, world"),
  }),
  udp: () => buildUdp({ src: "10.0.0.1", dst: "10.96.0.10", id: 7, sport: 5353, dport: 53, payload: fromHex("123401000001") }),
  udp_odd: () => buildUdp({ src: "192.168.1.1", dst: "192.168.1.255", id: 9, sport: 68, dport: 67, payload: text("odd") }),
  icmp_echo: () => buildIcmpEcho({ src: "10.0.0.1", dst: "10.0.0.2", ipId: 1, id: 0x42, seq: 1, payload: text("abcdefghijklmnop") }),
  icmp_echo_reply: () => buildIcmpEcho({ src: "10.0.0.2", dst: "10.0.0.1", id: 0x42, seq: 1, reply: true, payload: text("abcdefghijklmnop") }),
  icmp_port_unreach: () => buildIcmpError(ICMP_DEST_UNREACH, ICMP_PORT_UNREACH, UDP_ORIG),
  icmp_time_exceeded: () => buildIcmpError(ICMP_TIME_EXCEEDED, ICMP_EXC_TTL, TCP_ORIG, { src: "10.0.0.254" }),
  icmp_frag_needed: () => buildIcmpError(ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED, TCP_ORIG, { src: "10.0.0.2", rest: 1450 }),
  arp_request: () => buildArp({ srcMac: "02:00:00:00:00:01", srcIp: "10.0.0.1", dstIp: "10.0.0.2" }),
  arp_reply: () => buildArp({ op: ARPOP_REPLY, srcMac: "02:00:00:00:00:02", srcIp: "10.0.0.2", dstMac: "02:00:00:00:00:01", dstIp: "10.0.0.1" }),
  vlan_udp: () => buildUdp({ vlan: 100, src: "10.0.0.1", dst: "10.0.0.2", sport: 1000, dport: 2000, payload: text("vlan") }),
  vxlan_csum0: () => buildVxlan({ src: "192.168.0.1", dst: "192.168.0.2", df: true, sport: 50000 }, 1, INNER),
  vxlan_csum: () => buildVxlan({ src: "192.168.0.1", dst: "192.168.0.2", sport: 61000, udpCsum: true }, 0xabcdef, INNER),
};

/** Our parsed fields in scapy's shape, from the outer packet. */
function fieldsOf(p: ParsedPacket, len: number): Ref["fields"] {
  const f: Ref["fields"] = { len };
  if (p.vlan) f.vlan = [p.vlan[0]!.vid, p.vlan[0]!.pcp];
  if (p.arp) f.arp = [p.arp.op, p.arp.sha, p.arp.spa, p.arp.tha, p.arp.tpa];
  if (p.ipv4) {
    const i = p.ipv4;
    const flags = (i.rf ? 4 : 0) | (i.df ? 2 : 0) | (i.mf ? 1 : 0);
    f.ip = [i.src, i.dst, i.ttl, i.id, flags, i.fragOffset, i.protocol, i.checksum!, i.length!, i.tos];
  }
  // scapy's TCP layer is the first in the frame: the inner one under VXLAN.
  const tp = p.tcp ? p : p.vxlan?.inner.tcp ? p.vxlan.inner : undefined;
  if (tp) {
    const t = tp.tcp!;
    const doff = 5 + (t.options ? encodeTcpOptions(t.options).length / 4 : 0);
    f.tcp = [t.sport, t.dport, t.seq, t.ack, t.flags, t.window, t.checksum!, doff, tp.payload.length];
  }
  if (p.udp) f.udp = [p.udp.sport, p.udp.dport, p.udp.length!, p.udp.checksum!];
  if (p.icmp) f.icmp = [p.icmp.type, p.icmp.code, p.icmp.checksum!, p.icmp.id ?? null, p.icmp.seq ?? null];
  if (p.vxlan) f.vxlan = [p.vxlan.vni, p.vxlan.flags];
  return f;
}

describe.skipIf(!!skip)("scapy reference packets", () => {
  const names = refs ? Object.keys(refs) : [];
  it("scapy produced every case", () => {
    expect(names.length).toBe(16);
  });
  for (const name of names) {
    const ref = refs![name]!;
    it(`${name}: parse reads scapy's fields, emit reproduces the bytes`, () => {
      const bytes = fromHex(ref.hex);
      const p = parsePacket(bytes);
      expect(fieldsOf(p, bytes.length)).toEqual(ref.fields);
      expect(toHex(emitPacket(p))).toBe(ref.hex);
    });
    const ours = OURS[name];
    if (ours) {
      it(`${name}: our builder makes identical bytes`, () => {
        expect(toHex(ours())).toBe(ref.hex);
      });
    }
  }
  it("the VXLAN inner frame parses to scapy's inner TCP", () => {
    const p = parsePacket(fromHex(refs!.vxlan_csum!.hex));
    expect(p.vxlan!.inner.tcp).toMatchObject({ sport: 33000, dport: 8080, flags: TCP_FLAGS.PSH | TCP_FLAGS.ACK, seq: 100, ack: 200, window: 502 });
    expect(new TextDecoder().decode(p.vxlan!.inner.payload)).toBe("GET / HTTP/1.1\r\n\r\n");
  });
});
