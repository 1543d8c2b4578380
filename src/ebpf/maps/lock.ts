// A map's update lock on a shared memory (worker threads), host side: the same word the SDK's map_lock takes
// (M_LOCK in the map header; assembly/maps.ts), so an agent's update from TypeScript and a program's update on
// another thread never interleave. On an unshared memory only one thread runs: no lock.
import type { SharedMemory } from "../memory.js";
import { M_LOCK } from "./layout.js";

/** Values of a held lock word: taken by a program (assembly/maps.ts map_lock) or by the host. */
export const PROGRAM_HOLDS = 1;
const HOST_HOLDS = 2;
/** Spins before yielding the CPU (the holder may be a descheduled thread: 2 cores, more threads). */
const SPINS = 1000;
const YIELD_MS = 0.02;

/** Take the lock word at i32[i], writing `holder` into it: spin, then yield in short timed waits. */
export function acquire(i32: Int32Array, i: number, holder: number): void {
  for (let n = 0; Atomics.compareExchange(i32, i, 0, holder) !== 0; n++) {
    if (n >= SPINS) Atomics.wait(i32, i, Atomics.load(i32, i), YIELD_MS);
  }
}

/** Run `fn` holding map `map`'s lock (holders keep it for one update). */
export function withMapLock<T>(m: SharedMemory, map: number, fn: () => T): T {
  if (!m.shared) return fn();
  const i = (map + M_LOCK) >>> 2;
  acquire(m.i32, i, HOST_HOLDS);
  try {
    return fn();
  } finally {
    Atomics.store(m.i32, i, 0);
  }
}
