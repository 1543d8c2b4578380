// calico-ipam (projectcalico/calico ipam/): the IP pool is cut into blocks (blockSize 26 = 64 addresses); a node
// claims a block (block affinity) and hands out its ordinals in order, claiming another block when its blocks
// are full. Each node advertises its blocks over BGP and installs a blackhole route for each, so addresses of a
// block that are not in use go nowhere instead of following a less specific route. Handles are
// `k8s-pod-network.<containerId>`; an ADD for a handle that already holds an address returns it.
// Model choice: a node first claims free blocks inside the hint it is given (the builders pass the node's
// podCIDR so each node's pods stay in the /24 other generations use), then any free block of the pool in order
// (upstream picks free blocks in pool order too, subject to node selectors on pools).
import { formatCidr, formatIpv4, parseCidr } from "../../packet/addr.js";
import { CniCode, CniError } from "./types.js";

export interface CalicoBlock {
  cidr: string;
  /** Node holding the block's affinity. */
  node: string;
  /** ordinal -> handle */
  used: Record<string, string>;
}

export interface CalicoIpamState {
  blocks: CalicoBlock[];
}

export interface CalicoIpamConfig {
  pool: string;
  blockSize: number;
  node: string;
  hint?: string;
}

export const handleOf = (containerId: string) => `k8s-pod-network.${containerId}`;

export function calicoAssign(state: CalicoIpamState, cfg: CalicoIpamConfig, containerId: string): string {
  const handle = handleOf(containerId);
  for (const b of state.blocks) {
    for (const [ord, h] of Object.entries(b.used)) if (h === handle) return formatIpv4(parseCidr(b.cidr).addr + Number(ord));
  }
  const size = 2 ** (32 - cfg.blockSize);
  for (const b of state.blocks) {
    if (b.node !== cfg.node) continue;
    for (let o = 0; o < size; o++) {
      if (b.used[String(o)] === undefined) {
        b.used[String(o)] = handle;
        return formatIpv4(parseCidr(b.cidr).addr + o);
      }
    }
  }
  const b = claimBlock(state, cfg);
  b.used["0"] = handle;
  return formatIpv4(parseCidr(b.cidr).addr);
}

function claimBlock(state: CalicoIpamState, cfg: CalicoIpamConfig): CalicoBlock {
  const pool = parseCidr(cfg.pool);
  if (cfg.blockSize < pool.len) throw new CniError(CniCode.INVALID_NETWORK_CONFIG, `block size /${cfg.blockSize} is larger than pool ${cfg.pool}`, "", "stdin: ipam.blockSize");
  const size = 2 ** (32 - cfg.blockSize);
  const count = 2 ** (cfg.blockSize - pool.len);
  const taken = new Set(state.blocks.map((b) => b.cidr));
  // The pool's blocks in order, those within the hint first. Walked by index and stopped at the first free one,
  // so a large pool (a /0 holds 2^30 /30 blocks) costs no more than the blocks already taken.
  const hint = cfg.hint !== undefined ? parseCidr(cfg.hint) : null;
  let lo = 0;
  let hi = 0;
  if (hint !== null && hint.len <= cfg.blockSize) {
    lo = Math.max(0, Math.ceil((hint.addr - pool.addr) / size));
    hi = Math.min(count, Math.floor((hint.addr + 2 ** (32 - hint.len) - pool.addr) / size));
  }
  const free = (i: number): CalicoBlock | null => {
    const cidr = formatCidr({ addr: (pool.addr + i * size) >>> 0, len: cfg.blockSize });
    return taken.has(cidr) ? null : { cidr, node: cfg.node, used: {} };
  };
  let b: CalicoBlock | null = null;
  for (let i = lo; i < hi && b === null; i++) b = free(i);
  for (let i = 0; i < count && b === null; i++) if (i < lo || i >= hi) b = free(i);
  if (b !== null) {
    state.blocks.push(b);
    return b;
  }
  throw new CniError(CniCode.INTERNAL, `failed to request IPv4 addresses: no more free affine blocks in pool ${cfg.pool}`);
}

export function calicoRelease(state: CalicoIpamState, containerId: string): void {
  const handle = handleOf(containerId);
  for (const b of state.blocks) for (const [o, h] of Object.entries(b.used)) if (h === handle) delete b.used[o];
}

/** The blocks affine to `node` (each becomes a blackhole route on it and a BGP route elsewhere). */
export function nodeBlocks(state: CalicoIpamState, node: string): string[] {
  return state.blocks.filter((b) => b.node === node).map((b) => b.cidr);
}
