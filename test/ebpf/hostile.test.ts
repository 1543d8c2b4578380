// Hostile programs against the host: a raw store<u32>() outside the SDK's accessors overwrites a map's header,
// links or free list. The host keeps its own copy of the immutable header (written back before its operations)
// and bounds and index-checks every walk of the links: map contents stay reachable, and what cannot be trusted
// is a MapError naming the map instead of a hang, a RangeError or writes outside the map.
import { describe, expect, it } from "vitest";
import { BpfKernel } from "../../src/ebpf/kernel.js";
import { MapError } from "../../src/ebpf/errors.js";
import { M_ELEMS } from "../../src/ebpf/maps/layout.js";

const key = (n: number) => new Uint8Array([n, 0, 0, 0]);
// mark selects the store: 1 the geometry, 2 a chain cycle, 3 a free list looping onto itself, 4 a free head out
// of range, 5 an LRU tail out of range. 0 looks its key up (program lookups see the map).
const SOURCE = (type: string) => `import { __sk_buff, map_def, BPF_MAP_TYPE_HASH, BPF_MAP_TYPE_LRU_HASH, TC_ACT_OK, TC_ACT_SHOT, map_lookup_elem } from "tcbox";
const M = map_def<u32, u32>(${type}, 8, "victim");
export function cls_main(skb: __sk_buff): i32 {
  const m = skb.mark;
  if (m == 0) { const k = memory.data(4); store<u32>(k, 1); return map_lookup_elem(M, k) != 0 ? TC_ACT_OK : TC_ACT_SHOT; }
  if (m == 1) { store<u32>(M + 36, 0x10); store<u32>(M + 28, 0xffffff); store<u32>(M + 20, 0); store<u32>(M + 32, 0x7fff0000); }
  if (m == 2) store<u32>(load<u32>(M + 36), 1);
  if (m == 3) store<u32>(load<u32>(M + 36) + 4 * load<u32>(M + 28), 5);
  if (m == 4) store<u32>(M + 40, 0xffff);
  if (m == 5) store<u32>(M + 48, 77);
  return TC_ACT_OK;
}
`;

async function victim(type = "BPF_MAP_TYPE_HASH") {
  const kernel = new BpfKernel();
  const obj = await kernel.load("programs/examples/inline.ts", { source: SOURCE(type), name: "hostile.ts" });
  const map = obj.map("victim");
  for (let i = 1; i <= 4; i++) map.update(key(i), key(i * 10));
  const prog = obj.program();
  return { kernel, map, prog, hit: (mark: number) => prog.run(new Uint8Array(60), { mark }).retval };
}

/** The entries a walk yields, stopping at 100 (a looping walk would never end). */
function walk(entries: Iterable<unknown>): number {
  let n = 0;
  for (const _ of entries) if (++n === 100) break;
  return n;
}

describe("hostile programs: the host's maps survive raw stores", () => {
  it("overwritten geometry (elements, element size, buckets): written back, every entry still there, program lookups work", async () => {
    const { map, hit } = await victim();
    const elems = map.header(M_ELEMS);
    expect(hit(0)).toBe(0);
    hit(1);
    expect(map.lookup(key(1))).toEqual(key(10));
    expect(map.headerRestores).toBe(1);
    expect(map.header(M_ELEMS)).toBe(elems);
    map.update(key(9), key(90));
    map.delete(key(2));
    expect([...map.entries()].map(([k]) => k[0]).sort()).toEqual([1, 3, 4, 9]);
    expect(hit(0)).toBe(0);
  });

  it("a chain made into a cycle: a walk stops with a located MapError instead of looping", async () => {
    const { map, hit } = await victim();
    hit(2);
    expect(() => walk(map.entries())).toThrow(MapError);
    expect(() => walk(map.entries())).toThrow(/corrupt \(.*\(a cycle\)\): a program wrote over it/);
    expect(() => map.clear()).toThrow(/corrupt/);
    expect(hit(0)).toBe(0); // the program goes on
  });

  it("a free list looping onto itself or pointing out of the map: update refuses instead of reusing an element or writing outside", async () => {
    const a = await victim();
    a.hit(3);
    expect(() => a.map.update(key(9), key(90))).toThrow(/corrupt \(free list at 5 \(next 5/);
    expect(walk(a.map.entries())).toBe(4);
    const b = await victim();
    b.hit(4);
    const err = (() => {
      try {
        b.map.update(key(9), key(90));
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(MapError);
    expect((err as MapError).message).toMatch(/corrupt \(element index 65535 is not an element 1\.\.8\)/);
    expect(b.map.lookup(key(3))).toEqual(key(30));
  });

  it("an LRU tail out of range: eviction refuses with a MapError, lookups go on", async () => {
    const { map, hit } = await victim("BPF_MAP_TYPE_LRU_HASH");
    for (let i = 5; i <= 8; i++) map.update(key(i), key(i * 10));
    hit(5);
    expect(() => map.update(key(9), key(90))).toThrow(/corrupt \(element index 77 is not an element 1\.\.8\)/);
    expect(walk(map.entries())).toBe(8);
  });
});
