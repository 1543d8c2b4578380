// Bounded execution: a runaway loop, deep recursion, out-of-bounds access and abort() stop the program, drop
// that packet (TC_ACT_SHOT), count it by reason, and the batch and the instance go on; maps are untouched.
import binaryen from "binaryen";
import { describe, expect, it } from "vitest";
import { buildUdp } from "../../src/packet/index.js";
import { BpfKernel } from "../../src/ebpf/kernel.js";
import { TC_ACT_OK, TC_ACT_SHOT } from "../../src/ebpf/abi.js";
import { PacketBatch } from "../../src/ebpf/batch.js";

const pkt = buildUdp({ src: "10.0.0.1", dst: "10.0.0.2", sport: 1, dport: 2, payload: new Uint8Array(10) });

describe("instruction budget", () => {
  it("a runaway loop in the middle of a batch: that packet is dropped as 'budget', the others run, the next batch too", async () => {
    const kernel = new BpfKernel();
    const obj = await kernel.load("programs/examples/runaway.ts");
    const pass = await kernel.load("programs/pass.ts");
    const prog = obj.program("cls_main");
    const batch = new PacketBatch(kernel.mem);
    const marks = [0, 1, 0, 1, 0];
    for (const mark of marks) batch.add(pkt, { mark });
    const t0 = performance.now();
    expect(prog.runBatch(batch)).toBe(2);
    expect(performance.now() - t0).toBeLessThan(5000);
    expect(marks.map((_, i) => batch.retval(i))).toEqual([TC_ACT_OK, TC_ACT_SHOT, TC_ACT_OK, TC_ACT_SHOT, TC_ACT_OK]);
    expect(marks.map((_, i) => batch.traps[i])).toEqual([0, 2, 0, 2, 0]);
    // The loop ran about budget/2 iterations (each iteration = one loop header unit + ...) before it was stopped.
    expect(batch.field(1, 48)).toBeGreaterThan(100_000);
    expect(prog.stats.traps.budget).toBe(2);
    expect(prog.stats.retvals.get(TC_ACT_OK)).toBe(3);
    // The instance keeps working, and another program's maps are intact.
    expect(prog.run(pkt, { mark: 0 }).retval).toBe(TC_ACT_OK);
    expect(pass.program().run(pkt).retval).toBe(TC_ACT_OK);
    expect(pass.map("pass_stats").typed().lookup(0)).toEqual({ packets: 1, bytes: pkt.length });
  });

  it("a smaller budget stops deep recursion (function entries count); shallow recursion passes", async () => {
    const kernel = new BpfKernel({ budget: 1000 });
    const prog = (await kernel.load("programs/examples/runaway.ts")).program("recurse");
    expect(prog.run(pkt, { mark: 10 })).toMatchObject({ retval: TC_ACT_OK, trap: undefined });
    expect(prog.run(pkt, { mark: 5000 })).toMatchObject({ retval: TC_ACT_SHOT, trap: "budget" });
    kernel.budget = 1_000_000;
    // Far deeper than the WebAssembly stack: the engine's stack overflow is a trap too.
    expect(prog.run(pkt, { mark: 900_000 })).toMatchObject({ retval: TC_ACT_SHOT });
    expect(prog.run(pkt, { mark: 3 }).retval).toBe(TC_ACT_OK);
  });
});

describe("budget ticks", () => {
  // The instrumentation walks every function for its loops; a module with an expression kind the walk does not
  // know (here table.size, which asc does not emit) gets binaryen's log-execution ticks instead, and its runaway
  // loop is stopped all the same.
  it("a runaway loop in a module the walk does not know (the log-execution fallback) is stopped by the budget", () => {
    const wat = `(module
  (import "env" "memory" (memory 1))
  (table 1 funcref)
  (func (export "cls_main") (param $skb i32) (result i32)
    (loop $again
      (drop (table.size 0))
      (br_if $again (i32.eq (i32.load offset=8 (local.get $skb)) (i32.const 1))))
    (i32.const 0)))`;
    const m = binaryen.parseText(wat);
    m.setFeatures(binaryen.Features.All);
    const bytes = m.emitBinary();
    m.dispose();
    const kernel = new BpfKernel();
    const prog = kernel.loadWasm(bytes, "reftypes.wasm").program("cls_main");
    expect(prog.run(pkt, { mark: 0 })).toMatchObject({ retval: TC_ACT_OK, trap: undefined });
    expect(prog.run(pkt, { mark: 1 })).toMatchObject({ retval: TC_ACT_SHOT, trap: "budget" });
  });

  it("a loop in a function that calls nothing still ticks; so does each entry into a calling function", async () => {
    // runaway.ts's cls_main calls nothing: its loop alone must stop it (see the first test); recurse_n calls
    // itself: budget 1000 stops a depth of 5000 (the second test). Here both at once: the loop's iterations and
    // the entries share one budget per packet.
    const kernel = new BpfKernel({ budget: 50 });
    const prog = (await kernel.load("programs/examples/runaway.ts")).program("recurse");
    expect(prog.run(pkt, { mark: 20 })).toMatchObject({ retval: TC_ACT_OK, trap: undefined });
    expect(prog.run(pkt, { mark: 60 })).toMatchObject({ retval: TC_ACT_SHOT, trap: "budget" });
  });
});

describe("out-of-bounds packet access and abort", () => {
  it.each([
    { name: "first word", entry: "cls_main", cb: 0, retval: TC_ACT_OK, trap: undefined },
    { name: "last word", entry: "cls_main", cb: pkt.length - 4, retval: TC_ACT_OK, trap: undefined },
    { name: "one byte past", entry: "cls_main", cb: pkt.length - 3, retval: TC_ACT_SHOT, trap: "oob" },
    { name: "far past", entry: "cls_main", cb: 0x7fffffff, retval: TC_ACT_SHOT, trap: "oob" },
    { name: "skb_load_bytes past the end returns -EFAULT instead", entry: "load_bytes", cb: pkt.length - 3, retval: TC_ACT_SHOT, trap: undefined },
  ])("$name", async ({ entry, cb, retval, trap }) => {
    const kernel = new BpfKernel();
    const prog = (await kernel.load("programs/examples/oob.ts")).program(entry);
    const r = prog.run(pkt, { cb: [cb] });
    expect(r.retval).toBe(retval);
    expect(r.trap).toBe(trap);
    expect(prog.stats.traps.oob).toBe(trap === "oob" ? 1 : 0);
  });

  it("abort() is counted with its message", async () => {
    const prog = (await new BpfKernel().load("programs/examples/oob.ts")).program("asserts");
    expect(prog.run(pkt, { mark: 7 })).toMatchObject({ retval: TC_ACT_SHOT, trap: "abort" });
    expect(prog.stats.lastTrap).toMatch(/mark 7 is not allowed/);
    expect(prog.run(pkt, { mark: 1 }).retval).toBe(TC_ACT_OK);
  });
});
