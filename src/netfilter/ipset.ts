// ipset sets as the `set` match reads them (kernel net/netfilter/ipset: ip_set_hash_ip, ip_set_hash_ipport,
// ip_set_hash_ipportip, ip_set_bitmap_port), with members compiled to numbers once; printing like `ipset save`.
//
// A member test takes the packet's fields chosen by the match's direction flags (`dst,dst` = destination address,
// destination port), as xt_set's ip_set_test does with the flags per dimension. hash:ip,port members carry a
// protocol (`10.96.0.1,tcp:443`); only TCP, UDP and SCTP have ports (kernel ip_set_get_ip4_port; other protocols
// are stored with port 0, ICMP not modelled). A member is a key of up to three 32-bit words (address; protocol
// class and port; third address) in an open-addressing index over plain arrays (KeyIndex), so a test is a hash
// and a probe or two: no strings, no number boxed for a Set or Map lookup, no typed-array loads.
// hash:ip,port,net (ip_set_hash_ipportnet; kube-proxy's KUBE-LOAD-BALANCER-SOURCE-CIDR): the third dimension is a
// network: stored with its host bits cleared, /1../32 (the kernel refuses /0), printed without "/32"; a test
// matches when the address falls in any stored network of the ip,port key.
// Not modelled: the other hash:net variants, nomatch entries, timeouts, counters, skbinfo, hashsize/maxelem, IPv6.
import { formatIpv4, parseIpv4 } from "../packet/addr.js";
import { NetfilterError } from "./errors.js";

export type IpSetType = "hash:ip" | "hash:ip,port" | "hash:ip,port,ip" | "hash:ip,port,net" | "bitmap:port";
export const IPSET_TYPES: IpSetType[] = ["hash:ip", "hash:ip,port", "hash:ip,port,ip", "hash:ip,port,net", "bitmap:port"];

const PROTO_BY_NAME: Record<string, number> = { tcp: 6, udp: 17, sctp: 132 };


/** A hash:ip,port member's second word: protocol class (tcp 0, udp 1, sctp 2, other 3) × 65536 + port (0 for other). */
function portKey(proto: number, port: number): number {
  return proto === 6 ? port : proto === 17 ? 65536 + port : proto === 132 ? 131072 + port : 196608;
}

/**
 * Keys of three int32 words → a small integer value, by open addressing (linear probing, at most half full,
 * deleted keys left as tombstones until the next rehash).
 */
export class KeyIndex {
  private mask = 15;
  /**
   * Per slot, four int32 words side by side, 16 bytes (a probe reads one cache line, not four arrays): the value
   * (-1: empty, -2: deleted, which a lookup probes past), then the key's words. (A plain array of doubles took
   * 32 bytes a slot, a slot then straddling two cache lines one time in two, and twice the memory: at 10k
   * Services each index of kube-proxy's sets and IPVS's services was 1 MiB.)
   */
  private s: Int32Array = KeyIndex.slots(16);
  private count = 0;

  private static slots(n: number): Int32Array {
    const s = new Int32Array(4 * n);
    for (let i = 0; i < s.length; i += 4) s[i] = -1;
    return s;
  }

  private static slot(a: number, b: number, c: number, mask: number): number {
    let h = Math.imul(a ^ Math.imul(b ^ Math.imul(c, 0x27d4eb2f), 0x9e3779b1), 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 15), 0xc2b2ae35);
    return (h ^ (h >>> 13)) & mask;
  }

  /** Where (a, b, c) is stored (an index into `s`), or -1. */
  private find(a: number, b: number, c: number): number {
    a |= 0;
    b |= 0;
    c |= 0;
    const mask = this.mask;
    const s = this.s;
    for (let i = KeyIndex.slot(a, b, c, mask); ; i = (i + 1) & mask) {
      const o = i << 2;
      const v = s[o]!;
      if (v === -1) return -1;
      if (v >= 0 && s[o + 1] === a && s[o + 2] === b && s[o + 3] === c) return o;
    }
  }

  /** The value stored for (a, b, c) (int32 words), or -1. */
  get(a: number, b: number, c: number): number {
    const o = this.find(a, b, c);
    return o < 0 ? -1 : this.s[o]!;
  }

  /** Remove (a, b, c) if present. */
  delete(a: number, b: number, c: number): void {
    const o = this.find(a, b, c);
    if (o >= 0) this.s[o] = -2;
  }

  /** Store (a, b, c) → v (≥ 0) unless present; returns the value now stored. */
  add(a: number, b: number, c: number, v: number): number {
    const old = this.get(a, b, c);
    if (old >= 0) return old;
    if (2 * (this.count + 1) > this.mask + 1) this.rehash(2 * (this.mask + 1));
    const mask = this.mask;
    let i = KeyIndex.slot(a, b, c, mask);
    while (this.s[i << 2] !== -1) i = (i + 1) & mask;
    const o = i << 2;
    this.s[o] = v;
    this.s[o + 1] = a; // (int32 words: the array keeps them as find compares them)
    this.s[o + 2] = b;
    this.s[o + 3] = c;
    this.count++;
    return v;
  }

  private rehash(size: number): void {
    const old = this.s;
    this.mask = size - 1;
    this.s = KeyIndex.slots(size);
    this.count = 0;
    for (let o = 0; o < old.length; o += 4) if (old[o]! >= 0) this.add(old[o + 1]!, old[o + 2]!, old[o + 3]!, old[o]!);
  }
}

const enum Kind { IP, IP_PORT, IP_PORT_IP, IP_PORT_NET, BITMAP_PORT }
const KIND: Record<IpSetType, Kind> = {
  "hash:ip": Kind.IP, "hash:ip,port": Kind.IP_PORT, "hash:ip,port,ip": Kind.IP_PORT_IP, "hash:ip,port,net": Kind.IP_PORT_NET,
  "bitmap:port": Kind.BITMAP_PORT,
};

export class IpSet {
  /**
   * Members as (address, portKey, third address) int32 words, unused ones 0: hash:ip (a, 0, 0), hash:ip,port
   * (a, pk, 0), hash:ip,port,ip (a, pk, b), all with value 0; hash:ip,port,net (a, pk, 0) → its index in `nets`.
   */
  private readonly keys = new KeyIndex();
  /** hash:ip,port,net: per ip,port key, [network, mask, network, mask, ...]. */
  private readonly nets: number[][] = [];
  private readonly kind: Kind;
  /** bitmap:port: one byte per port. */
  private readonly bitmap: Uint8Array | null;
  /** Members in insertion order, as `ipset save` prints them after sorting (setup only). */
  private readonly printed: string[] = [];
  /** The same entries, for the duplicate check (a scan of `printed` per add made filling a set quadratic). */
  private readonly printedSet = new Set<string>();

  constructor(readonly name: string, readonly type: IpSetType, readonly comment = "") {
    this.bitmap = type === "bitmap:port" ? new Uint8Array(65536) : null;
    this.kind = KIND[type];
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
      const ip = parseAddr(parts[0]!, bad) | 0;
      if (this.type === "hash:ip") this.keys.add(ip, 0, 0, 0);
      else {
        const m = /^(tcp|udp|sctp):(\d+)$/.exec(parts[1]!);
        if (!m || Number(m[2]) > 65535) throw bad();
        const pk = portKey(PROTO_BY_NAME[m[1]!]!, Number(m[2]));
        if (this.type === "hash:ip,port") this.keys.add(ip, pk, 0, 0);
        else if (this.type === "hash:ip,port,net") {
          const [addr, len] = parts[2]!.split("/");
          const bits = len === undefined ? 32 : /^\d+$/.test(len) ? Number(len) : -1;
          // hash_ipportnet4_uadt: a CIDR of 0 or above 32 is IPSET_ERR_INVALID_CIDR.
          if (bits < 1 || bits > 32) throw bad();
          const mask = bits === 32 ? 0xffffffff : ~(0xffffffff >>> bits) >>> 0;
          const net = (parseAddr(addr!, bad) & mask) >>> 0;
          const l = this.nets[this.keys.add(ip, pk, 0, this.nets.length)] ?? (this.nets[this.nets.length] = []);
          for (let i = 0; i < l.length; i += 2) if (l[i] === net && l[i + 1] === mask) return;
          l.push(net, mask);
          const text = `${parts[0]},${parts[1]},${formatIpv4(net)}${bits === 32 ? "" : `/${bits}`}`;
          this.printed.push(text);
          this.printedSet.add(text);
          return;
        } else this.keys.add(ip, pk, parseAddr(parts[2]!, bad) | 0, 0);
      }
    }
    if (!this.printedSet.has(entry)) {
      this.printedSet.add(entry);
      this.printed.push(entry);
    }
  }

  /** Per packet: hash:ip / bitmap:port use `a` (address or port); hash:ip,port uses a, proto, port; ,ip adds `b`. */
  test(a: number, proto: number, port: number, b: number): boolean {
    const kind = this.kind;
    if (kind === Kind.IP) return this.keys.get(a | 0, 0, 0) >= 0;
    // bitmap:port takes the port of TCP, UDP or SCTP packets only.
    if (kind === Kind.BITMAP_PORT) return (proto === 6 || proto === 17 || proto === 132) && this.bitmap![port] === 1;
    const pk = portKey(proto, port);
    if (kind === Kind.IP_PORT) return this.keys.get(a | 0, pk, 0) >= 0;
    if (kind === Kind.IP_PORT_IP) return this.keys.get(a | 0, pk, b | 0) >= 0;
    const k = this.keys.get(a | 0, pk, 0);
    if (k < 0) return false;
    const l = this.nets[k]!;
    for (let i = 0; i < l.length; i += 2) if (((b & l[i + 1]!) >>> 0) === l[i]) return true;
    return false;
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

