// Numbers of the kernel model, named as the kernel names them. Everything on the per-packet path is one of these
// numbers; names exist only for printing (see trace.ts, print.ts).

// Protocol numbers used by the model (mirrors of include/uapi/linux/if_ether.h, in.h; kept local so src/net/
// depends only on the stable parts of src/packet/).
export const ETH_HLEN = 14;
export const ETH_P_IP = 0x0800;
export const ETH_P_ARP = 0x0806;
export const IPPROTO_ICMP = 1;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
export const ARPOP_REQUEST = 1;
export const ARPOP_REPLY = 2;
export const IANA_VXLAN_UDP_PORT = 4789;
/** Outer Ethernet 14 + IPv4 20 + UDP 8 + VXLAN 8 (drivers/net/vxlan: VXLAN_HEADROOM). */
export const VXLAN_HEADROOM = 50;
export const MAC_BROADCAST = 0xffffffffffff;

// ICMP (include/uapi/linux/icmp.h)
export const ICMP_ECHOREPLY = 0;
export const ICMP_DEST_UNREACH = 3;
export const ICMP_ECHO = 8;
export const ICMP_TIME_EXCEEDED = 11;
export const ICMP_NET_UNREACH = 0;
export const ICMP_HOST_UNREACH = 1;
export const ICMP_PORT_UNREACH = 3;
export const ICMP_FRAG_NEEDED = 4;
export const ICMP_PKT_FILTERED = 13;
export const ICMP_EXC_TTL = 0;

// skb->pkt_type (include/uapi/linux/if_packet.h)
export const PACKET_HOST = 0;
export const PACKET_BROADCAST = 1;
export const PACKET_MULTICAST = 2;
export const PACKET_OTHERHOST = 3;

// Netfilter verdicts and hooks (include/uapi/linux/netfilter.h)
export const NF_DROP = 0;
export const NF_ACCEPT = 1;
export const NF_STOLEN = 2;
export const NF_INET_PRE_ROUTING = 0;
export const NF_INET_LOCAL_IN = 1;
export const NF_INET_FORWARD = 2;
export const NF_INET_LOCAL_OUT = 3;
export const NF_INET_POST_ROUTING = 4;
export const NFPROTO_IPV4 = 2;
/** br_netfilter runs the IPv4 hooks for bridged frames; the state says so with this family. */
export const NFPROTO_BRIDGE = 7;

// tc actions (include/uapi/linux/pkt_cls.h)
export const TC_ACT_UNSPEC = -1;
export const TC_ACT_OK = 0;
export const TC_ACT_SHOT = 2;
export const TC_ACT_STOLEN = 4;
export const TC_ACT_QUEUED = 5;
export const TC_ACT_REDIRECT = 7;
export const TC_ACT_TRAP = 8;
/** bpf_redirect() flag: deliver to the target's ingress instead of its egress. */
export const BPF_F_INGRESS = 1;
/** Model flag for bpf_redirect_peer(): ingress of the target veth's peer, in the peer's namespace. */
export const BPF_F_PEER = 2;
export const TC_INGRESS = 0;
export const TC_EGRESS = 1;

// Route types (include/uapi/linux/rtnetlink.h RTN_*)
export const RTN_UNSPEC = 0;
export const RTN_UNICAST = 1;
export const RTN_LOCAL = 2;
export const RTN_BROADCAST = 3;
export const RTN_MULTICAST = 5;
export const RTN_BLACKHOLE = 6;
export const RTN_UNREACHABLE = 7;
export const RTN_PROHIBIT = 8;
export const RTN_NAMES = ["unspec", "unicast", "local", "broadcast", "anycast", "multicast", "blackhole", "unreachable", "prohibit"];

// Route scopes (RT_SCOPE_*)
export const RT_SCOPE_UNIVERSE = 0;
export const RT_SCOPE_SITE = 200;
export const RT_SCOPE_LINK = 253;
export const RT_SCOPE_HOST = 254;
export const RT_SCOPE_NOWHERE = 255;

// Route protocols (RTPROT_*); iproute2 prints "proto NAME" unless it is boot.
export const RTPROT_KERNEL = 2;
export const RTPROT_BOOT = 3;
export const RTPROT_STATIC = 4;
export const RTPROT_BIRD = 12;
export const RTPROT_NAMES: Record<number, string> = { 2: "kernel", 3: "boot", 4: "static", 12: "bird", 16: "dhcp" };

// Routing tables (RT_TABLE_*)
export const RT_TABLE_DEFAULT = 253;
export const RT_TABLE_MAIN = 254;
export const RT_TABLE_LOCAL = 255;

// Neighbour states (include/uapi/linux/neighbour.h NUD_*)
export const NUD_INCOMPLETE = 0x01;
export const NUD_REACHABLE = 0x02;
export const NUD_STALE = 0x04;
export const NUD_DELAY = 0x08;
export const NUD_PROBE = 0x10;
export const NUD_FAILED = 0x20;
export const NUD_NOARP = 0x40;
export const NUD_PERMANENT = 0x80;

// errno values surfaced by setup and socket calls
export const ENETUNREACH = 101;
export const EHOSTUNREACH = 113;
export const EADDRINUSE = 98;
export const EINVAL = 22;
export const EPERM = 1;

// Link kinds
export const LinkKind = {
  LOOPBACK: 0,
  VETH: 1,
  BRIDGE: 2,
  VXLAN: 3,
  MACVLAN: 4,
  /** A NIC on a physical L2 segment (node eth0, an ENI). */
  ETHER: 5,
  DUMMY: 6,
} as const;
export type LinkKind = (typeof LinkKind)[keyof typeof LinkKind];
export const LINK_KIND_NAMES = ["loopback", "veth", "bridge", "vxlan", "macvlan", "ether", "dummy"];
