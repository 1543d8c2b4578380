// tc semantics: priority order, direct-action (first non-UNSPEC verdict decides), atomic replace keeping maps,
// detach, ingress and egress kept apart.
import { beforeAll, describe, expect, it } from "vitest";
import { buildTcp, get32, parseIpv4 } from "../../src/packet/index.js";
import { BpfKernel, type BpfObject } from "../../src/ebpf/kernel.js";
import { PacketBatch } from "../../src/ebpf/batch.js";
import { TcHooks, tcOutcome } from "../../src/ebpf/tc.js";
import { TC_ACT_OK, TC_ACT_REDIRECT, TC_ACT_SHOT } from "../../src/ebpf/abi.js";

const UNSPEC_IF_MARK = `import { __sk_buff, TC_ACT_UNSPEC, TC_ACT_OK, redirect } from "tcbox";
export function cls_main(skb: __sk_buff): i32 {
  if (skb.mark == 9) return redirect(skb, 42, 0);
  return skb.mark == 0 ? TC_ACT_UNSPEC : TC_ACT_OK;
}`;

let kernel: BpfKernel;
let unspec: BpfObject;
let drop: BpfObject;
let rewrite: BpfObject;
beforeAll(async () => {
  kernel = new BpfKernel();
  unspec = await kernel.load("programs/examples/unspec.ts", { source: UNSPEC_IF_MARK, name: "unspec.ts" });
  drop = await kernel.load("programs/drop.ts");
  rewrite = await kernel.load("programs/examples/rewrite_dst.ts");
});

const syn = buildTcp({ src: "10.0.0.1", dst: "10.96.0.10", sport: 40000, dport: 80, flags: 0x02 });

function batchOf(marks: number[]): PacketBatch {
  const b = new PacketBatch(kernel.mem);
  for (const mark of marks) b.add(syn, { mark });
  return b;
}

describe("tc hooks", () => {
  it("filters run by pref; the first verdict other than TC_ACT_UNSPEC decides", () => {
    const tc = new TcHooks();
    tc.attach(3, "ingress", drop.program(), { pref: 20 });
    tc.attach(3, "ingress", unspec.program(), { pref: 10 });
    const b = batchOf([0, 1, 9, 0]);
    tc.run(3, "ingress", b);
    expect([...tc.verdicts.subarray(0, 4)]).toEqual([TC_ACT_SHOT, TC_ACT_OK, TC_ACT_REDIRECT, TC_ACT_SHOT]);
    expect([...tc.decidedBy.subarray(0, 4)]).toEqual([1, 0, 0, 1]);
    expect(b.redirectIfindex(2)).toBe(42);
    expect(b.field(0, 40)).toBe(3); // skb->ifindex is the hook's device
    expect([0, 1, 2, 3].map((i) => tcOutcome(tc.verdicts[i]!))).toEqual(["drop", "pass", "redirect", "drop"]);
  });

  it("no filter, or only UNSPEC: the packet passes (TC_ACT_OK); egress is a separate hook", () => {
    const tc = new TcHooks();
    tc.attach(3, "egress", drop.program());
    const b = batchOf([0]);
    tc.run(3, "ingress", b);
    expect(tc.verdicts[0]).toBe(TC_ACT_OK);
    tc.attach(3, "ingress", unspec.program());
    tc.run(3, "ingress", b);
    expect(tc.verdicts[0]).toBe(TC_ACT_OK);
    tc.run(3, "egress", b);
    expect(tc.verdicts[0]).toBe(TC_ACT_SHOT);
  });

  it("auto prefs start at 49152 and go down, so a newer filter without pref runs first", () => {
    const tc = new TcHooks();
    tc.attach(1, "ingress", drop.program());
    tc.attach(1, "ingress", unspec.program());
    expect(tc.list(1, "ingress").map((f) => [f.pref, f.prog.objectName])).toEqual([[49151, "unspec.ts"], [49152, "drop.ts"]]);
    expect(() => tc.attach(1, "ingress", drop.program(), { pref: 49152 })).toThrow(/exists \(use replace\)/);
  });

  it("replace swaps the program atomically and keeps the pinned maps; detach removes it", async () => {
    const tc = new TcHooks();
    rewrite.map("rewrite_services").typed().update({ daddr: "10.96.0.10", dport: 80, proto: 6 }, { addr: "10.0.2.7", port: 0 });
    tc.attach(5, "ingress", rewrite.program(), { pref: 1 });
    let b = batchOf([0, 0]);
    tc.run(5, "ingress", b);
    expect(get32(b.packet(0), 30)).toBe(parseIpv4("10.0.2.7"));
    const v2 = await kernel.load("programs/examples/rewrite_dst.ts", { name: "rewrite_v2.ts" });
    tc.replace(5, "ingress", 1, v2.program());
    rewrite.close();
    b = batchOf([0, 0]);
    tc.run(5, "ingress", b);
    expect(get32(b.packet(1), 30)).toBe(parseIpv4("10.0.2.7"));
    expect(tc.list(5, "ingress")[0]!.prog.objectName).toBe("rewrite_v2.ts");
    tc.detach(5, "ingress", 1);
    b = batchOf([0]);
    tc.run(5, "ingress", b);
    expect(get32(b.packet(0), 30)).toBe(parseIpv4("10.96.0.10"));
  });
});
