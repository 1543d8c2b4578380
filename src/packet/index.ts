// The packet layer's public API: wire formats as reusable zero-copy views, the plain parsed form, builders,
// checksums and their incremental rewrites, flow keys. (pcap/pcapng/format are exported from their own files.)
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
