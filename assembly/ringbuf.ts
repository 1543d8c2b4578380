// BPF_MAP_TYPE_RINGBUF (kernel/bpf/ringbuf.c), program side. Records are 8-byte aligned with an 8-byte header
// (length plus the busy and discard bits). The kernel maps the data area twice so a record may wrap; one linear
// memory cannot, so a record that would cross the end is preceded by a discarded filler record up to the end,
// which consumers skip as they skip any discarded record. The host consumes (src/ebpf/maps/ringbuf.ts).
import { EAGAIN, EINVAL } from "./errno";
import { BPF_MAP_TYPE_RINGBUF, M_TYPE, RB_BUSY_BIT, RB_CONSUMER, RB_DATA, RB_DISCARD_BIT, RB_DROPPED, RB_HDR_SIZE, RB_MASK, RB_PRODUCER } from "./map_layout";
import { MapRef, map_lock, map_unlock, PIN_NONE } from "./maps";

export const BPF_RB_NO_WAKEUP: u64 = 1 << 0;
export const BPF_RB_FORCE_WAKEUP: u64 = 1 << 1;

// @ts-ignore: decorator
@external("tcbox", "map_create")
declare function __map_create(type: u32, key_size: u32, value_size: u32, max_entries: u32, map_flags: u32, name: string, pinning: u32, key_type: string, value_type: string): usize;

/** Declare a ring buffer of `size` bytes (a power of two and a multiple of the 4096-byte page). */
// @ts-ignore: decorator
@inline export function ringbuf_def(size: u32, name: string, pinning: u32 = PIN_NONE): MapRef {
  return __map_create(BPF_MAP_TYPE_RINGBUF, 0, 0, size, 0, name, pinning, "", "");
}

/** Reserve `size` bytes; returns the record's data address or 0 when the ring is full. */
export function ringbuf_reserve(rb: MapRef, size: u64, flags: u64): usize {
  if (flags != 0 || load<u32>(rb, M_TYPE) != BPF_MAP_TYPE_RINGBUF) return 0;
  // Producers on several CPUs: under the map's lock (the kernel's rb->spinlock); nothing without a shared memory.
  map_lock(rb);
  const r = rb_reserve(rb, size);
  map_unlock(rb);
  return r;
}

function rb_reserve(rb: MapRef, size: u64): usize {
  const mask = load<u32>(rb, RB_MASK);
  if (size > <u64>mask) return 0;
  const rec = (<u32>size + RB_HDR_SIZE + 7) & ~7;
  const cons = load<u32>(rb, RB_CONSUMER);
  let prod = load<u32>(rb, RB_PRODUCER);
  const data = <usize>load<u32>(rb, RB_DATA);
  let off = prod & mask;
  const pad = off + rec > mask + 1 ? mask + 1 - off : 0;
  if (prod + pad + rec - cons > mask + 1) {
    store<u32>(rb, load<u32>(rb, RB_DROPPED) + 1, RB_DROPPED);
    return 0;
  }
  if (pad != 0) {
    store<u32>(data + off, (pad - RB_HDR_SIZE) | RB_DISCARD_BIT);
    prod += pad;
    off = 0;
  }
  store<u32>(data + off, <u32>size | RB_BUSY_BIT);
  store<u32>(data + off, 0, 4);
  store<u32>(rb, prod + rec, RB_PRODUCER);
  return data + off + RB_HDR_SIZE;
}

/** Commit a reserved record: consumers see it now. */
export function ringbuf_submit(sample: usize, flags: u64): void {
  const hdr = sample - RB_HDR_SIZE;
  store<u32>(hdr, load<u32>(hdr) & ~RB_BUSY_BIT);
}

/** Drop a reserved record: consumers skip it. */
export function ringbuf_discard(sample: usize, flags: u64): void {
  const hdr = sample - RB_HDR_SIZE;
  store<u32>(hdr, (load<u32>(hdr) & ~RB_BUSY_BIT) | RB_DISCARD_BIT);
}

/** bpf_ringbuf_output(): copy `size` bytes at `data` into a new record; 0, -EAGAIN when full, -EINVAL. */
export function ringbuf_output(rb: MapRef, data: usize, size: u64, flags: u64): i32 {
  if ((flags & ~(BPF_RB_NO_WAKEUP | BPF_RB_FORCE_WAKEUP)) != 0) return -EINVAL;
  if (load<u32>(rb, M_TYPE) != BPF_MAP_TYPE_RINGBUF) return -EINVAL;
  const p = ringbuf_reserve(rb, size, 0);
  if (p == 0) return -EAGAIN;
  memory.copy(p, data, <usize>size);
  ringbuf_submit(p, 0);
  return 0;
}
