// The consumer side of BPF_MAP_TYPE_RINGBUF (libbpf's ring_buffer__poll): read committed records from the
// consumer position up to the producer position, skip discarded ones, stop at one still being written.
import { MapError } from "../errors.js";
import { EINVAL } from "../abi.js";
import type { BpfMap } from "./map.js";
import { RB_BUSY_BIT, RB_CONSUMER, RB_DATA, RB_DISCARD_BIT, RB_DROPPED, RB_HDR_SIZE, RB_MASK, RB_PRODUCER } from "./layout.js";

/** Call `onRecord` with a view of each new record (valid during the call); returns how many were consumed. */
export function ringbufConsume(map: BpfMap, onRecord: (data: Uint8Array) => void): number {
  const m = map.mem;
  m.refresh();
  map.restoreHeader();
  const u32 = m.u32;
  const b = map.base;
  const mask = u32[(b + RB_MASK) >>> 2]!;
  const data = u32[(b + RB_DATA) >>> 2]!;
  let cons = u32[(b + RB_CONSUMER) >>> 2]!;
  const prod = u32[(b + RB_PRODUCER) >>> 2]!;
  // Positions and record lengths are in the programs' memory: more unread bytes than the ring holds, or a record
  // longer than what is left, is a program's store, not a record (the walk would run on for up to 2^32 bytes).
  const corrupt = (why: string) => new MapError(`corrupt (${why}): a program wrote over it`, `map ${map.name}`, EINVAL);
  if (((prod - cons) >>> 0) > mask + 1) throw corrupt(`producer ${prod} is more than the ring's ${mask + 1} bytes ahead of consumer ${cons}`);
  let n = 0;
  while (cons !== prod) {
    const off = cons & mask;
    const hdr = u32[(data + off) >>> 2]!;
    if (hdr & RB_BUSY_BIT) break;
    const len = hdr & ~(RB_BUSY_BIT | RB_DISCARD_BIT);
    if (len + RB_HDR_SIZE > ((prod - cons) >>> 0)) throw corrupt(`record of ${len} bytes at ${cons}, ${(prod - cons) >>> 0} bytes produced`);
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
