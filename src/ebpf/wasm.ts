// Just enough of the WebAssembly binary format to see what a module puts where in memory: the imported
// memory's limits and the active data segments' ranges (a program's static data region).

export interface DataRange {
  start: number;
  end: number;
}

export interface ModuleFacts {
  /** Minimum pages of the imported memory, if any. */
  memoryMinPages?: number;
  memoryMaxPages?: number;
  /** A memory defined by the module itself (not allowed: programs share the kernel's). */
  definesMemory: boolean;
  data: DataRange[];
  /** Data segments whose offset is not a constant (relocatable or global-based). */
  dynamicData: number;
}

class Reader {
  constructor(
    readonly b: Uint8Array,
    public p = 0,
  ) {}
  u8(): number {
    if (this.p >= this.b.length) throw new Error("unexpected end of module");
    return this.b[this.p++]!;
  }
  leb(): number {
    let r = 0;
    let shift = 0;
    for (;;) {
      const x = this.u8();
      r += (x & 0x7f) * 2 ** shift;
      shift += 7;
      if ((x & 0x80) === 0) return r;
    }
  }
  sleb(): number {
    let r = 0;
    let shift = 0;
    let x: number;
    do {
      x = this.u8();
      r += (x & 0x7f) * 2 ** shift;
      shift += 7;
    } while (x & 0x80);
    if (x & 0x40) r -= 2 ** shift;
    return r;
  }
  name(): string {
    const n = this.leb();
    const s = new TextDecoder().decode(this.b.subarray(this.p, this.p + n));
    this.p += n;
    return s;
  }
  limits(): { min: number; max?: number } {
    const flags = this.u8();
    const min = this.leb();
    const max = flags & 1 ? this.leb() : undefined;
    return { min, max };
  }
}

export function moduleFacts(bytes: Uint8Array): ModuleFacts {
  const facts: ModuleFacts = { definesMemory: false, data: [], dynamicData: 0 };
  const r = new Reader(bytes, 8);
  while (r.p < bytes.length) {
    const id = r.u8();
    const size = r.leb();
    const end = r.p + size;
    if (id === 2) {
      const n = r.leb();
      for (let i = 0; i < n; i++) {
        r.name();
        r.name();
        const kind = r.u8();
        if (kind === 0) r.leb();
        else if (kind === 1) {
          r.u8();
          r.limits();
        } else if (kind === 2) {
          const l = r.limits();
          facts.memoryMinPages = l.min;
          facts.memoryMaxPages = l.max;
        } else if (kind === 3) {
          r.u8();
          r.u8();
        } else break;
      }
    } else if (id === 5) {
      facts.definesMemory = r.leb() > 0;
    } else if (id === 11) {
      const n = r.leb();
      for (let i = 0; i < n; i++) {
        const flags = r.leb();
        if (flags === 1) {
          r.p += r.leb(); // passive: no placement
          continue;
        }
        if (flags === 2) r.leb();
        const op = r.u8();
        let offset: number | undefined;
        if (op === 0x41) offset = r.sleb() >>> 0;
        while (r.u8() !== 0x0b) {
          /* skip the rest of the init expression */
        }
        const len = r.leb();
        r.p += len;
        if (offset === undefined || op !== 0x41) facts.dynamicData++;
        else facts.data.push({ start: offset, end: offset + len });
      }
    }
    r.p = end;
  }
  return facts;
}

/** The region [start, end) a module's static data occupies, or undefined if it has none. */
export function dataRegion(f: ModuleFacts): DataRange | undefined {
  if (f.data.length === 0) return undefined;
  let start = Infinity;
  let end = 0;
  for (const d of f.data) {
    start = Math.min(start, d.start);
    end = Math.max(end, d.end);
  }
  return { start, end };
}
