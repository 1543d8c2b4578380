// The control plane's allocators, seeded so a cluster always comes out the same:
//  - Service ClusterIPs from --service-cluster-ip-range (kube-apiserver: the first address is the kubernetes
//    Service; dynamic allocations prefer the upper part of the range, leaving a low band for static IPs),
//  - NodePorts from --service-node-port-range (same static/dynamic split),
//  - node podCIDRs from --cluster-cidr (node-ipam-controller: /24 per node, in node order),
//  - pod IPs from a node's podCIDR (host-local IPAM: the .1 is the gateway, allocation starts at .2).
import { formatCidr, formatIpv4, parseCidr, parseIpv4, type Ipv4Cidr } from "../packet/addr.js";
import type { Rng } from "./rand.js";

export class AllocationError extends Error {}

/** kube-apiserver's bitmap allocator with a static band at the bottom (KEP-3070). */
class BandedAllocator {
  private readonly used = new Set<number>();
  private readonly staticBand: number;
  constructor(
    private readonly size: number,
    staticBand: number,
    private readonly rng: Rng,
  ) {
    this.staticBand = Math.min(staticBand, size);
  }

  take(offset: number): boolean {
    if (this.used.has(offset)) return false;
    this.used.add(offset);
    return true;
  }

  /** A random free offset in the dynamic band, falling back to the static band when the upper one is full. */
  next(): number {
    const tryBand = (lo: number, hi: number): number => {
      const n = hi - lo;
      if (n <= 0) return -1;
      const start = this.rng.int(n);
      for (let i = 0; i < n; i++) {
        const off = lo + ((start + i) % n);
        if (!this.used.has(off)) {
          this.used.add(off);
          return off;
        }
      }
      return -1;
    };
    const off = tryBand(this.staticBand, this.size);
    return off >= 0 ? off : tryBand(0, this.staticBand);
  }
}

function staticBandSize(size: number, divisor: number, min: number, max: number): number {
  return Math.min(Math.max(min, Math.floor(size / divisor)), max);
}

export class ServiceIPAllocator {
  readonly cidr: Ipv4Cidr;
  private readonly alloc: BandedAllocator;
  private readonly base: number;
  private readonly size: number;
  constructor(cidrText: string, rng: Rng) {
    this.cidr = parseCidr(cidrText);
    // Network and broadcast addresses are never handed out.
    this.base = this.cidr.addr + 1;
    this.size = Math.max(0, 2 ** (32 - this.cidr.len) - 2);
    this.alloc = new BandedAllocator(this.size, staticBandSize(this.size, 16, 16, 256), rng);
  }

  /** The kubernetes.default Service's address: the first IP of the range. */
  get kubernetesServiceIP(): string {
    return formatIpv4(this.base);
  }

  allocate(ip: string): void {
    const n = parseIpv4(ip);
    const off = n - this.base;
    if (off < 0 || off >= this.size) {
      throw new AllocationError(`Invalid value: "${ip}": provided IP is not in the valid range. The range of valid IPs is ${formatCidr(this.cidr)}`);
    }
    if (!this.alloc.take(off)) throw new AllocationError(`Invalid value: "${ip}": provided IP is already allocated`);
  }

  next(): string {
    const off = this.alloc.next();
    if (off < 0) throw new AllocationError(`Internal error: failed to allocate a serviceIP: range is full`);
    return formatIpv4(this.base + off);
  }
}

export class NodePortAllocator {
  private readonly alloc: BandedAllocator;
  constructor(
    readonly min = 30000,
    readonly max = 32767,
    rng: Rng,
  ) {
    const size = max - min + 1;
    this.alloc = new BandedAllocator(size, staticBandSize(size, 32, 16, 128), rng);
  }

  allocate(port: number): void {
    if (port < this.min || port > this.max) {
      throw new AllocationError(`Invalid value: ${port}: provided port is not in the valid range. The range of valid ports is ${this.min}-${this.max}`);
    }
    if (!this.alloc.take(port - this.min)) throw new AllocationError(`Invalid value: ${port}: provided port is already allocated`);
  }

  next(): number {
    const off = this.alloc.next();
    if (off < 0) throw new AllocationError(`Internal error: failed to allocate a nodePort: range is full`);
    return this.min + off;
  }
}

/** node-ipam-controller's range allocator: consecutive /maskSize blocks of the cluster CIDR. */
export class PodCIDRAllocator {
  private readonly cidr: Ipv4Cidr;
  private readonly used = new Set<number>();
  constructor(
    clusterCIDR: string,
    private readonly maskSize = 24,
  ) {
    this.cidr = parseCidr(clusterCIDR);
    if (maskSize < this.cidr.len) throw new AllocationError(`node CIDR mask /${maskSize} is larger than the cluster CIDR ${clusterCIDR}`);
  }

  occupy(podCIDR: string): void {
    this.used.add(parseCidr(podCIDR).addr);
  }

  next(): string {
    const step = 2 ** (32 - this.maskSize);
    const count = 2 ** (this.maskSize - this.cidr.len);
    for (let i = 0; i < count; i++) {
      const addr = (this.cidr.addr + i * step) >>> 0;
      if (!this.used.has(addr)) {
        this.used.add(addr);
        return formatCidr({ addr, len: this.maskSize });
      }
    }
    throw new AllocationError(`no remaining CIDRs in ${formatCidr(this.cidr)} for a node`);
  }
}

/** host-local IPAM over one node's podCIDR: gateway .1 reserved, sequential from .2, broadcast excluded. */
export class HostLocalIpam {
  private readonly cidr: Ipv4Cidr;
  private readonly used = new Set<number>();
  private cursor: number;
  constructor(podCIDR: string) {
    this.cidr = parseCidr(podCIDR);
    this.used.add(this.cidr.addr + 1); // the gateway (bridge) address
    this.cursor = this.cidr.addr + 2;
  }

  occupy(ip: string): void {
    this.used.add(parseIpv4(ip));
  }

  next(): string {
    const last = this.cidr.addr + 2 ** (32 - this.cidr.len) - 2;
    for (let ip = this.cursor; ip <= last; ip++) {
      if (!this.used.has(ip)) {
        this.used.add(ip);
        this.cursor = ip + 1;
        return formatIpv4(ip);
      }
    }
    throw new AllocationError(`no IP addresses available in range set: ${formatCidr(this.cidr)}`);
  }
}
