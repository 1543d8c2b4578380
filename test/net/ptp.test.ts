import { describe, expect, it } from "vitest";
import { IPPROTO_UDP, World, createEther, ipNeigh, ipRoute, sendIcmpEcho, sendUdp, summarize, Segment } from "../../src/net/index.js";
import { ip, run } from "./topo.js";

/** Calico style: /32 pod addresses, host routes per veth, proxy_arp answering for 169.254.1.1. */
function calicoNode(proxyArp: boolean) {
  const w = new World();
  const seg = new Segment("underlay");
  const node = w.addNamespace("node1");
  createEther(node, "eth0", seg);
  run(node, "ip link set lo up", "ip link set eth0 up", "ip addr add 192.168.1.11/24 dev eth0", "ip route add default via 192.168.1.1", "sysctl -w net.ipv4.ip_forward=1");
  const pods = ["a", "b"].map((x, i) => {
    const pod = w.addNamespace(`pod-${x}`);
    const cali = `cali${x}`;
    run(node, `ip link add ${cali} type veth peer name eth0 netns pod-${x}`, `ip link set ${cali} up`, `ip route add 10.48.1.${i + 2} dev ${cali} scope link`);
    if (proxyArp) run(node, `sysctl -w net.ipv4.conf.${cali}.proxy_arp=1`);
    run(pod, "ip link set lo up", "ip link set eth0 up", `ip addr add 10.48.1.${i + 2}/32 dev eth0`, "ip route add 169.254.1.1 dev eth0 scope link", "ip route add default via 169.254.1.1 dev eth0");
    return pod;
  });
  return { w, node, pods };
}

describe("point-to-point routing with proxy ARP (Calico)", () => {
  it("the host's veth answers ARP for 169.254.1.1 and routes pod to pod", () => {
    const { w, node, pods } = calicoNode(true);
    const [a, b] = pods as [typeof pods[0], typeof pods[0]];
    let ttl = 0;
    b.bind(IPPROTO_UDP, 0, 7000).onReceive = (p) => {
      ttl = p.buf[p.off + 22]!;
    };
    const id = sendUdp(a, { dst: ip("10.48.1.3"), sport: 1, dport: 7000, payload: 8 });
    w.run();
    const s = summarize(w, id);
    expect(s.deliveredIn).toEqual(["pod-b"]);
    expect(ttl).toBe(63);
    const arp = summarize(w, s.derived[0]!);
    expect(arp.hops).toContain("node1 calia arp reply 169.254.1.1 (proxy)");
    expect(ipNeigh(a)).toContain(`169.254.1.1 dev eth0 lladdr`);
    expect(a.neigh.get(a.dev("eth0"), ip("169.254.1.1"))!.mac).toBe(node.dev("calia").mac);
    expect(ipRoute(node)).toBe(
      ["default via 192.168.1.1 dev eth0", "10.48.1.2 dev calia scope link", "10.48.1.3 dev calib scope link", "192.168.1.0/24 dev eth0 proto kernel scope link src 192.168.1.11", ""].join("\n"),
    );
    expect(ipRoute(a)).toBe(["default via 169.254.1.1 dev eth0", "169.254.1.1 dev eth0 scope link", ""].join("\n"));
  });

  it("without proxy_arp nobody answers for the gateway", () => {
    const { w, pods } = calicoNode(false);
    const id = sendIcmpEcho(pods[0]!, { dst: ip("10.48.1.3") });
    w.run();
    expect(summarize(w, id).dropped).toBe("neigh failed");
    expect(ipNeigh(pods[0]!)).toBe("169.254.1.1 dev eth0 FAILED\n");
  });
});
