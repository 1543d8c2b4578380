// Conntrack state bits as xt_conntrack/xt_state see them (XT_CONNTRACK_STATE_BIT(ctinfo) = 1 << (ctinfo % 3 + 1)):
// the packet state carries one of these per packet so --ctstate is one AND.
export const CtState = {
  INVALID: 1 << 0,
  ESTABLISHED: 1 << 1,
  RELATED: 1 << 2,
  NEW: 1 << 3,
  SNAT: 1 << 6,
  DNAT: 1 << 7,
  UNTRACKED: 1 << 8,
} as const;

/** The order libxt_conntrack prints states in. */
export const CT_STATE_PRINT_ORDER: Array<[string, number]> = [
  ["INVALID", CtState.INVALID],
  ["NEW", CtState.NEW],
  ["RELATED", CtState.RELATED],
  ["ESTABLISHED", CtState.ESTABLISHED],
  ["UNTRACKED", CtState.UNTRACKED],
  ["SNAT", CtState.SNAT],
  ["DNAT", CtState.DNAT],
];

/** RTN_* address types as bits (1 << RTN_x), the encoding xt_addrtype uses. */
export const ADDR_TYPES: Array<[string, number]> = [
  ["UNSPEC", 1 << 0],
  ["UNICAST", 1 << 1],
  ["LOCAL", 1 << 2],
  ["BROADCAST", 1 << 3],
  ["ANYCAST", 1 << 4],
  ["MULTICAST", 1 << 5],
  ["BLACKHOLE", 1 << 6],
  ["UNREACHABLE", 1 << 7],
  ["PROHIBIT", 1 << 8],
  ["THROW", 1 << 9],
  ["NAT", 1 << 10],
  ["XRESOLVE", 1 << 11],
];
export const AddrType = { UNICAST: 1 << 1, LOCAL: 1 << 2, BROADCAST: 1 << 3, MULTICAST: 1 << 5 } as const;
