// bpf_tail_call through a program array: the slot's verdict is the result; an empty slot or an index past
// max_entries falls through with -ENOENT; a chain longer than MAX_TAIL_CALL_CNT (33) stops with -E2BIG.
import { beforeAll, expect, it } from "vitest";
import { buildUdp } from "../../src/packet/index.js";
import { BpfKernel, type BpfObject } from "../../src/ebpf/kernel.js";
import { PacketBatch } from "../../src/ebpf/batch.js";
import { TC_ACT_OK, TC_ACT_REDIRECT, TC_ACT_SHOT, SKB_CB } from "../../src/ebpf/abi.js";

let kernel: BpfKernel;
let obj: BpfObject;
beforeAll(async () => {
  kernel = new BpfKernel();
  obj = await kernel.load("programs/examples/tail_calls.ts");
  const calls = obj.map("tail_calls");
  kernel.setTailCall(calls, 1, obj.program("to_redirect"));
  kernel.setTailCall(calls, 2, obj.program("again"));
});

const pkt = buildUdp({ src: "10.0.0.1", dst: "10.0.0.2", sport: 1, dport: 2 });
function run(cb: number[]) {
  const b = new PacketBatch(kernel.mem);
  b.add(pkt, { cb });
  obj.program("dispatch").runBatch(b);
  return { retval: b.retval(0), mark: b.mark(0) | 0, ifindex: b.redirectIfindex(0), depth: b.field(0, SKB_CB + 8) };
}

it.each([
  { name: "slot 1: the slot program's redirect is the verdict", cb: [1, 9], want: { retval: TC_ACT_REDIRECT, mark: 0x77, ifindex: 9 } },
  { name: "empty slot 0: -ENOENT, the dispatcher drops", cb: [0, 0], want: { retval: TC_ACT_SHOT, mark: -2 } },
  { name: "index past max_entries: -ENOENT", cb: [7, 0], want: { retval: TC_ACT_SHOT, mark: -2 } },
  { name: "a self tail call stops after 33 calls with -E2BIG", cb: [2, 0], want: { retval: TC_ACT_OK, mark: -7, depth: 33 } },
])("$name", ({ cb, want }) => {
  expect(run(cb)).toMatchObject(want);
});

it("the program array lists its programs; unloading the slot's object makes the call miss", async () => {
  const entries = [...obj.map("tail_calls").entries()].map(([k, v]) => [k[0], new DataView(v.buffer).getUint32(0, true)]);
  expect(entries).toEqual([
    [1, obj.program("to_redirect").id],
    [2, obj.program("again").id],
  ]);
  const other = await kernel.load("programs/pass.ts");
  kernel.setTailCall(obj.map("tail_calls"), 3, other.program());
  expect(run([3, 0]).retval).toBe(TC_ACT_OK);
  other.close();
  expect(run([3, 0])).toMatchObject({ retval: TC_ACT_SHOT, mark: -2 });
});
