// Hostile programs against the host: a raw store<u32>() outside the SDK's accessors overwrites a map's header,
// links or free list. The host keeps its own copy of the immutable header (written back before its operations)
// and bounds and index-checks every walk of the links: map contents stay reachable, and what cannot be trusted
// is a MapError naming the map instead of a hang, a RangeError or writes outside the map.
import { describe, expect, it } from "vitest";
import { BpfKernel } from "../../src/ebpf/kernel.js";
import { MapError } from "../../src/ebpf/errors.js";
import { M_ELEMS } from "../../src/ebpf/maps/layout.js";
import { CB_BATCH_INDEX, CB_BUDGET, TC_ACT_OK, TC_ACT_SHOT } from "../../src/ebpf/abi.js";
import { PacketBatch } from "../../src/ebpf/batch.js";
import { MAX_BUDGET } from "../../src/ebpf/instrument.js";
import { ringbufConsume } from "../../src/ebpf/maps/ringbuf.js";

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

// The control block is in the programs' memory too: mark 1 raises CB_BUDGET, 2 loops forever (counting in cb0),
// 3 writes a wild packet index into CB_BATCH_INDEX and traps.
const CB_SOURCE = `import { __sk_buff, TC_ACT_OK } from "tcbox";
export function cls_main(skb: __sk_buff): i32 {
  if (skb.mark == 1) store<u32>(${CB_BUDGET}, 0x7fffffff);
  let n: u32 = 0;
  while (skb.mark == 2) { n++; skb.cb0 = n; }
  if (skb.mark == 3) { store<u32>(${CB_BATCH_INDEX}, 0x10000000); unreachable(); }
  return TC_ACT_OK;
}
`;

describe("hostile programs: the control block", () => {
  it("a raised CB_BUDGET does not lift the bound: the runaway packet after it stops within MAX_BUDGET units", async () => {
    const kernel = new BpfKernel();
    const prog = (await kernel.load("programs/examples/inline.ts", { source: CB_SOURCE, name: "cb.ts" })).program();
    const batch = new PacketBatch(kernel.mem);
    for (const mark of [1, 2]) batch.add(new Uint8Array(60), { mark });
    expect(prog.runBatch(batch)).toBe(1);
    expect(batch.traps[1]).toBe(2); // TRAP_BUDGET
    expect(batch.field(1, 48)).toBeGreaterThan(1000);
    expect(batch.field(1, 48)).toBeLessThanOrEqual(MAX_BUDGET);
    expect(kernel.budget).toBe(1_000_000); // the host's own value
    expect(() => (kernel.budget = 0x7fffffff)).toThrow(/budget 2147483647 is not an integer 1\.\.16777216/);
  });

  it("a wild CB_BATCH_INDEX: the trap is still charged to the packet that trapped, the others run", async () => {
    const kernel = new BpfKernel();
    const prog = (await kernel.load("programs/examples/inline.ts", { source: CB_SOURCE, name: "cb.ts" })).program();
    const batch = new PacketBatch(kernel.mem);
    const marks = [0, 3, 0, 0];
    for (const mark of marks) batch.add(new Uint8Array(60), { mark });
    expect(prog.runBatch(batch)).toBe(1);
    expect(marks.map((_, i) => batch.retval(i))).toEqual([TC_ACT_OK, TC_ACT_SHOT, TC_ACT_OK, TC_ACT_OK]);
    expect(marks.map((_, i) => batch.traps[i] !== 0)).toEqual([false, true, false, false]);
    expect(prog.stats.runs).toBe(4);
  });

  it("top-level code that never ends: the load stops within MAX_BUDGET units and says why; the kernel goes on", async () => {
    const kernel = new BpfKernel();
    const spin = `import { __sk_buff, TC_ACT_OK } from "tcbox";\nlet n: u32 = 0;\nwhile (true) { n++; }\nexport function cls_main(skb: __sk_buff): i32 { return TC_ACT_OK; }\n`;
    await expect(kernel.load("programs/examples/inline.ts", { source: spin, name: "spin.ts" })).rejects.toThrow(/load failed: its top-level code ran past the budget \(16777216 units\)/);
    const ok = await kernel.load("programs/examples/inline.ts", { source: CB_SOURCE, name: "cb.ts" });
    expect(ok.program().run(new Uint8Array(60)).retval).toBe(TC_ACT_OK);
  });
});

// mark 1: a producer position far past the ring; 2: a committed record's length made huge.
const RB_SOURCE = `import { __sk_buff, ringbuf_def, ringbuf_output, TC_ACT_OK } from "tcbox";
const R = ringbuf_def(4096, "events");
export function cls_main(skb: __sk_buff): i32 {
  const buf = memory.data(8);
  store<u64>(buf, 42);
  ringbuf_output(R, buf, 8, 0);
  if (skb.mark == 1) store<u32>(R + 24, load<u32>(R + 20) + 0x100000);
  if (skb.mark == 2) store<u32>(load<u32>(R + 32), 0x100000);
  return TC_ACT_OK;
}
`;

describe("hostile programs: ring buffers", () => {
  it.each([
    { mark: 1, msg: /corrupt \(producer 1048576 is more than the ring's 4096 bytes ahead of consumer 0\)/ },
    { mark: 2, msg: /corrupt \(record of 1048576 bytes at 0, 16 bytes produced\)/ },
  ])("mark $mark: consuming stops with a MapError instead of reading past the ring", async ({ mark, msg }) => {
    const kernel = new BpfKernel();
    const obj = await kernel.load("programs/examples/inline.ts", { source: RB_SOURCE, name: "rb.ts" });
    obj.program().run(new Uint8Array(60), { mark });
    let records = 0;
    expect(() => ringbufConsume(obj.map("events"), () => records++)).toThrow(msg);
    expect(records).toBe(0);
  });
});

describe("hostile programs: pinned maps", () => {
  it("a pinned map whose header a program overwrote is whole again for the next program that pins it", async () => {
    const kernel = new BpfKernel();
    const src = (what: string) => `import { __sk_buff, map_def, map_lookup_elem, BPF_MAP_TYPE_HASH, PIN_GLOBAL_NS, TC_ACT_OK, TC_ACT_SHOT } from "tcbox";
const M = map_def<u32, u32>(BPF_MAP_TYPE_HASH, 8, "shared_victim", PIN_GLOBAL_NS);
export function cls_main(skb: __sk_buff): i32 {
  ${what}
  const k = memory.data(4);
  store<u32>(k, 1);
  return map_lookup_elem(M, k) != 0 ? TC_ACT_OK : TC_ACT_SHOT;
}
`;
    const a = await kernel.load("programs/examples/inline.ts", { source: src("if (skb.mark == 1) { store<u32>(M + 36, 0x10); store<u32>(M + 20, 1); }"), name: "a.ts" });
    a.map("shared_victim").update(key(1), key(10));
    expect(a.program().run(new Uint8Array(60)).retval).toBe(TC_ACT_OK);
    a.program().run(new Uint8Array(60), { mark: 1 });
    const b = await kernel.load("programs/examples/inline.ts", { source: src(""), name: "b.ts" });
    expect(b.program().run(new Uint8Array(60)).retval).toBe(TC_ACT_OK);
    expect(b.map("shared_victim").headerRestores).toBe(1);
  });
});
