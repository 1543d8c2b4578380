// host-local IPAM (containernetworking/plugins plugins/ipam/host-local): addresses from configured ranges, with
// leases kept on the node (the real plugin writes one file per IP under /var/lib/cni/networks/NAME, holding the
// container id and ifname, plus last_reserved_ip.N per range set). The model keeps the same facts in a JSON-able
// LeaseStore so consecutive `tcbox cni` invocations see each other.
//  - a range is [rangeStart, rangeEnd], default network+1 .. broadcast-1; the gateway is never handed out;
//  - allocation continues after the last reserved address of the range set and wraps (the plugin's iterator);
//  - ADD for a container that already holds an address on the network returns it (idempotent);
//  - DEL releases every address held by (containerId, ifname) and succeeds when there is none.
import { formatIpv4, parseCidr, parseIpv4, AddrError } from "../../packet/addr.js";
import { CniCode, CniError, type CniIp, type CniRoute, type IpamConfig, type IpamRange } from "./types.js";

export interface Lease {
  containerId: string;
  ifname: string;
}

/** Per network (dataDir/name): IP -> holder, and the last address reserved per range set. */
export interface LeaseStore {
  networks: Record<string, { leases: Record<string, Lease>; lastReserved: Record<string, string> }>;
}

export function emptyLeaseStore(): LeaseStore {
  return { networks: {} };
}

interface Range {
  subnet: number;
  len: number;
  start: number;
  end: number;
  gateway: number;
}

function ip(text: string, where: string): number {
  try {
    return parseIpv4(text);
  } catch (e) {
    if (e instanceof AddrError) throw new CniError(CniCode.INVALID_NETWORK_CONFIG, `invalid IP address "${text}"`, "", where);
    throw e;
  }
}

function parseRange(r: IpamRange, where: string): Range {
  let c;
  try {
    c = parseCidr(r.subnet);
  } catch {
    throw new CniError(CniCode.INVALID_NETWORK_CONFIG, `invalid CIDR ${r.subnet}`, "", `${where}.subnet`);
  }
  if (c.len > 30) throw new CniError(CniCode.INVALID_NETWORK_CONFIG, `Network ${r.subnet} too small to allocate from`, "", `${where}.subnet`);
  const size = 2 ** (32 - c.len);
  const bcast = c.addr + size - 1;
  const start = r.rangeStart !== undefined ? ip(r.rangeStart, `${where}.rangeStart`) : c.addr + 1;
  const end = r.rangeEnd !== undefined ? ip(r.rangeEnd, `${where}.rangeEnd`) : bcast - 1;
  const gateway = r.gateway !== undefined ? ip(r.gateway, `${where}.gateway`) : c.addr + 1;
  if (start < c.addr + 1 || end > bcast - 1 || start > end) {
    throw new CniError(CniCode.INVALID_NETWORK_CONFIG, `range ${formatIpv4(start)}-${formatIpv4(end)} is not within ${r.subnet}`, "", where);
  }
  return { subnet: c.addr, len: c.len, start, end, gateway };
}

/** allocator.Range.Overlaps: either range holds an end of the other. */
const overlaps = (a: Range, b: Range) => inRange(a, b.start) || inRange(a, b.end) || inRange(b, a.start) || inRange(b, a.end);

/**
 * The configured range sets (`ranges`, or the single-range `subnet` form). As LoadIPAMConfig, ranges may not
 * overlap within a set nor across sets (each set hands out one address per ADD: two sets over the same
 * addresses would give the container the same address twice).
 */
function rangeSets(cfg: IpamConfig): Range[][] {
  if (cfg.ranges !== undefined && cfg.ranges.length > 0) {
    const sets = cfg.ranges.map((set, i) => set.map((r, j) => parseRange(r, `stdin: ipam.ranges[${i}][${j}]`)));
    sets.forEach((set, i) => {
      for (let a = 0; a < set.length; a++) {
        for (let b = a + 1; b < set.length; b++) {
          if (overlaps(set[a]!, set[b]!)) throw new CniError(CniCode.INVALID_NETWORK_CONFIG, `subnets ${cfg.ranges![i]![a]!.subnet} and ${cfg.ranges![i]![b]!.subnet} overlap`, "", `stdin: ipam.ranges[${i}][${b}]`);
        }
      }
      for (let j = i + 1; j < sets.length; j++) {
        if (set.some((x) => sets[j]!.some((y) => overlaps(x, y)))) throw new CniError(CniCode.INVALID_NETWORK_CONFIG, `range set ${i} overlaps with ${j}`, "", `stdin: ipam.ranges[${j}]`);
      }
    });
    return sets;
  }
  if (cfg.subnet !== undefined) return [[parseRange({ subnet: cfg.subnet, rangeStart: cfg.rangeStart, rangeEnd: cfg.rangeEnd, gateway: cfg.gateway }, "stdin: ipam")]];
  throw new CniError(CniCode.INVALID_NETWORK_CONFIG, "no IP ranges specified", "", "stdin: ipam.ranges");
}

const setText = (set: Range[]) => set.map((r) => `${formatIpv4(r.start)}-${formatIpv4(r.end)}`).join(",");

export interface IpamResult {
  ips: CniIp[];
  routes: CniRoute[];
}

export class HostLocal {
  constructor(
    private readonly store: LeaseStore,
    private readonly network: string,
    private readonly cfg: IpamConfig,
  ) {}

  private get net() {
    const key = `${this.cfg.dataDir ?? "/var/lib/cni/networks"}/${this.network}`;
    return (this.store.networks[key] ??= { leases: {}, lastReserved: {} });
  }

  /** IPAM ADD: one address per range set (requested ones first when `requested` is given). */
  add(containerId: string, ifname: string, requested: string[] = []): IpamResult {
    const sets = rangeSets(this.cfg);
    const net = this.net;
    const ips: CniIp[] = [];
    const taken: string[] = [];
    try {
      sets.forEach((set, i) => {
        const mine = Object.entries(net.leases).find(([a, l]) => l.containerId === containerId && l.ifname === ifname && set.some((r) => inRange(r, parseIpv4(a))));
        let addr: number;
        if (mine !== undefined) addr = parseIpv4(mine[0]);
        else {
          const want = requested.map((t) => ip(t.split("/")[0]!, "runtimeConfig.ips")).find((a) => set.some((r) => inSubnet(r, a)));
          addr = want !== undefined ? this.reserveRequested(set, want) : this.reserveNext(set, i);
          net.leases[formatIpv4(addr)] = { containerId, ifname };
          taken.push(formatIpv4(addr));
        }
        const r = set.find((x) => inRange(x, addr) || inSubnet(x, addr))!;
        ips.push({ address: `${formatIpv4(addr)}/${r.len}`, gateway: formatIpv4(r.gateway) });
      });
    } catch (e) {
      // Nothing half-applied: give back what this call reserved.
      for (const a of taken) delete net.leases[a];
      throw e;
    }
    return { ips, routes: (this.cfg.routes ?? []).map((r) => ({ ...r })) };
  }

  private reserveRequested(set: Range[], want: number): number {
    const free = set.some((r) => inRange(r, want)) && want !== set.find((r) => inRange(r, want))!.gateway && this.net.leases[formatIpv4(want)] === undefined;
    if (!free) throw new CniError(CniCode.INTERNAL, `requested IP address ${formatIpv4(want)} is not available in range set ${setText(set)}`);
    return want;
  }

  /** The range-set iterator: start after last_reserved_ip, walk every range, wrap once. */
  private reserveNext(set: Range[], index: number): number {
    const net = this.net;
    const all: number[] = [];
    for (const r of set) for (let a = r.start; a <= r.end; a++) if (a !== r.gateway) all.push(a);
    const last = net.lastReserved[String(index)];
    const lastIdx = last === undefined ? -1 : all.indexOf(parseIpv4(last));
    for (let k = 1; k <= all.length; k++) {
      const a = all[(lastIdx + k) % all.length]!;
      if (net.leases[formatIpv4(a)] === undefined) {
        net.lastReserved[String(index)] = formatIpv4(a);
        return a;
      }
    }
    throw new CniError(CniCode.INTERNAL, `failed to allocate for range ${index}: no IP addresses available in range set: ${setText(set)}`);
  }

  /** IPAM DEL: release everything (containerId, ifname) holds; no error when nothing is held. */
  del(containerId: string, ifname: string): string[] {
    const net = this.net;
    const freed: string[] = [];
    for (const [a, l] of Object.entries(net.leases)) {
      if (l.containerId === containerId && l.ifname === ifname) {
        delete net.leases[a];
        freed.push(a);
      }
    }
    return freed;
  }

  /** IPAM CHECK: the container must hold an address on the network. */
  check(containerId: string, ifname: string): string[] {
    const held = Object.entries(this.net.leases).filter(([, l]) => l.containerId === containerId && l.ifname === ifname).map(([a]) => a);
    if (held.length === 0) throw new CniError(CniCode.INTERNAL, `host-local: Failed to find address added by container ${containerId}`);
    return held;
  }
}

function inRange(r: Range, a: number): boolean {
  return a >= r.start && a <= r.end;
}
function inSubnet(r: Range, a: number): boolean {
  return a > r.subnet && a < r.subnet + 2 ** (32 - r.len) - 1;
}
