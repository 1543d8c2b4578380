// ipset sets as the `set` match reads them (kernel net/netfilter/ipset: ip_set_hash_ip, ip_set_hash_ipport,
// ip_set_hash_ipportip, ip_set_bitmap_port), with members compiled to numbers once; printing like `ipset save`.
//
// A member test takes the packet's fields chosen by the match's direction flags (`dst,dst` = destination address,
// destination port), as xt_set's ip_set_test does with the flags per dimension. hash:ip,port members carry a
// protocol (`10.96.0.1,tcp:443`); only TCP, UDP and SCTP have ports (kernel ip_set_get_ip4_port; other protocols
// are stored with port 0, ICMP not modelled). Keys fold ip, protocol class and port into one exact double
// (32 + 2 + 16 bits), so a test is one Set lookup without strings or allocation.
// hash:ip,port,net (ip_set_hash_ipportnet; kube-proxy's KUBE-LOAD-BALANCER-SOURCE-CIDR): the third dimension is a
// network: stored with its host bits cleared, /1../32 (the kernel refuses /0), printed without "/32"; a test
// matches when the address falls in any stored network of the ip,port key.
// Not modelled: the other hash:net variants, nomatch entries, timeouts, counters, skbinfo, hashsize/maxelem, IPv6.
import { formatIpv4, parseIpv4 } from "../packet/addr.js";
import { NetfilterError } from "./errors.js";

export type IpSetType = "hash:ip" | "hash:ip,port" | "hash:ip,port,ip" | "hash:ip,port,net" | "bitmap:port";
export const IPSET_TYPES: IpSetType[] = ["hash:ip", "hash:ip,port", "hash:ip,port,ip", "hash:ip,port,net", "bitmap:port"];

const PROTO_CLASS: Record<number, number> = { 6: 0, 17: 1, 132: 2 };
const PROTO_BY_NAME: Record<string, number> = { tcp: 6, udp: 17, sctp: 132 };


/** ip, protocol class (tcp 0, udp 1, sctp 2, other 3) and port as one integer below 2^50. */
export function ipPortKey(ip: number, proto: number, port: number): number {
  const cls = PROTO_CLASS[proto] ?? 3;
  return (ip >>> 0) * 262144 + cls * 65536 + (cls === 3 ? 0 : port);
}

export class IpSet {
  /** hash:ip members and hash:ip,port keys (ipPortKey). */
  private readonly keys = new Set<number>();
  /** hash:ip,port,ip: ip,port key → the set of third-dimension addresses. */
  private readonly triples = new Map<number, Set<number>>();
  /** hash:ip,port,net: ip,port key → [network, mask, network, mask, ...]. */
  private readonly nets = new Map<number, number[]>();
  /** bitmap:port: one byte per port. */
  private readonly bitmap: Uint8Array | null;
  /** Members in insertion order, as `ipset save` prints them after sorting (setup only). */
  private readonly printed: string[] = [];
  /** The same entries, for the duplicate check (a scan of `printed` per add made filling a set quadratic). */
  private readonly printedSet = new Set<string>();

  constructor(readonly name: string, readonly type: IpSetType, readonly comment = "") {
    this.bitmap = type === "bitmap:port" ? new Uint8Array(65536) : null;
  }

  /** Number of dimensions the match's flags must give (kernel: set->type->dimension). */
  get dimension(): number {
    return this.type === "hash:ip" || this.type === "bitmap:port" ? 1 : this.type === "hash:ip,port" ? 2 : 3;
  }

  /** `ipset add NAME ENTRY`: "1.2.3.4", "1.2.3.4,tcp:80", "1.2.3.4,tcp:80,5.6.7.8", "1.2.3.4,tcp:80,10.0.0.0/8" or "30000". */
  add(entry: string): void {
    const bad = () => new NetfilterError(`ipset ${this.name}: bad entry "${entry}" for ${this.type}`, this.name);
    if (this.type === "bitmap:port") {
      const port = Number(entry);
      if (!Number.isInteger(port) || port < 0 || port > 65535) throw bad();
      this.bitmap![port] = 1;
    } else {
      const parts = entry.split(",");
      if (parts.length !== this.dimension) throw bad();
      const ip = parseAddr(parts[0]!, bad);
      if (this.type === "hash:ip") this.keys.add(ip);
      else {
        const m = /^(tcp|udp|sctp):(\d+)$/.exec(parts[1]!);
        if (!m || Number(m[2]) > 65535) throw bad();
        const key = ipPortKey(ip, PROTO_BY_NAME[m[1]!]!, Number(m[2]));
        if (this.type === "hash:ip,port") this.keys.add(key);
        else if (this.type === "hash:ip,port,net") {
          const [addr, len] = parts[2]!.split("/");
          const bits = len === undefined ? 32 : /^\d+$/.test(len) ? Number(len) : -1;
          // hash_ipportnet4_uadt: a CIDR of 0 or above 32 is IPSET_ERR_INVALID_CIDR.
          if (bits < 1 || bits > 32) throw bad();
          const mask = bits === 32 ? 0xffffffff : ~(0xffffffff >>> bits) >>> 0;
          const net = (parseAddr(addr!, bad) & mask) >>> 0;
          let l = this.nets.get(key);
          if (!l) this.nets.set(key, (l = []));
          for (let i = 0; i < l.length; i += 2) if (l[i] === net && l[i + 1] === mask) return;
          l.push(net, mask);
          const text = `${parts[0]},${parts[1]},${formatIpv4(net)}${bits === 32 ? "" : `/${bits}`}`;
          this.printed.push(text);
          this.printedSet.add(text);
          return;
        } else {
          let s = this.triples.get(key);
          if (!s) this.triples.set(key, (s = new Set()));
          s.add(parseAddr(parts[2]!, bad));
        }
      }
    }
    if (!this.printedSet.has(entry)) {
      this.printedSet.add(entry);
      this.printed.push(entry);
    }
  }

  /** Per packet: hash:ip / bitmap:port use `a` (address or port); hash:ip,port uses a, proto, port; ,ip adds `b`. */
  test(a: number, proto: number, port: number, b: number): boolean {
    switch (this.type) {
      case "hash:ip":
        return this.keys.has(a >>> 0);
      case "bitmap:port":
        // bitmap:port takes the port of TCP, UDP or SCTP packets only.
        return PROTO_CLASS[proto] !== undefined && this.bitmap![port] === 1;
      case "hash:ip,port":
        return this.keys.has(ipPortKey(a, proto, port));
      case "hash:ip,port,ip": {
        const s = this.triples.get(ipPortKey(a, proto, port));
        return s !== undefined && s.has(b >>> 0);
      }
      case "hash:ip,port,net": {
        const l = this.nets.get(ipPortKey(a, proto, port));
        if (l === undefined) return false;
        for (let i = 0; i < l.length; i += 2) if (((b & l[i + 1]!) >>> 0) === l[i]) return true;
        return false;
      }
    }
  }

  get size(): number {
    return this.printed.length;
  }

  /** `ipset save` lines for this set: create, then its members (sorted as a reader expects; the kernel's hash order is not modelled). */
  save(): string[] {
    const create =
      this.type === "bitmap:port"
        ? `create ${this.name} bitmap:port range 0-65535`
        : `create ${this.name} ${this.type} family inet hashsize 1024 maxelem 65536`;
    return [create, ...[...this.printed].sort(compareEntries).map((e) => `add ${this.name} ${e}`)];
  }
}

function parseAddr(text: string, bad: () => Error): number {
  try {
    return parseIpv4(text);
  } catch {
    throw bad();
  }
}

function compareEntries(a: string, b: string): number {
  const ka = entryKey(a);
  const kb = entryKey(b);
  for (let i = 0; i < Math.max(ka.length, kb.length); i++) {
    const d = (ka[i] ?? 0) - (kb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

function entryKey(e: string): number[] {
  return e.split(/[,:/]/).map((p) => (/^\d+\.\d+\.\d+\.\d+$/.test(p) ? parseIpv4(p) : PROTO_BY_NAME[p] ?? Number(p)));
}

/** The sets of one network namespace, by name (what `-m set --match-set NAME` refers to). */
export class IpSetRegistry {
  readonly sets = new Map<string, IpSet>();
  create(name: string, type: IpSetType, comment = ""): IpSet {
    if (this.sets.has(name)) throw new NetfilterError(`ipset: set with the same name already exists`, name);
    const s = new IpSet(name, type, comment);
    this.sets.set(name, s);
    return s;
  }
  get(name: string): IpSet | undefined {
    return this.sets.get(name);
  }
  /** `ipset save` for every set, in creation order. */
  save(): string {
    return [...this.sets.values()].flatMap((s) => s.save()).join("\n") + (this.sets.size ? "\n" : "");
  }
}

