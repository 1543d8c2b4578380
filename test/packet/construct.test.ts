// The "construct" step of the smoltcp pattern for the remaining headers: zeroed buffers filled through view
// setters must equal the reference frames (scapy 2.5 bytes), and the fast-path helpers read the same fields.
import { describe, expect, it } from "vitest";
import {
  ArpView,
  ARPOP_REQUEST,
  EthernetView,
  ETH_P_8021Q,
  ETH_P_ARP,
  ETH_P_IP,
  fromHex,
  IcmpView,
  ICMP_ECHO,
  IPPROTO_ICMP,
  IPPROTO_UDP,
  ipv4Daddr,
  ipv4FrameL3,
  ipv4L4,
  ipv4Proto,
  ipv4Saddr,
  Ipv4View,
  l4Dport,
  l4Sport,
  setL4Dport,
  setL4Sport,
  toHex,
  UdpView,
  VxlanView,
  writeIpv4Header,
  writeVxlanHeader,
} from "../../src/packet/index.js";

const UDP_VLAN = "0200000000020200000000018100006408004500002000000000401166cb0a0000010a00000203e807d0000c0841766c616e";
const ECHO = "02000000000202000000000108004500002400010000400166d60a0000010a00000208006627004200016162636465666768";
const ARP = "ffffffffffff020000000001080600010800060400010200000000010a0000010000000000000a000002";

function ethHeader(buf: Uint8Array, dst: number, src: number): EthernetView {
  const eth = new EthernetView();
  eth.buf = buf;
  eth.off = 0;
  eth.payloadOff = 14;
  eth.dst = dst;
  eth.src = src;
  return eth;
}

describe("construct via setters", () => {
  it("802.1Q + IPv4 + UDP", () => {
    const want = fromHex(UDP_VLAN);
    const b = new Uint8Array(want.length);
    const eth = ethHeader(b, 0x020000000002, 0x020000000001);
    b[12] = 0x81; // tag, then bind to find the inner ethertype position
    b[16] = 0x08;
    eth.bind(b);
    eth.setTagTci(0, 100);
    eth.etherType = ETH_P_IP;
    expect([eth.tagTpid(0), eth.vlanId, eth.payloadOff]).toEqual([ETH_P_8021Q, 100, 18]);
    writeIpv4Header(b, 18, { tos: 0, totalLength: 32, id: 0, fragOff: 0, ttl: 64, protocol: IPPROTO_UDP, src: 0x0a000001, dst: 0x0a000002 });
    b.set(new TextEncoder().encode("vlan"), 46);
    b[42] = 0;
    b[43] = 8; // length >= 8 so bind accepts; then set the real one
    const u = new UdpView().bind(b, 38, 12);
    u.sport = 1000;
    u.dport = 2000;
    u.length = 12;
    u.bind(b, 38, 12).fillChecksum(0x0a000001, 0x0a000002);
    expect(toHex(b)).toBe(UDP_VLAN);
  });

  it("IPv4 + ICMP echo", () => {
    const b = new Uint8Array(fromHex(ECHO).length);
    ethHeader(b, 0x020000000002, 0x020000000001).etherType = ETH_P_IP;
    writeIpv4Header(b, 14, { tos: 0, totalLength: 36, id: 1, fragOff: 0, ttl: 64, protocol: IPPROTO_ICMP, src: 0x0a000001, dst: 0x0a000002 });
    const c = new IcmpView().bind(b, 34, 16);
    c.type = ICMP_ECHO;
    c.code = 0;
    c.id = 0x42;
    c.seq = 1;
    b.set(new TextEncoder().encode("abcdefgh"), 42);
    c.fillChecksum();
    expect(toHex(b)).toBe(ECHO);
    expect(c.verifyChecksum()).toBe(true);
  });

  it("ARP request", () => {
    const b = new Uint8Array(42);
    ethHeader(b, 0xffffffffffff, 0x020000000001).etherType = ETH_P_ARP;
    b.set([0, 1, 8, 0, 6, 4], 14);
    const a = new ArpView().bind(b, 14);
    a.oper = ARPOP_REQUEST;
    a.sha = 0x020000000001;
    a.spa = 0x0a000001;
    a.tha = 0;
    a.tpa = 0x0a000002;
    expect(toHex(b)).toBe(ARP);
  });

  it("VXLAN header", () => {
    const b = new Uint8Array(8);
    writeVxlanHeader(b, 0, 0x123456);
    expect(toHex(b)).toBe("0800000012345600");
    const v = new VxlanView().bind(b);
    v.flags = 0;
    expect(v.vniValid).toBe(false);
  });
});

describe("fast-path helpers", () => {
  it("read and write at offsets found once", () => {
    const b = fromHex(UDP_VLAN);
    const l3 = ipv4FrameL3(b, 0, b.length);
    expect(l3).toBe(18);
    const l4 = ipv4L4(b, l3);
    expect([ipv4Proto(b, l3), ipv4Saddr(b, l3), ipv4Daddr(b, l3), l4Sport(b, l4), l4Dport(b, l4)]).toEqual([IPPROTO_UDP, 0x0a000001, 0x0a000002, 1000, 2000]);
    setL4Sport(b, l4, 1);
    setL4Dport(b, l4, 65535);
    const u = new UdpView().bind(b, l4, 12);
    expect([u.sport, u.dport]).toEqual([1, 65535]);
    expect(ipv4FrameL3(fromHex(ARP), 0, 42)).toBe(-1);
    expect(ipv4FrameL3(b, 0, 40)).toBe(-1); // tot_len beyond the bytes given
    const ip = new Ipv4View().bind(b, l3);
    expect(ip.payloadOff).toBe(l4);
  });
});
