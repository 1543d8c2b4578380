// pass.ts and drop.ts in Cilium's bpf/tests shape: PKTGEN (build the packet), SETUP (load, run), CHECK
// (verdict, output bytes, maps).
import { beforeAll, describe, expect, it } from "vitest";
import { buildTcp, buildUdp } from "../../src/packet/index.js";
import { BpfKernel, type BpfObject } from "../../src/ebpf/kernel.js";
import { TC_ACT_OK, TC_ACT_SHOT } from "../../src/ebpf/abi.js";

const PKTGEN = [
  { name: "tcp syn", pkt: buildTcp({ src: "10.0.0.1", dst: "10.0.0.2", sport: 40000, dport: 80, flags: 0x02 }), ipv4: true },
  { name: "udp dns", pkt: buildUdp({ src: "10.0.0.3", dst: "10.96.0.10", sport: 5353, dport: 53, payload: new Uint8Array(20) }), ipv4: true },
  { name: "not ip", pkt: Uint8Array.from([...new Array(12).fill(0xaa), 0x08, 0x06, ...new Array(28).fill(0)]), ipv4: false },
];

describe("programs/pass.ts", () => {
  let obj: BpfObject;
  beforeAll(async () => {
    obj = await new BpfKernel().load("programs/pass.ts");
  });

  it.each(PKTGEN)("$name: TC_ACT_OK, bytes unchanged", ({ pkt }) => {
    const r = obj.program("cls_main").run(pkt);
    expect(r.retval).toBe(TC_ACT_OK);
    expect(r.trap).toBeUndefined();
    expect(Buffer.from(r.packet).equals(Buffer.from(pkt))).toBe(true);
  });

  it("CHECK: pass_stats counted IPv4 and other packets with their bytes", () => {
    const stats = obj.map("pass_stats").typed();
    const ip = PKTGEN.filter((p) => p.ipv4);
    const other = PKTGEN.filter((p) => !p.ipv4);
    expect(stats.lookup(0)).toEqual({ packets: ip.length, bytes: ip.reduce((s, p) => s + p.pkt.length, 0) });
    expect(stats.lookup(1)).toEqual({ packets: other.length, bytes: other.reduce((s, p) => s + p.pkt.length, 0) });
  });
});

describe("programs/drop.ts", () => {
  it("drops every packet with DROP_POLICY_DENIED and counts it", async () => {
    const obj = await new BpfKernel().load("programs/drop.ts");
    const prog = obj.program();
    for (const { pkt } of PKTGEN) {
      const r = prog.run(pkt);
      expect(r.retval).toBe(TC_ACT_SHOT);
      expect(r.dropReason).toBe(133);
    }
    expect(prog.stats.dropReasons.get(133)).toBe(PKTGEN.length);
    expect(obj.map("drop_stats").typed().lookup(0)).toEqual({ packets: PKTGEN.length, bytes: PKTGEN.reduce((s, p) => s + p.pkt.length, 0) });
  });
});
