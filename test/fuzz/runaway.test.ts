// Runaway user programs fed hostile traffic: an endless loop, an out-of-bounds read and a map filled to its limit.
// The offending packet is dropped (TC_ACT_SHOT) and counted by reason; every other packet of the batch and the
// next batches run; nothing throws. Packets are the fuzz generator's hostile mix.
import { describe, expect, it } from "vitest";
import { BpfKernel } from "../../src/ebpf/kernel.js";
import { PacketBatch } from "../../src/ebpf/batch.js";
import { TC_ACT_OK, TC_ACT_SHOT } from "../../src/ebpf/abi.js";
import { parseIpv4 } from "../../src/packet/index.js";
import { hostilePacket, rng } from "./hostile.js";

const target = { dsts: [parseIpv4("10.96.0.10"), parseIpv4("10.244.1.5")], src: parseIpv4("10.244.2.9") };

function hostileFrames(n: number, seed: number): Uint8Array[] {
  const r = rng(seed);
  const out: Uint8Array[] = [];
  for (let i = 0; i < n; i++) {
    const { ip } = hostilePacket(r, target);
    const f = new Uint8Array(14 + ip.length);
    f[12] = 8;
    f.set(ip, 14);
    out.push(f);
  }
  return out;
}

describe("runaway programs under hostile traffic", () => {
  it("endless loop (budget) and out-of-bounds reads: each such packet dropped and counted, the rest pass, runs go on", async () => {
    const kernel = new BpfKernel({ budget: 200_000 });
    const loop = (await kernel.load("programs/examples/runaway.ts")).program("cls_main");
    const oob = (await kernel.load("programs/examples/oob.ts")).program("cls_main");
    const frames = hostileFrames(400, 3);
    const r = rng(4);
    for (let round = 0; round < 3; round++) {
      // One batch at a time: batches share the kernel's packet arena (as one CPU's queue does).
      const b1 = new PacketBatch(kernel.mem);
      const loopMarks: number[] = [];
      const offs: number[] = [];
      for (const f of frames) {
        const m = r() < 0.1 ? 1 : 0;
        loopMarks.push(m);
        b1.add(f, { mark: m });
      }
      expect(loop.runBatch(b1)).toBe(loopMarks.filter((m) => m === 1).length);
      loopMarks.forEach((m, i) => expect(b1.retval(i)).toBe(m === 1 ? TC_ACT_SHOT : TC_ACT_OK));
      const b2 = new PacketBatch(kernel.mem);
      for (const f of frames) {
        const off = Math.floor(r() * 200);
        offs.push(off);
        b2.add(f, { cb: [off] });
      }
      const traps = oob.runBatch(b2);
      // A 4-byte read at `off` is out of bounds exactly when off + 4 > frame length.
      const want = frames.filter((f, i) => offs[i]! + 4 > f.length).length;
      expect(traps).toBe(want);
      frames.forEach((f, i) => expect(b2.retval(i)).toBe(offs[i]! + 4 > f.length ? TC_ACT_SHOT : TC_ACT_OK));
    }
    expect(loop.stats.traps.budget).toBeGreaterThan(0);
    expect(oob.stats.traps.oob ?? Object.values(oob.stats.traps).reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
  }, 120_000);

  it("a map filled to its limit: BPF_NOEXIST returns -E2BIG, the program and the traffic go on; the LRU evicts", async () => {
    const kernel = new BpfKernel();
    const obj = await kernel.load("programs/examples/map_filler.ts");
    const fill = obj.program("fill_hash");
    const lru = obj.program("fill_lru");
    const frames = hostileFrames(300, 9).filter((f) => f.length >= 34 && f[14]! >> 4 === 4);
    const marks: number[] = [];
    for (const f of frames) marks.push(fill.run(f, { cb: [1, 1] }).mark | 0);
    expect(obj.map("fill_hash").count).toBe(4);
    expect(marks.filter((m) => m === -7).length).toBeGreaterThan(0); // -E2BIG once full
    for (const f of frames) lru.run(f);
    expect(obj.map("fill_lru").count).toBe(4);
  }, 120_000);
});
