// The packet layer's public API (pcap/pcapng/format are imported from their own files).
//
// Hot path (numbers and bytes only, nothing allocates):
//   views, one reusable object per layer: new XView().bind(buf, off?, len?) validates once (throws PacketError
//     {kind: "truncated" | "malformed", layer, offset, where}) then one-line getters/setters:
//     EthernetView (dst/src as 48-bit numbers, tags, tagTci(i), vlanId, etherType, payloadOff), ArpView,
//     Ipv4View (setters fix the header checksum incrementally; bindQuoted for ICMP-quoted headers), TcpView
//     (flags byte, findOption), UdpView, IcmpView (bindQuoted(ipView)), VxlanView.
//   fast.ts: ipv4FrameL3(buf, off, len) -> L3 offset or -1 (non-throwing validation), ipv4L4, ipv4Saddr/Daddr,
//     l4Sport/Dport and raw setters.
//   rewrite.ts: dnat4/snat4(buf, l3, addr, port|-1), rewriteIpv4Src/Dst, rewriteL4Sport/Dport, decreaseTtl,
//     l3CsumReplace/l4CsumReplace (bpf helper semantics, BPF_F_MARK_MANGLED_0).
//   flowkey.ts: flowKeyFromPacket(buf, off, out: Uint32Array, outOff, len?) -> boolean, flowKeyFromIpv4,
//     flowKeyFromQuoted, flowKeySet, flowKeyReverse, flowKeyEquals, flowHash (jhash2), formatFlowKey.
// Setup, tests, printing: parsePacket(bytes, off?, len?) -> ParsedPacket; emitPacket(p) -> bytes (lengths and
//   checksums computed); buildTcp/Udp/IcmpEcho/IcmpError/Arp/Vxlan (and writeX(buf, off, opts) -> length).
export * from "./addr.js";
export * from "./checksum.js";
export * from "./constants.js";
export * from "./error.js";
export * from "./hex.js";
export * from "./jhash.js";
export * from "./ethernet.js";
export * from "./arp.js";
export * from "./ipv4.js";
export * from "./tcp.js";
export * from "./tcp-options.js";
export * from "./udp.js";
export * from "./icmp.js";
export * from "./vxlan.js";
export * from "./repr.js";
export * from "./parse.js";
export * from "./emit.js";
export * from "./build.js";
export * from "./fast.js";
export * from "./rewrite.js";
export * from "./flowkey.js";
