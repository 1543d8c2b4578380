// A table keyed by 48-bit MAC address (bridge FDB, VXLAN FDB, switch tables) whose per-packet lookups read the
// MAC straight from the frame and use its low 32 bits as a signed 32-bit Map key (a V8 small integer: no heap
// number is allocated per lookup); the high 16 bits tell colliding entries apart.
import { get16, get32 } from "../packet/checksum.js";

interface Slot<T> {
  hi: number;
  mac: number;
  value: T;
}

export class MacTable<T> {
  private readonly m = new Map<number, Array<Slot<T>>>();
  size = 0;

  /** The entry for the MAC at `buf[off..off+6]`. */
  getAt(buf: Uint8Array, off: number): T | undefined {
    const arr = this.m.get(get32(buf, off + 2) | 0);
    if (arr === undefined) return undefined;
    const hi = get16(buf, off);
    for (let i = 0; i < arr.length; i++) if (arr[i]!.hi === hi) return arr[i]!.value;
    return undefined;
  }

  get(mac: number): T | undefined {
    const arr = this.m.get(lo(mac));
    if (arr === undefined) return undefined;
    const h = hi(mac);
    for (let i = 0; i < arr.length; i++) if (arr[i]!.hi === h) return arr[i]!.value;
    return undefined;
  }

  has(mac: number): boolean {
    return this.get(mac) !== undefined;
  }

  set(mac: number, value: T): void {
    const k = lo(mac);
    const h = hi(mac);
    let arr = this.m.get(k);
    if (arr === undefined) {
      arr = [];
      this.m.set(k, arr);
    }
    for (const s of arr) {
      if (s.hi === h) {
        s.value = value;
        return;
      }
    }
    arr.push({ hi: h, mac, value });
    this.size++;
  }

  delete(mac: number): boolean {
    const k = lo(mac);
    const arr = this.m.get(k);
    if (arr === undefined) return false;
    const i = arr.findIndex((s) => s.hi === hi(mac));
    if (i < 0) return false;
    arr.splice(i, 1);
    if (arr.length === 0) this.m.delete(k);
    this.size--;
    return true;
  }

  *entries(): IterableIterator<[number, T]> {
    for (const arr of this.m.values()) for (const s of [...arr]) yield [s.mac, s.value];
  }

  *values(): IterableIterator<T> {
    for (const [, v] of this.entries()) yield v;
  }

  [Symbol.iterator](): IterableIterator<[number, T]> {
    return this.entries();
  }
}

function lo(mac: number): number {
  return (mac % 0x100000000) | 0;
}

function hi(mac: number): number {
  return Math.floor(mac / 0x100000000);
}
