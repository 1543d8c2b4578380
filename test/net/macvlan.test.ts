import { describe, expect, it } from "vitest";
import { World, createEther, sendIcmpEcho, summarize, Segment } from "../../src/net/index.js";
import { ip, run } from "./topo.js";

function setup() {
  const w = new World();
  const seg = new Segment("lan");
  const node = w.addNamespace("node1");
  createEther(node, "eth0", seg);
  run(node, "ip link set lo up", "ip link set eth0 up", "ip addr add 192.168.1.11/24 dev eth0");
  const pods = [50, 51].map((host, i) => {
    const pod = w.addNamespace(`pod${i}`);
    run(node, `ip link add mv${i} link eth0 type macvlan mode bridge`, `ip link set mv${i} netns pod${i}`);
    run(pod, "ip link set lo up", `ip link set mv${i} up`, `ip addr add 192.168.1.${host}/24 dev mv${i}`);
    return pod;
  });
  const ext = w.addNamespace("ext");
  createEther(ext, "eth0", seg);
  run(ext, "ip link set lo up", "ip link set eth0 up", "ip addr add 192.168.1.20/24 dev eth0");
  return { w, node, pods, ext };
}

describe("macvlan bridge mode", () => {
  const cases = [
    { name: "child to sibling child", from: "pod0", to: "192.168.1.51", reach: "pod1" },
    { name: "child to a host on the wire", from: "pod0", to: "192.168.1.20", reach: "ext" },
    { name: "host on the wire to child", from: "ext", to: "192.168.1.50", reach: "pod0" },
    { name: "parent to its child (no hairpin)", from: "node1", to: "192.168.1.50", reach: null },
    { name: "child to its parent (no hairpin)", from: "pod0", to: "192.168.1.11", reach: null },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const { w } = setup();
      const id = sendIcmpEcho(w.ns(c.from), { dst: ip(c.to) });
      w.run();
      const s = summarize(w, id);
      if (c.reach === null) {
        expect(s.deliveredIn).toEqual([]);
        expect(s.dropped).toBe("neigh failed");
      } else expect(s.deliveredIn).toEqual([c.reach]);
    });
  }
});
