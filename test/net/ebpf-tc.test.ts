// Real eBPF programs (AssemblyScript, src/ebpf runtime) on the model's tc hooks through EbpfTc.
import { beforeAll, describe, expect, it } from "vitest";
import { BpfKernel, type BpfObject } from "../../src/ebpf/kernel.js";
import { IPPROTO_UDP, World, sendUdp, summarize } from "../../src/net/index.js";
import { EbpfTc } from "../../src/net/ebpf-tc.js";
import { bridgeNode, bridgePod, ip } from "./topo.js";

/** IPv4 frames go straight to ifindex 3's egress (veth-b on the test node); everything else continues. */
const REDIRECT_IPV4 = `import { __sk_buff, TC_ACT_OK, redirect } from "tcbox";
export function cls_main(skb: __sk_buff): i32 {
  if (skb.protocol == 0x0008) return redirect(skb, 4, 0);
  return TC_ACT_OK;
}`;

let kernel: BpfKernel;
let drop: BpfObject;
let redir: BpfObject;
beforeAll(async () => {
  kernel = new BpfKernel();
  drop = await kernel.load("programs/drop.ts");
  redir = await kernel.load("programs/examples/redirect_ipv4.ts", { source: REDIRECT_IPV4, name: "redirect_ipv4.ts" });
}, 60_000);

function setup() {
  const w = new World();
  const node = bridgeNode(w, "node1", "10.244.0.1/24");
  const a = bridgePod(w, node, "pod-a", "10.244.0.2/24", "10.244.0.1", "veth-a");
  const b = bridgePod(w, node, "pod-b", "10.244.0.3/24", "10.244.0.1", "veth-b");
  return { w, node, a, b };
}

describe("eBPF programs on tc hooks", () => {
  it("drop.ts at a host veth's ingress: TC_ACT_SHOT", () => {
    const { w, node, a, b } = setup();
    const tc = new EbpfTc(node, kernel.mem);
    tc.attach(node.dev("veth-a"), "ingress", drop.program());
    const sock = b.bind(IPPROTO_UDP, 0, 99);
    const id = sendUdp(a, { dst: ip("10.244.0.3"), sport: 1, dport: 99 });
    w.run();
    expect(sock.rx).toBe(0);
    // The ARP request was the first frame dropped; the datagram waits on the neighbour and fails.
    expect(summarize(w, id).dropped).toBe("neigh failed");
  });

  it("a redirect program sends IPv4 from veth-a straight out of veth-b, bypassing the bridge", () => {
    const { w, node, a, b } = setup();
    expect(node.dev("veth-b").ifindex).toBe(4);
    const tc = new EbpfTc(node, kernel.mem);
    tc.attach(node.dev("veth-a"), "ingress", redir.program());
    a.neigh.set(a.dev("eth0"), ip("10.244.0.3"), b.dev("eth0").mac, 0x80, 0);
    const sock = b.bind(IPPROTO_UDP, 0, 99);
    const id = sendUdp(a, { dst: ip("10.244.0.3"), sport: 1, dport: 99, payload: 10 });
    w.run();
    const s = summarize(w, id);
    expect(sock.rx).toBe(1);
    expect(s.hops).toContain("node1 veth-a tc_ingress REDIRECT");
    expect(s.hops.some((h) => h.includes("bridge"))).toBe(false);
  });
});
