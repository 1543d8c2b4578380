// The kernel's one WebAssembly.Memory, shared by every program and map, and the allocator of its regions.
// Views are re-created when the memory grows (growing detaches the old ArrayBuffer).
import { HEAP_BASE, WASM_PAGE } from "./abi.js";
import { BpfError } from "./errors.js";
import { Wasm, type WasmMemory } from "./wasm-api.js";

export interface Region {
  start: number;
  end: number;
  owner: string;
}

const MAX_PAGES = 65536; // 4 GiB: the wasm32 limit
/**
 * The maximum of a shared memory (it must have one; the engine reserves it up front): 1 GiB, also the
 * maximum programs built for a shared memory declare (compile.ts).
 */
export const SHARED_MAX_PAGES = 16384;

export class SharedMemory {
  readonly memory: WasmMemory;
  u8!: Uint8Array;
  dv!: DataView;
  u32!: Uint32Array;
  i32!: Int32Array;
  private buffer!: ArrayBuffer;
  /** Allocated regions above HEAP_BASE and reserved ones anywhere, sorted by start. */
  private regions: Region[] = [];

  /** Whether the memory is a shared WebAssembly.Memory (worker threads): map writers then take map locks. */
  readonly shared: boolean;

  /**
   * A new memory (`shared`: a shared one, for worker threads), or a view of an existing one (`memory`: a worker's
   * view of the kernel's shared memory; it allocates nothing).
   */
  constructor(initialPages = HEAP_BASE / WASM_PAGE + 16, opts: { shared?: boolean; memory?: WasmMemory } = {}) {
    this.shared = opts.shared === true || (opts.memory !== undefined && isShared(opts.memory));
    this.memory =
      opts.memory ?? (this.shared ? new Wasm.Memory({ initial: initialPages, maximum: SHARED_MAX_PAGES, shared: true }) : new Wasm.Memory({ initial: initialPages, maximum: MAX_PAGES }));
    this.refresh();
  }

  /** Re-create the views if the memory grew. Cheap: call before any host access that may follow a grow. */
  refresh(): void {
    if (this.buffer === this.memory.buffer) return;
    this.buffer = this.memory.buffer;
    this.u8 = new Uint8Array(this.buffer);
    this.dv = new DataView(this.buffer);
    this.u32 = new Uint32Array(this.buffer);
    this.i32 = new Int32Array(this.buffer);
  }

  get size(): number {
    return this.memory.buffer.byteLength;
  }

  ensure(end: number): void {
    if (end > this.size) {
      const pages = Math.ceil((end - this.size) / WASM_PAGE);
      if (this.size / WASM_PAGE + pages > (this.shared ? SHARED_MAX_PAGES : MAX_PAGES)) throw new BpfError(`out of memory: ${end} bytes needed`, "kernel");
      this.memory.grow(pages);
    }
    this.refresh();
  }

  /** The lowest free address >= HEAP_BASE with `size` bytes free, aligned to `align`; not reserved yet. */
  findFree(size: number, align = 64): number {
    let at = HEAP_BASE;
    for (const r of this.regions) {
      if (r.end <= at) continue;
      if (r.start >= at + size) break;
      at = Math.ceil(r.end / align) * align;
    }
    return at;
  }

  alloc(size: number, owner: string, align = 64): number {
    const at = this.findFree(size, align);
    // Pages memory.grow adds are zero (WebAssembly guarantees it): clear only what existed before this call.
    const existed = this.size;
    this.reserve(at, at + size, owner);
    if (at < existed) this.u8.fill(0, at, Math.min(at + size, existed));
    return at;
  }

  /** Claim [start, end) for `owner`; throws naming the current owner if any part is taken. */
  reserve(start: number, end: number, owner: string): void {
    const clash = this.regions.find((r) => r.start < end && start < r.end);
    if (clash) throw new BpfError(`memory [0x${start.toString(16)}, 0x${end.toString(16)}) overlaps ${clash.owner}`, owner);
    this.ensure(end);
    const r = { start, end, owner };
    const i = this.regions.findIndex((x) => x.start > start);
    if (i < 0) this.regions.push(r);
    else this.regions.splice(i, 0, r);
  }

  isFree(start: number, end: number): Region | undefined {
    return this.regions.find((r) => r.start < end && start < r.end);
  }

  free(start: number): void {
    const i = this.regions.findIndex((r) => r.start === start);
    if (i >= 0) this.regions.splice(i, 1);
  }

  list(): readonly Region[] {
    return this.regions;
  }
}

function isShared(m: WasmMemory): boolean {
  return Object.prototype.toString.call(m.buffer) === "[object SharedArrayBuffer]";
}
