// The consumer side of BPF_MAP_TYPE_RINGBUF (libbpf's ring_buffer__poll): read committed records from the
// consumer position up to the producer position, skip discarded ones, stop at one still being written.
import type { BpfMap } from "./map.js";
import { RB_BUSY_BIT, RB_CONSUMER, RB_DATA, RB_DISCARD_BIT, RB_DROPPED, RB_HDR_SIZE, RB_MASK, RB_PRODUCER } from "./layout.js";

/** Call `onRecord` with a view of each new record (valid during the call); returns how many were consumed. */
export function ringbufConsume(map: BpfMap, onRecord: (data: Uint8Array) => void): number {
  const m = map.mem;
  m.refresh();
  const u32 = m.u32;
  const b = map.base;
  const mask = u32[(b + RB_MASK) >>> 2]!;
  const data = u32[(b + RB_DATA) >>> 2]!;
  let cons = u32[(b + RB_CONSUMER) >>> 2]!;
  const prod = u32[(b + RB_PRODUCER) >>> 2]!;
  let n = 0;
  while (cons !== prod) {
    const off = cons & mask;
    const hdr = u32[(data + off) >>> 2]!;
    if (hdr & RB_BUSY_BIT) break;
    const len = hdr & ~(RB_BUSY_BIT | RB_DISCARD_BIT);
    if ((hdr & RB_DISCARD_BIT) === 0) {
      onRecord(m.u8.subarray(data + off + RB_HDR_SIZE, data + off + RB_HDR_SIZE + len));
      n++;
    }
    cons = (cons + ((len + RB_HDR_SIZE + 7) & ~7)) >>> 0;
    u32[(b + RB_CONSUMER) >>> 2] = cons;
  }
  return n;
}

/** Records lost because the ring was full (bpf_ringbuf_output returned -EAGAIN). */
export function ringbufDropped(map: BpfMap): number {
  return map.mem.u32[(map.base + RB_DROPPED) >>> 2]!;
}

/** Bytes produced but not consumed yet. */
export function ringbufAvailable(map: BpfMap): number {
  const u32 = map.mem.u32;
  return (u32[(map.base + RB_PRODUCER) >>> 2]! - u32[(map.base + RB_CONSUMER) >>> 2]!) >>> 0;
}
