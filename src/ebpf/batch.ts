// A batch of packets in shared memory: the bytes back to back in the packet arena, one sk_buff context each.
// The host fills it, a program's batch runner processes all of it in one call, and the host reads back each
// verdict and the (possibly rewritten) bytes in place. Nothing here allocates per packet.
import {
  BATCH_MAX, CTX_BASE, CTX_SIZE, PKT_ARENA, PKT_BASE, SKB_CAPACITY, SKB_CB, SKB_DATA, SKB_DATA_END, SKB_DROP_REASON, SKB_IFINDEX,
  SKB_INGRESS_IFINDEX, SKB_LEN, SKB_MARK, SKB_PROTOCOL, SKB_REDIRECT_FLAGS, SKB_REDIRECT_IFINDEX, SKB_RETVAL,
  SKB_WIRE_LEN, TRAP_NONE,
} from "./abi.js";
import { BpfError } from "./errors.js";
import type { SharedMemory } from "./memory.js";

export interface PacketMeta {
  /** The device the hook runs on (skb->ifindex). */
  ifindex?: number;
  /** The device the packet arrived on (skb->ingress_ifindex; 0 on egress). */
  ingressIfindex?: number;
  mark?: number;
  /** skb->cb[0..4] (what an earlier hook or a test hands the program). */
  cb?: readonly number[];
}

export class PacketBatch {
  /** Packets in the batch. */
  length = 0;
  /** Per packet: TRAP_* why the program was stopped (0 = ran to completion). */
  readonly traps = new Uint8Array(BATCH_MAX);
  private cursor: number;
  /** Contexts and packets of this batch: at lane + CTX_BASE and lane + PKT_BASE. */
  private readonly ctx: number;
  private readonly pkt: number;

  /** `lane`: the base address of a worker's lane (lanes.ts), 0 for the kernel's own contexts and arena. */
  constructor(
    readonly mem: SharedMemory,
    readonly lane = 0,
  ) {
    this.ctx = lane + CTX_BASE;
    this.pkt = lane + PKT_BASE;
    this.cursor = this.pkt;
  }

  reset(): void {
    this.length = 0;
    this.cursor = this.pkt;
    this.traps.fill(0);
  }

  get full(): boolean {
    return this.length >= BATCH_MAX;
  }

  /** Room left in the arena for packet bytes. */
  get room(): number {
    return this.pkt + PKT_ARENA - this.cursor;
  }

  /** Append a packet (copied into the arena); returns its index. */
  add(bytes: Uint8Array, meta?: PacketMeta): number {
    const i = this.length;
    if (i >= BATCH_MAX) throw new BpfError(`batch full (${BATCH_MAX} packets)`, "batch");
    const len = bytes.length;
    if (this.cursor + len > this.pkt + PKT_ARENA) throw new BpfError(`packet of ${len} bytes does not fit the arena`, `batch: packet ${i}`);
    const data = this.cursor;
    const mem = this.mem;
    mem.u8.set(bytes, data);
    this.cursor = (data + len + 7) & ~7;
    this.setContext(i, data, len, meta);
    this.traps[i] = TRAP_NONE;
    this.length = i + 1;
    return i;
  }

  /** (Re)initialise context `i` for `len` bytes at `data`: what the kernel's skb carries into the hook. */
  setContext(i: number, data: number, len: number, meta?: PacketMeta): void {
    const u32 = this.mem.u32;
    const c = (this.ctx + i * CTX_SIZE) >>> 2;
    u32.fill(0, c, c + (CTX_SIZE >>> 2));
    u32[c + (SKB_LEN >>> 2)] = len;
    u32[c + (SKB_WIRE_LEN >>> 2)] = len;
    u32[c + (SKB_DATA >>> 2)] = data;
    u32[c + (SKB_DATA_END >>> 2)] = data + len;
    u32[c + (SKB_CAPACITY >>> 2)] = len;
    // skb->protocol: the EtherType in network order, as eth_type_trans() sets it.
    const u8 = this.mem.u8;
    u32[c + (SKB_PROTOCOL >>> 2)] = len >= 14 ? u8[data + 12]! | (u8[data + 13]! << 8) : 0;
    if (meta) {
      u32[c + (SKB_IFINDEX >>> 2)] = meta.ifindex ?? 0;
      u32[c + (SKB_INGRESS_IFINDEX >>> 2)] = meta.ingressIfindex ?? 0;
      u32[c + (SKB_MARK >>> 2)] = meta.mark ?? 0;
      if (meta.cb) for (let k = 0; k < 5 && k < meta.cb.length; k++) u32[c + (SKB_CB >>> 2) + k] = meta.cb[k]! >>> 0;
    }
  }

  ctxAddr(i: number): number {
    return this.ctx + i * CTX_SIZE;
  }
  retval(i: number): number {
    return this.mem.i32[(this.ctx + i * CTX_SIZE + SKB_RETVAL) >>> 2]!;
  }
  setRetval(i: number, v: number): void {
    this.mem.i32[(this.ctx + i * CTX_SIZE + SKB_RETVAL) >>> 2] = v;
  }
  field(i: number, off: number): number {
    return this.mem.u32[(this.ctx + i * CTX_SIZE + off) >>> 2]!;
  }
  redirectIfindex(i: number): number {
    return this.field(i, SKB_REDIRECT_IFINDEX);
  }
  redirectFlags(i: number): number {
    return this.field(i, SKB_REDIRECT_FLAGS);
  }
  dropReason(i: number): number {
    return this.field(i, SKB_DROP_REASON);
  }
  mark(i: number): number {
    return this.field(i, SKB_MARK);
  }
  /** A view of packet `i`'s bytes as the program left them (valid until the batch is reset). */
  packet(i: number): Uint8Array {
    const data = this.field(i, SKB_DATA);
    return this.mem.u8.subarray(data, data + this.field(i, SKB_LEN));
  }
}
