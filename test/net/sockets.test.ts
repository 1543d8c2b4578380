import { describe, expect, it } from "vitest";
import { EADDRINUSE, IPPROTO_TCP, IPPROTO_UDP, NetError, World, exec } from "../../src/net/index.js";
import { ip } from "./topo.js";

describe("port space (hostNetwork pods share the node's)", () => {
  const cases = [
    { name: "same proto, addr, port", first: [IPPROTO_TCP, "0.0.0.0", 80], second: [IPPROTO_TCP, "0.0.0.0", 80], inUse: true },
    { name: "wildcard then specific", first: [IPPROTO_TCP, "0.0.0.0", 80], second: [IPPROTO_TCP, "10.0.0.1", 80], inUse: true },
    { name: "specific then wildcard", first: [IPPROTO_UDP, "10.0.0.1", 53], second: [IPPROTO_UDP, "0.0.0.0", 53], inUse: true },
    { name: "two specific addresses", first: [IPPROTO_TCP, "10.0.0.1", 80], second: [IPPROTO_TCP, "10.0.0.2", 80], inUse: false },
    { name: "TCP and UDP on one port", first: [IPPROTO_TCP, "0.0.0.0", 53], second: [IPPROTO_UDP, "0.0.0.0", 53], inUse: false },
    { name: "different ports", first: [IPPROTO_TCP, "0.0.0.0", 80], second: [IPPROTO_TCP, "0.0.0.0", 81], inUse: false },
  ] as const;
  for (const c of cases) {
    it(c.name, () => {
      const ns = new World().addNamespace("node1");
      ns.bind(c.first[0], ip(c.first[1]), c.first[2], "pod-a");
      let err: unknown = null;
      try {
        ns.bind(c.second[0], ip(c.second[1]), c.second[2], "pod-b");
      } catch (e) {
        err = e;
      }
      if (c.inUse) {
        expect(err).toBeInstanceOf(NetError);
        expect((err as NetError).errno).toBe(EADDRINUSE);
        expect((err as NetError).message).toContain("Address already in use");
      } else expect(err).toBeNull();
    });
  }

  it("a VXLAN device holds its UDP port in the namespace", () => {
    const ns = new World().addNamespace("node1");
    exec(ns, "ip link add vx0 type vxlan id 5 dstport 4789");
    expect(() => ns.bind(IPPROTO_UDP, 0, 4789)).toThrow(/Address already in use/);
  });
});

describe("iproute2 command text", () => {
  it("ip -n NS runs in that namespace; errors name the namespace and command", () => {
    const w = new World();
    const host = w.addNamespace("host");
    w.addNamespace("pod");
    exec(host, "ip link add veth0 type veth peer name tmp0 netns pod");
    exec(host, "ip -n pod link set tmp0 name eth0");
    exec(host, "ip -n pod link set eth0 up");
    exec(host, "ip -n pod addr add 10.1.0.2/24 dev eth0");
    expect(w.ns("pod").dev("eth0").up).toBe(true);
    expect(w.ns("pod").addrs.map((a) => a.addr)).toEqual([ip("10.1.0.2")]);
    expect(() => exec(host, "ip route add 10.9.0.0/16 via 10.1.0.1")).toThrow(NetError);
    try {
      exec(host, "ip route add 10.9.0.0/16 via 10.1.0.1");
    } catch (e) {
      expect((e as NetError).where).toBe("host: ip route add 10.9.0.0/16 via 10.1.0.1");
      expect((e as NetError).message).toBe("Nexthop has invalid gateway.");
    }
    expect(() => exec(host, "ip link set veth0 frobnicate")).toThrow(/unknown link option "frobnicate"/);
  });
});
