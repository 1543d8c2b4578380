// Pinned maps (PIN_GLOBAL_NS) are shared by name across programs and survive unload and reload, as maps in
// /sys/fs/bpf/tc/globals do; unpinned maps go with their program.
import { describe, expect, it } from "vitest";
import { buildTcp, get32, parseIpv4 } from "../../src/packet/index.js";
import { BpfKernel } from "../../src/ebpf/kernel.js";

const syn = buildTcp({ src: "10.0.0.1", dst: "10.96.0.10", sport: 40000, dport: 80, flags: 0x02 });

describe("pinning", () => {
  it("reload keeps the pinned services map: the new program finds what the host wrote for the old one", async () => {
    const kernel = new BpfKernel();
    const v1 = await kernel.load("programs/examples/rewrite_dst.ts");
    v1.map("rewrite_services").typed().update({ daddr: "10.96.0.10", dport: 80, proto: 6 }, { addr: "10.0.1.5", port: 8080 });
    expect(get32(v1.program().run(syn).packet, 30)).toBe(parseIpv4("10.0.1.5"));
    const base = v1.map("rewrite_services").base;
    v1.close();
    expect(v1.program().closed).toBe(true);
    expect(kernel.pinned.get("rewrite_services")?.count).toBe(1);
    const v2 = await kernel.load("programs/examples/rewrite_dst.ts");
    expect(v2.map("rewrite_services").base).toBe(base);
    expect(get32(v2.program().run(syn).packet, 30)).toBe(parseIpv4("10.0.1.5"));
  });

  it("two loaded programs share one pinned map; unpinned maps are per object and freed on close", async () => {
    const kernel = new BpfKernel();
    const a = await kernel.load("programs/examples/rewrite_dst.ts", { name: "a.ts" });
    const b = await kernel.load("programs/examples/rewrite_dst.ts", { name: "b.ts" });
    expect(a.map("rewrite_services")).toBe(b.map("rewrite_services"));
    const p1 = await kernel.load("programs/pass.ts", { name: "p1.ts" });
    const p2 = await kernel.load("programs/pass.ts", { name: "p2.ts" });
    expect(p1.map("pass_stats")).not.toBe(p2.map("pass_stats"));
    p1.program().run(syn);
    expect(p2.map("pass_stats").typed().lookup(0)).toEqual({ packets: 0, bytes: 0 });
    const before = kernel.maps().length;
    p1.close();
    expect(kernel.maps().length).toBe(before - 1);
  });
});
