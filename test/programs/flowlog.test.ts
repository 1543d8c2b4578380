// programs/flowlog.ts: one ring-buffer event per packet, decoded on the host into Hubble-like flows (5-tuple,
// identities from the shared ipcache, reply detection from the shared conntrack, verdict and drop reason
// handed on in cb[0]) and printed as `hubble observe` lines.
import { beforeAll, describe, expect, it } from "vitest";
import { buildIcmpEcho, buildTcp, buildUdp } from "../../src/packet/index.js";
import { BpfKernel, type BpfObject } from "../../src/ebpf/kernel.js";
import type { BpfProgram } from "../../src/ebpf/program.js";
import { PolicyMaps } from "../../src/k8s/agent/policy-maps.js";
import { decodeFlowEvent, formatFlow, readFlows } from "../../src/k8s/agent/flow-decoder.js";

let kernel: BpfKernel;
let obj: BpfObject;
let flowlog: BpfProgram;
let policy: BpfProgram;

beforeAll(async () => {
  kernel = new BpfKernel({ seed: 9 });
  policy = (await kernel.load("programs/policy.ts")).program();
  obj = await kernel.load("programs/flowlog.ts");
  flowlog = obj.program();
  kernel.ktimeNs = 1_700_000_000_123_000_000n; // 2023-11-14T22:13:20.123Z
  const pm = new PolicyMaps(kernel);
  pm.upsertIpcache("0.0.0.0/0", 2);
  pm.upsertIpcache("10.244.1.5/32", 256);
  pm.upsertIpcache("10.244.2.7/32", 257);
  pm.upsertEndpoint({ ip: "10.244.2.7", id: 7, identity: 257 });
}, 120_000);

describe("flowlog", () => {
  it("emits one event per packet, unchanged packets, and the host decodes 5-tuple, identities and verdict", () => {
    const pkt = buildTcp({ src: "10.244.1.5", dst: "10.244.2.7", sport: 40000, dport: 80, flags: 0x02 });
    const r = flowlog.run(pkt);
    expect(r.retval).toBe(0);
    expect(Buffer.from(r.packet).equals(Buffer.from(pkt))).toBe(true);
    const flows = readFlows(obj.map("tcbox_flow_events"));
    expect(flows).toHaveLength(1);
    expect(flows[0]).toMatchObject({
      timeNs: 1_700_000_000_123_000_000n,
      source: { ip: "10.244.1.5", port: 40000, identity: 256 },
      destination: { ip: "10.244.2.7", port: 80, identity: 257 },
      protocol: "TCP", verdict: "FORWARDED", dropReason: 0, observationPoint: "to-stack", isReply: false, tcpFlags: ["SYN"], length: pkt.length,
    });
    expect(formatFlow(flows[0]!)).toBe("Nov 14 22:13:20.123: 10.244.1.5:40000 (ID:256) -> 10.244.2.7:80 (ID:257) to-stack FORWARDED (TCP Flags: SYN)");
  });

  it("replies of tracked connections are flagged is_reply and printed initiator first", () => {
    // policy.ts tracks the connection (the endpoint has no policy: allowed and recorded in cilium_ct4_global).
    policy.run(buildUdp({ src: "10.244.2.7", dst: "8.8.8.8", sport: 5353, dport: 53 }));
    flowlog.run(buildUdp({ src: "10.244.2.7", dst: "8.8.8.8", sport: 5353, dport: 53 }));
    flowlog.run(buildUdp({ src: "8.8.8.8", dst: "10.244.2.7", sport: 53, dport: 5353 }));
    const [q, a] = readFlows(obj.map("tcbox_flow_events"));
    expect(q!.isReply).toBe(false);
    expect(a!.isReply).toBe(true);
    expect(formatFlow(a!)).toBe("Nov 14 22:13:20.123: 10.244.2.7:5353 (ID:257) <- 8.8.8.8:53 (world) to-stack FORWARDED (UDP)");
  });

  it("a drop handed on in cb[0] is reported DROPPED with Cilium's reason text, and the packet dropped", () => {
    const r = flowlog.run(buildTcp({ src: "198.51.100.1", dst: "10.244.2.7", sport: 1, dport: 22, flags: 0x02 }), { cb: [133] });
    expect(r.retval).toBe(2);
    const [f] = readFlows(obj.map("tcbox_flow_events"));
    expect(f).toMatchObject({ verdict: "DROPPED", dropReason: 133, dropReasonDesc: "Policy denied" });
    expect(formatFlow(f!)).toMatch(/198\.51\.100\.1:1 \(world\) -> 10\.244\.2\.7:22 \(ID:257\) Policy denied DROPPED \(TCP Flags: SYN\)$/);
  });

  it("the observation point is per attachment (tcbox_flowlog_config); ICMP prints without ports", () => {
    obj.map("tcbox_flowlog_config").update(new Uint8Array(4), Uint8Array.of(5, 0, 0, 0));
    flowlog.run(buildIcmpEcho({ src: "10.244.1.5", dst: "10.244.2.7", id: 3, seq: 1 }));
    const [f] = readFlows(obj.map("tcbox_flow_events"));
    expect(f!.observationPoint).toBe("from-endpoint");
    expect(formatFlow(f!, (id) => (id === 256 ? "shop/client" : undefined))).toBe("Nov 14 22:13:20.123: 10.244.1.5 (shop/client) -> 10.244.2.7 (ID:257) from-endpoint FORWARDED (ICMPv4)");
  });

  it("decodeFlowEvent reads exactly the program's record layout", () => {
    expect(obj.layout("flow_event")?.size).toBe(44);
    const rec = new Uint8Array(44);
    rec[29] = 2;
    rec[30] = 158;
    expect(decodeFlowEvent(rec)).toMatchObject({ verdict: "DROPPED", dropReasonDesc: "Service backend not found" });
  });
});
