// Map semantics, from the host API and from programs on the same shared memory: update flags, full maps,
// delete, LRU eviction order, LPM longest-prefix match, array bounds, per-CPU slots, ring buffer.
import { beforeAll, describe, expect, it } from "vitest";
import { buildUdp } from "../../src/packet/index.js";
import { BpfKernel, type BpfObject } from "../../src/ebpf/kernel.js";
import { SKB_CB } from "../../src/ebpf/abi.js";
import { PacketBatch } from "../../src/ebpf/batch.js";
import { MapError } from "../../src/ebpf/errors.js";
import { BPF_EXIST, BPF_NOEXIST, M_LOOKUPS } from "../../src/ebpf/maps/layout.js";
import { elemAddr, lruOrder, lruReferenced } from "../../src/ebpf/maps/htab.js";
import { ringbufConsume, ringbufDropped } from "../../src/ebpf/maps/ringbuf.js";
import { checkChainLinks } from "../fuzz/maps-check.js";

let kernel: BpfKernel;
let filler: BpfObject;
let probe: BpfObject;
beforeAll(async () => {
  kernel = new BpfKernel();
  filler = await kernel.load("programs/examples/map_filler.ts");
  probe = await kernel.load("programs/examples/helpers_probe.ts");
});

const from = (src: string, dst = "10.0.0.254") => buildUdp({ src, dst, sport: 1000, dport: 53 });
function run(obj: BpfObject, entry: string, pkt: Uint8Array, cb: number[] = []) {
  const batch = new PacketBatch(kernel.mem);
  batch.add(pkt, { cb });
  obj.program(entry).runBatch(batch);
  return { mark: batch.mark(0) | 0, cb: [0, 1, 2, 3, 4].map((k) => batch.field(0, SKB_CB + 4 * k)) };
}
const errnoOf = (f: () => void) => {
  try {
    f();
  } catch (e) {
    if (e instanceof MapError) return -e.errno;
    throw e;
  }
  return 0;
};

describe("hash map (BPF_MAP_TYPE_HASH, max_entries 4)", () => {
  it("program updates with flags: NOEXIST on an existing key -EEXIST, EXIST on a missing one -ENOENT, full -E2BIG", () => {
    const m = filler.map("fill_hash");
    m.clear();
    const rows: [string, number, number][] = [
      ["10.0.0.1", 1, 0],
      ["10.0.0.1", 1, -17], // BPF_NOEXIST, exists
      ["10.0.0.9", 2, -2], // BPF_EXIST, missing
      ["10.0.0.1", 2, 0], // BPF_EXIST, exists: replaced
      ["10.0.0.2", 0, 0],
      ["10.0.0.3", 0, 0],
      ["10.0.0.4", 0, 0],
      ["10.0.0.5", 0, -7], // full
      ["10.0.0.4", 0, 0], // replacing in a full map is fine
    ];
    for (const [src, flags, want] of rows) expect([src, flags, run(filler, "fill_hash", from(src), [flags, 42]).mark]).toEqual([src, flags, want]);
    expect(m.count).toBe(4);
    const t = m.typed();
    expect(t.lookup({ saddr: "10.0.0.1" })).toEqual({ packets: 42 });
    expect(t.lookup({ saddr: "10.0.0.5" })).toBeUndefined();
  });

  it("host updates follow the same rules, with errors naming map and key", () => {
    const t = filler.map("fill_hash").typed();
    expect(errnoOf(() => t.update({ saddr: "10.0.0.1" }, { packets: 1 }, BPF_NOEXIST))).toBe(-17);
    expect(errnoOf(() => t.update({ saddr: "10.9.9.9" }, { packets: 1 }, BPF_EXIST))).toBe(-2);
    expect(errnoOf(() => t.update({ saddr: "10.9.9.9" }, { packets: 1 }))).toBe(-7);
    try {
      t.update({ saddr: "10.9.9.9" }, { packets: 1 });
    } catch (e) {
      expect((e as MapError).where).toBe("map fill_hash: key 0a 09 09 09");
      expect((e as MapError).message).toMatch(/-E2BIG/);
    }
  });

  it("delete frees a slot the next insert reuses; deleting a missing key is -ENOENT", () => {
    expect(run(filler, "forget", from("10.0.0.2")).mark).toBe(0);
    expect(run(filler, "forget", from("10.0.0.2")).mark).toBe(-2);
    expect(run(filler, "fill_hash", from("10.0.0.5"), [0, 5]).mark).toBe(0);
    const keys = [...filler.map("fill_hash").typed().entries()].map((e) => e.key.saddr).sort();
    expect(keys).toEqual(["10.0.0.1", "10.0.0.3", "10.0.0.4", "10.0.0.5"]);
  });
});

describe("LRU hash (max_entries 4)", () => {
  it("a full insert evicts the least recently used; a program lookup makes a key recent", () => {
    const m = filler.map("fill_lru");
    for (const s of ["10.1.0.1", "10.1.0.2", "10.1.0.3", "10.1.0.4"]) expect(run(filler, "fill_lru", from(s)).mark).toBe(0);
    expect(run(filler, "fill_lru", from("10.1.0.1")).mark).toBe(1); // hit: 10.1.0.1 is now most recent
    expect(run(filler, "fill_lru", from("10.1.0.5")).mark).toBe(0); // evicts 10.1.0.2
    const t = m.typed();
    expect(t.lookup({ saddr: "10.1.0.2" })).toBeUndefined();
    expect(t.lookup({ saddr: "10.1.0.1" })).toEqual({ packets: 2 });
    t.update({ saddr: "10.1.0.6" }, { packets: 7 }); // host insert evicts the next oldest: 10.1.0.3
    expect(t.lookup({ saddr: "10.1.0.3" })).toBeUndefined();
    const order = lruOrder(kernel.mem, m.base).length;
    expect(order).toBe(4);
    expect([...t.entries()].map((e) => e.key.saddr).sort()).toEqual(["10.1.0.1", "10.1.0.4", "10.1.0.5", "10.1.0.6"]);
  });

  // Kernel bpf_lru: a lookup sets the reference bit and leaves the element in place; eviction rotates referenced
  // tail elements to the head (bit cleared). So among looked-up elements, list position (insertion order) and
  // not lookup recency decides who goes first; an exact LRU would keep the most recently looked-up one instead.
  it("second chance: lookups set the reference bit, eviction rotates referenced elements once", () => {
    const m = filler.map("fill_lru");
    const t = m.typed();
    for (const e of [...t.entries()]) t.delete(e.key);
    const ips = (n: number[]) => n.map((i) => `10.2.0.${i}`);
    for (const s of ips([1, 2, 3, 4])) expect(run(filler, "fill_lru", from(s)).mark).toBe(0);
    const order = () => lruOrder(kernel.mem, m.base);
    const head = order()[0]!;
    expect(lruReferenced(kernel.mem, m.base, head)).toBe(false);
    expect(run(filler, "fill_lru", from("10.2.0.2")).mark).toBe(1);
    expect(run(filler, "fill_lru", from("10.2.0.1")).mark).toBe(1);
    expect(order()[0]).toBe(head); // a lookup does not move the element
    const steps: [string, string[]][] = [
      ["10.2.0.5", ips([1, 2, 4, 5])], // 1 and 2 rotate (bits cleared), 3 goes
      ["10.2.0.6", ips([1, 2, 5, 6])], // 4 goes
      ["10.2.0.7", ips([2, 5, 6, 7])], // exact LRU would evict 2 (looked up before 1); here 1 is older in the list
    ];
    for (const [ip, left] of steps) {
      expect(run(filler, "fill_lru", from(ip)).mark).toBe(0);
      expect([...t.entries()].map((e) => e.key.saddr).sort()).toEqual(left);
    }
    expect(order().every((i) => !lruReferenced(kernel.mem, m.base, i))).toBe(true);
    // Every element referenced: one full rotation clears every bit, then the oldest goes.
    for (const s of ips([2, 5, 6, 7])) expect(run(filler, "fill_lru", from(s)).mark).toBe(1);
    t.update({ saddr: "10.2.0.8" }, { packets: 1 }); // a host insert evicts the same way
    expect([...t.entries()].map((e) => e.key.saddr).sort()).toEqual(ips([5, 6, 7, 8]));
    m.touch(t.encodeKey({ saddr: "10.2.0.5" }));
    t.update({ saddr: "10.2.0.9" }, { packets: 1 });
    expect([...t.entries()].map((e) => e.key.saddr).sort()).toEqual(ips([5, 7, 8, 9]));
  });
});

describe("LRU hash chains (4 buckets: keys share chains)", () => {
  // An LRU element's chain predecessor link lets an eviction or a delete unlink it without walking its bucket:
  // program and host inserts, evictions and deletes, mixed, must keep every chain and every link exact.
  it("inserts, evictions and deletes from the program and the host keep every key findable and every link right", () => {
    const m = filler.map("fill_lru");
    const t = m.typed();
    for (const e of [...t.entries()]) t.delete(e.key);
    const live = new Set<string>();
    let seed = 7;
    const rand = (n: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return (seed >>> 8) % n;
    };
    for (let step = 0; step < 400; step++) {
      const ip = `10.4.0.${1 + rand(12)}`;
      const op = rand(4);
      if (op === 0) {
        run(filler, "fill_lru", from(ip)); // lookup, else insert (evicts when full)
      } else if (op === 1) {
        t.update({ saddr: ip }, { packets: step }); // host insert or replace (evicts when full)
      } else if (op === 2) {
        expect(run(filler, "forget_lru", from(ip)).mark).toBe(live.has(ip) ? 0 : -2); // -ENOENT
      } else if (live.has(ip)) {
        t.delete({ saddr: ip });
      }
      live.clear();
      for (const e of t.entries()) live.add(e.key.saddr as string);
      expect(checkChainLinks(m)).toEqual([]);
      expect(live.size).toBe(m.count);
      for (const k of live) expect(t.lookup({ saddr: k })).toBeDefined();
      expect(lruOrder(kernel.mem, m.base).length).toBe(m.count);
    }
  });
});

describe("LPM trie", () => {
  it("longest prefix wins, from the program and from the host; /0 is the default; delete is exact", () => {
    const t = probe.map("probe_cidrs").typed();
    t.update({ prefixlen: 8, addr: "10.0.0.0" }, 1);
    t.update({ prefixlen: 16, addr: "10.1.0.0" }, 2);
    t.update({ prefixlen: 24, addr: "10.1.2.0" }, 3);
    t.update({ prefixlen: 32, addr: "10.1.2.3" }, 4);
    t.update({ prefixlen: 0, addr: "0.0.0.0" }, 9);
    t.update({ prefixlen: 20, addr: "10.1.255.255" }, 5); // stored masked: 10.1.240.0/20
    const table: [string, number][] = [
      ["10.1.2.3", 4],
      ["10.1.2.4", 3],
      ["10.1.3.1", 2],
      ["10.1.241.7", 5],
      ["10.2.0.1", 1],
      ["192.168.1.1", 9],
    ];
    for (const [dst, want] of table) {
      expect([dst, run(probe, "lpm", from("1.1.1.1", dst)).mark]).toEqual([dst, want]);
      expect([dst, t.lookup({ prefixlen: 32, addr: dst })]).toEqual([dst, { value: want }]);
    }
    expect(errnoOf(() => t.delete({ prefixlen: 24, addr: "10.1.0.0" }))).toBe(-2);
    t.delete({ prefixlen: 0, addr: "0.0.0.0" });
    expect(run(probe, "lpm", from("1.1.1.1", "192.168.1.1")).mark).toBe(-1);
    expect(errnoOf(() => t.update({ prefixlen: 33, addr: "10.0.0.0" }, 1))).toBe(-22);
    expect(t.lookup({ prefixlen: 16, addr: "10.1.2.3" })).toEqual({ value: 2 }); // lookup key's prefixlen limits the match
  });
});

describe("array", () => {
  it("index < max_entries updates and looks up; beyond is -E2BIG; delete is -EINVAL; NOEXIST is -EEXIST", () => {
    let r = run(probe, "array", from("1.1.1.1"), [3, 77]);
    expect([r.mark, r.cb[2], r.cb[3] | 0]).toEqual([0, 77, -22]);
    r = run(probe, "array", from("1.1.1.1"), [8, 1]);
    expect([r.mark, r.cb[2]]).toEqual([-7, 0xffffffff]);
    const t = probe.map("probe_array").typed();
    expect(t.lookup(3)).toEqual({ value: 77 });
    expect(errnoOf(() => t.update(8, 1))).toBe(-7);
    expect(errnoOf(() => t.update(2, 1, BPF_NOEXIST))).toBe(-17);
    expect(errnoOf(() => t.delete(2))).toBe(-22);
    expect([...t.entries()].length).toBe(8);
  });
});

describe("per-CPU hash with 2 CPUs", () => {
  it("the program adds to its CPU's slot; the host sees one value per CPU", async () => {
    const k2 = new BpfKernel({ nrCpus: 2 });
    const p = await k2.load("programs/examples/helpers_probe.ts");
    const batch = new PacketBatch(k2.mem);
    for (const add of [5, 6]) {
      batch.reset();
      batch.add(from("1.1.1.1"), { cb: [1, add] });
      p.program("pcpu").runBatch(batch);
    }
    const v = p.map("probe_pcpu").lookup(Uint8Array.of(1, 0, 0, 0))!;
    expect(v.length).toBe(16);
    const dv = new DataView(v.buffer);
    expect([dv.getBigUint64(0, true), dv.getBigUint64(8, true)]).toEqual([11n, 0n]);
  });
});

describe("ring buffer", () => {
  it("records come out in order; a full ring returns -EAGAIN and counts the loss", () => {
    const rb = probe.map("probe_events");
    const got: number[][] = [];
    ringbufConsume(rb, (d) => got.push([...d]));
    const pkt = from("10.0.0.1");
    for (let i = 0; i < 3; i++) expect(run(probe, "emit", pkt, [4 + i]).mark).toBe(0);
    got.length = 0;
    expect(ringbufConsume(rb, (d) => got.push([...d]))).toBe(3);
    expect(got).toEqual([[...pkt.subarray(0, 4)], [...pkt.subarray(0, 5)], [...pkt.subarray(0, 6)]]);
    // 4096 bytes hold 102 records of 40 bytes (32 + 8 header); the rest fail until consumed. Wrapping works.
    const results = Array.from({ length: 120 }, () => run(probe, "emit", pkt, [32]).mark);
    expect(results.filter((r) => r === 0).length).toBe(Math.floor(4096 / 40));
    expect(results.filter((r) => r === -11).length).toBe(120 - Math.floor(4096 / 40));
    expect(ringbufDropped(rb)).toBe(120 - Math.floor(4096 / 40));
    expect(ringbufConsume(rb, () => {})).toBe(Math.floor(4096 / 40));
    for (let i = 0; i < 150; i++) {
      expect(run(probe, "emit", pkt, [32]).mark).toBe(0);
      expect(ringbufConsume(rb, (d) => expect(d.length).toBe(32))).toBe(1);
    }
  });
});

// bpf_map_lookup_elem's call count per map (M_LOOKUPS in the header): every program lookup counts, hit or miss,
// on every map type with a program lookup; the host's lookups (lookup, dump, the agent's writes) do not.
describe("lookup counter (BpfMap.lookups)", () => {
  it("counts program lookups, hit or miss, on LRU hash, per-CPU hash, array and LPM; host lookups do not count", () => {
    const lru = filler.map("fill_lru");
    const delta = (m: typeof lru, before: number) => (m.lookups - before) >>> 0;
    let b = lru.lookups;
    const t = lru.typed();
    for (const e of [...t.entries()]) t.delete(e.key);
    run(filler, "fill_lru", from("10.3.0.1")); // miss, then insert
    run(filler, "fill_lru", from("10.3.0.1")); // hit
    run(filler, "fill_hash", from("10.3.0.2")); // an update is not a lookup
    expect(delta(lru, b)).toBe(2);
    b = lru.lookups;
    t.lookup({ saddr: "10.3.0.1" });
    [...lru.entries()];
    lru.valueAddr(t.encodeKey({ saddr: "10.3.0.9" }));
    expect(delta(lru, b)).toBe(0);

    const arr = probe.map("probe_array");
    b = arr.lookups;
    run(probe, "array", from("1.1.1.1"), [1, 5]); // in range
    run(probe, "array", from("1.1.1.1"), [99, 5]); // out of range: a miss, still a call
    expect(delta(arr, b)).toBe(2);

    const lpm = probe.map("probe_cidrs");
    b = lpm.lookups;
    run(probe, "lpm", from("1.1.1.1", "10.1.2.3"));
    run(probe, "lpm", from("1.1.1.1", "172.16.0.1"));
    lpm.typed().lookup({ prefixlen: 32, addr: "10.1.2.3" });
    expect(delta(lpm, b)).toBe(2); // one per call, however many prefix lengths it probes

    const pcpu = probe.map("probe_pcpu");
    b = pcpu.lookups;
    run(probe, "pcpu", from("1.1.1.1"), [7, 1]);
    expect(delta(pcpu, b)).toBe(1);
    expect(filler.map("fill_hash").lookups).toBe(0); // never looked up by a program
  });

  it("is a u32 that wraps; deltas taken with >>> 0 stay right", () => {
    const lru = filler.map("fill_lru");
    kernel.mem.u32[(lru.base + M_LOOKUPS) >>> 2] = 0xffffffff;
    const b = lru.lookups;
    run(filler, "fill_lru", from("10.3.0.1"));
    run(filler, "fill_lru", from("10.3.0.1"));
    expect(lru.lookups).toBe(1);
    expect((lru.lookups - b) >>> 0).toBe(2);
  });
});

describe("program updates copy keys and values of any size exactly", () => {
  // The SDK copies keys and values up to 64 bytes in straight-line word loads and stores (overlapping words at
  // the end), larger ones with memory.copy: every size must land byte for byte, and nothing around it may change.
  const sizes = [1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 15, 16, 17, 20, 23, 24, 25, 31, 32, 33, 39, 40, 41, 48, 56, 63, 64, 65, 72];
  it.each(sizes)("key and value of %i bytes: insert, then replace", async (n) => {
    const k = new BpfKernel();
    const src = `import { __sk_buff, BPF_ANY, BPF_MAP_TYPE_HASH, BPF_MAP_TYPE_ARRAY, map_update_elem, TC_ACT_OK } from "tcbox";
// @ts-ignore: decorator
@external("tcbox", "map_create")
declare function map_create(type: u32, ks: u32, vs: u32, max: u32, flags: u32, name: string, pinning: u32, kt: string, vt: string): usize;
const H = map_create(BPF_MAP_TYPE_HASH, ${n}, ${n}, 4, 0, "sized_hash", 0, "", "");
const A = map_create(BPF_MAP_TYPE_ARRAY, 4, ${n}, 2, 0, "sized_array", 0, "", "");
const idx = memory.data(4);
export function cls_main(skb: __sk_buff): i32 {
  const p = <usize>skb.data + 42; // the UDP payload: key bytes, then value bytes
  map_update_elem(H, p, p + ${n}, BPF_ANY);
  store<u32>(idx, 1);
  map_update_elem(A, idx, p + ${n}, BPF_ANY);
  return TC_ACT_OK;
}
`;
    const obj = await k.load("programs/examples/sized.ts", { name: `sized${n}.ts`, source: src });
    const prog = obj.program();
    const h = obj.map("sized_hash");
    const a = obj.map("sized_array");
    for (const round of [1, 2]) {
      const payload = new Uint8Array(2 * n);
      for (let i = 0; i < n; i++) payload[i] = (i * 7 + 1) & 255;
      for (let i = 0; i < n; i++) payload[n + i] = (i * 13 + round * 5 + 3) & 255 || 1;
      const pkt = buildUdp({ src: "10.0.0.1", dst: "10.0.0.2", sport: 1, dport: 2, payload });
      expect(prog.run(pkt).retval).toBe(0);
      const key = payload.slice(0, n);
      const want = payload.slice(n);
      expect([...h.entries()].map(([kk, v]) => [[...kk], [...v]])).toEqual([[[...key], [...want]]]);
      const idx1 = new Uint8Array([1, 0, 0, 0]);
      expect([...a.lookup(idx1)!]).toEqual([...want]);
      expect(a.lookup(new Uint8Array(4))!.every((b) => b === 0)).toBe(true); // slot 0 untouched
      // The bytes between the end of the value and the next 8-byte boundary (the element's padding) stay zero.
      const v = a.valueAddr(idx1);
      const end = v + ((n + 7) & ~7);
      expect(k.mem.u8.subarray(v + n, end).every((b) => b === 0)).toBe(true);
      const e = h.valueAddr(key);
      expect(k.mem.u8.subarray(e + n, e + ((n + 7) & ~7)).every((b) => b === 0)).toBe(true);
    }
  });
});

describe("LPM keys wider than IPv4", () => {
  // The SDK masks a key's data a word at a time (then byte by byte for a tail); the host masks byte by byte:
  // entries the program inserts must be found by the host at the same prefix, and the program's longest-prefix
  // lookups must agree with the host's, for IPv6-sized and odd-sized data.
  it.each([3, 7, 16])("%i bytes of data: program inserts and lookups agree with the host's", async (data) => {
    const ks = 4 + data;
    const src = `import { __sk_buff, BPF_ANY, BPF_MAP_TYPE_LPM_TRIE, map_lookup_elem, map_update_elem, TC_ACT_OK } from "tcbox";
// @ts-ignore: decorator
@external("tcbox", "map_create")
declare function map_create(type: u32, ks: u32, vs: u32, max: u32, flags: u32, name: string, pinning: u32, kt: string, vt: string): usize;
const M = map_create(BPF_MAP_TYPE_LPM_TRIE, ${ks}, 4, 64, 0, "wide_lpm", 0, "", "");
export function insert(skb: __sk_buff): i32 {
  const p = <usize>skb.data + 42; // UDP payload: key (prefix length, data), then a u32 value
  return map_update_elem(M, p, p + ${ks}, BPF_ANY);
}
export function lookup(skb: __sk_buff): i32 {
  const v = map_lookup_elem(M, <usize>skb.data + 42);
  skb.mark = v == 0 ? 0xffffffff : load<u32>(v);
  return TC_ACT_OK;
}
`;
    const k = new BpfKernel();
    const obj = await k.load("programs/examples/wide_lpm.ts", { name: `wide_lpm${data}.ts`, source: src });
    const m = obj.map("wide_lpm");
    const rnd = (() => {
      let x = 0x9e3779b9 ^ data;
      return () => ((x = (Math.imul(x ^ (x >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0), x & 255);
    })();
    const base = Array.from({ length: data }, rnd);
    const keyOf = (plen: number, bytes: number[]) => new Uint8Array([plen & 255, 0, 0, 0, ...bytes]);
    const send = (entry: string, payload: Uint8Array) => {
      const batch = new PacketBatch(k.mem);
      batch.add(buildUdp({ src: "10.0.0.1", dst: "10.0.0.2", sport: 1, dport: 2, payload }));
      obj.program(entry).runBatch(batch);
      return { ret: batch.retval(0), mark: batch.mark(0) >>> 0 };
    };
    const plens = [0, 1, 7, 8, 9, 13, 16, 17, 24, 31, 32, 33, 40, 63, 64, 65, 100, 127, 128].filter((p) => p <= data * 8);
    for (const p of plens) {
      const bytes = base.map((b) => b ^ rnd()); // unmasked noise past the prefix: the insert must mask it
      for (let i = 0; i < data && i * 8 < p; i++) bytes[i] = (base[i]! & (p >= i * 8 + 8 ? 0xff : 0xff00 >> (p - i * 8))) | (bytes[i]! & (p >= i * 8 + 8 ? 0 : 0xff >> (p - i * 8)));
      const payload = new Uint8Array([...keyOf(p, bytes), p + 1, 0, 0, 0]);
      expect(send("insert", payload).ret).toBe(0);
      // The host finds it at that prefix by the unmasked key too.
      expect(m.lookup(keyOf(p, bytes))).toEqual(new Uint8Array([p + 1, 0, 0, 0]));
    }
    expect(m.count).toBe(plens.length);
    for (let t = 0; t < 50; t++) {
      const q = base.map((b, i) => (i * 8 >= (t % (data * 8 + 1)) ? b ^ rnd() : b));
      const key = keyOf(data * 8, q);
      const host = m.lookup(key);
      const want = host ? host[0]! : 0xffffffff;
      expect(send("lookup", new Uint8Array([...key, 0, 0, 0, 0])).mark).toBe(want);
    }
  });
});

describe("typed lookups (map_lookup_key<K, V>) agree with map_lookup_elem", () => {
  // map_lookup_key searches a (LRU) hash map inline when its key size is sizeof<K> and one of 4, 8, 12, 16 bytes,
  // with that size a constant, and falls back to map_lookup_elem otherwise: both must return the same element for
  // every key, present or not, through shared chains (max_entries 4: four buckets), count one lookup each, and
  // not depend on the bytes after the key (the packet carries others).
  const src = `import { __sk_buff, BPF_MAP_TYPE_HASH, BPF_MAP_TYPE_LRU_HASH, BPF_MAP_TYPE_PERCPU_HASH, BPF_MAP_TYPE_ARRAY, map_lookup_elem, map_lookup_key, TC_ACT_OK } from "tcbox";
// @ts-ignore: decorator
@external("tcbox", "map_create")
declare function map_create(type: u32, ks: u32, vs: u32, max: u32, flags: u32, name: string, pinning: u32, kt: string, vt: string): usize;
@unmanaged class K6 { a: u32; b: u16; }
@unmanaged class K12 { a: u32; b: u32; c: u32; }
@unmanaged class K16 { a: u64; b: u64; }
@unmanaged class V { v: u32; }
const M0 = map_create(BPF_MAP_TYPE_HASH, 4, 4, 4, 0, "tk_h4", 0, "", "");
const M1 = map_create(BPF_MAP_TYPE_HASH, 8, 4, 4, 0, "tk_h8", 0, "", "");
const M2 = map_create(BPF_MAP_TYPE_HASH, 12, 4, 4, 0, "tk_h12", 0, "", "");
const M3 = map_create(BPF_MAP_TYPE_LRU_HASH, 16, 4, 4, 0, "tk_l16", 0, "", "");
const M4 = map_create(BPF_MAP_TYPE_LRU_HASH, 4, 4, 4, 0, "tk_l4", 0, "", "");
const M5 = map_create(BPF_MAP_TYPE_HASH, 6, 4, 4, 0, "tk_h6", 0, "", "");
const M6 = map_create(BPF_MAP_TYPE_PERCPU_HASH, 4, 4, 4, 0, "tk_p4", 0, "", "");
const M7 = map_create(BPF_MAP_TYPE_ARRAY, 4, 4, 4, 0, "tk_a4", 0, "", "");
const M8 = map_create(BPF_MAP_TYPE_HASH, 12, 4, 4, 0, "tk_wrong", 0, "", "");
function map_of(i: u32): usize {
  return i == 0 ? M0 : i == 1 ? M1 : i == 2 ? M2 : i == 3 ? M3 : i == 4 ? M4 : i == 5 ? M5 : i == 6 ? M6 : i == 7 ? M7 : M8;
}
function typed(i: u32, k: usize): usize {
  if (i == 0) return changetype<usize>(map_lookup_key<u32, V>(M0, k));
  if (i == 1) return changetype<usize>(map_lookup_key<u64, V>(M1, k));
  if (i == 2) return changetype<usize>(map_lookup_key<K12, V>(M2, k));
  if (i == 3) return changetype<usize>(map_lookup_key<K16, V>(M3, k));
  if (i == 4) return changetype<usize>(map_lookup_key<u32, V>(M4, k));
  if (i == 5) return changetype<usize>(map_lookup_key<K6, V>(M5, k));
  if (i == 6) return changetype<usize>(map_lookup_key<u32, V>(M6, k));
  if (i == 7) return changetype<usize>(map_lookup_key<u32, V>(M7, k));
  return changetype<usize>(map_lookup_key<u64, V>(M8, k)); // K of 8 bytes on a 12-byte key: the generic path
}
export function typed_lookup(skb: __sk_buff): i32 {
  skb.cb1 = <u32>typed(skb.cb0, <usize>skb.data + 42);
  return TC_ACT_OK;
}
export function elem_lookup(skb: __sk_buff): i32 {
  skb.cb1 = <u32>map_lookup_elem(map_of(skb.cb0), <usize>skb.data + 42);
  return TC_ACT_OK;
}
`;
  const load = async () => {
    const k = new BpfKernel();
    return { k, obj: await k.load("programs/examples/typed_lookup.ts", { name: "typed_lookup.ts", source: src }) };
  };
  const lookup = (k: BpfKernel, obj: BpfObject, entry: string, i: number, keys: Uint8Array[]) => {
    const batch = new PacketBatch(k.mem);
    // The key, then bytes that are not part of it.
    for (const key of keys) batch.add(buildUdp({ src: "10.0.0.1", dst: "10.0.0.2", sport: 1, dport: 2, payload: new Uint8Array([...key, ...Array.from({ length: 16 }, (_, j) => (j * 37 + key[0]!) & 255)]) }), { cb: [i] });
    obj.program(entry).runBatch(batch);
    return keys.map((_, j) => {
      expect(batch.traps[j]).toBe(0);
      return batch.field(j, SKB_CB + 4) >>> 0;
    });
  };
  const maps: [string, number][] = [["tk_h4", 4], ["tk_h8", 8], ["tk_h12", 12], ["tk_l16", 16], ["tk_l4", 4], ["tk_h6", 6], ["tk_p4", 4], ["tk_a4", 4], ["tk_wrong", 12]];
  it.each(maps.map(([name, ks], i) => [name, ks, i] as const))("%s (%i-byte keys)", async (name, ks, i) => {
    const { k, obj } = await load();
    const m = obj.map(name);
    let x = 0x2545f491 ^ (i * 977);
    const rnd = () => ((x = (Math.imul(x ^ (x >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0), x & 255);
    // 4 keys stored (a full map: chains share the 4 buckets), 12 absent; array indexes 0..3 in range, 4.. not.
    const keys = Array.from({ length: 16 }, (_, j) => (name === "tk_a4" ? new Uint8Array([j, 0, 0, 0]) : new Uint8Array(Array.from({ length: ks }, rnd))));
    for (let j = 0; j < 4; j++) m.update(keys[j]!, new Uint8Array([j + 1, 0, 0, 0]));
    const before = m.lookups;
    const want = lookup(k, obj, "elem_lookup", i, keys);
    expect(lookup(k, obj, "typed_lookup", i, keys)).toEqual(want);
    expect(want.map((a) => (a === 0 ? 0 : k.mem.u32[a >>> 2]))).toEqual([1, 2, 3, 4, ...Array(12).fill(0)]);
    expect((m.lookups - before) >>> 0).toBe(32);
  });

  it("LRU: a typed hit sets the element's reference bit, a miss sets none", async () => {
    const { k, obj } = await load();
    const m = obj.map("tk_l16");
    const key = (b: number) => new Uint8Array(16).fill(b);
    for (const b of [1, 2, 3]) m.update(key(b), new Uint8Array([b, 0, 0, 0]));
    const order = lruOrder(k.mem, m.base);
    expect(order.some((idx) => lruReferenced(k.mem, m.base, idx))).toBe(false);
    expect(lookup(k, obj, "typed_lookup", 3, [key(2), key(9)])).toEqual([m.valueAddr(key(2)), 0]);
    // Referenced elements by value address (element + next/hash + 16-byte key).
    const referenced = () => order.filter((idx) => lruReferenced(k.mem, m.base, idx)).map((idx) => elemAddr(k.mem, m.base, idx) + 24).sort((a, b) => a - b);
    expect(referenced()).toEqual([m.valueAddr(key(2))]);
    lookup(k, obj, "typed_lookup", 3, [key(2), key(3)]);
    expect(referenced()).toEqual([m.valueAddr(key(2)), m.valueAddr(key(3))].sort((a, b) => a - b));
  });
});
