// The kernel model with the real iptables/conntrack/NAT model (src/netfilter) in a router namespace.
import { describe, expect, it } from "vitest";
import { IPPROTO_TCP, IPPROTO_UDP, World, getMac, sendTcp, sendUdp, summarize } from "../../src/net/index.js";
import { IptablesHooks } from "../../src/net/iptables.js";
import { formatIpv4 } from "../../src/packet/addr.js";
import { bridgeNode, bridgePod, ip, routedPair, run } from "./topo.js";

const RULES = `*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -d 10.96.0.10/32 -p udp -m udp --dport 53 -j DNAT --to-destination 10.0.2.2:5353
-A POSTROUTING -o r2 -j MASQUERADE
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -d 10.0.2.2/32 -p tcp -m tcp --dport 81 -j REJECT --reject-with tcp-reset
-A FORWARD -d 10.0.2.2/32 -p tcp -m tcp --dport 82 -j REJECT
-A FORWARD -d 10.0.2.2/32 -p tcp -m tcp --dport 83 -j DROP
COMMIT
`;

function setup() {
  const w = new World();
  const t = routedPair(w);
  t.router.netfilter = new IptablesHooks(t.router, RULES);
  return { w, ...t };
}

describe("iptables in the path (DNAT, MASQUERADE, conntrack reverse NAT, REJECT)", () => {
  it("a UDP request to a service IP is DNATed and masqueraded; the reply comes back from the service IP", () => {
    const { w, client, server } = setup();
    const srv = server.bind(IPPROTO_UDP, 0, 5353);
    srv.onReceive = (_p, s) => {
      sendUdp(server, { dst: s.lastSrc, sport: 5353, dport: s.lastSport, payload: 12 });
    };
    const cli = client.bind(IPPROTO_UDP, 0, 40000);
    const id = sendUdp(client, { dst: ip("10.96.0.10"), sport: 40000, dport: 53, payload: 30 });
    w.run();
    expect(summarize(w, id).deliveredIn).toEqual(["server"]);
    expect(formatIpv4(srv.lastSrc)).toBe("10.0.2.1"); // masqueraded to the router's address on r2
    expect(srv.lastSport).toBe(40000); // MASQUERADE keeps the port when it is free
    expect(cli.rx).toBe(1); // the reply passed the checksum check, so both rewrites kept checksums valid
    expect(formatIpv4(cli.lastSrc)).toBe("10.96.0.10");
    expect(cli.lastSport).toBe(53);
  });

  const rejects = [
    { port: 81, expect: "rst" },
    { port: 82, expect: "icmp 3/3" },
    { port: 83, expect: "nothing" },
  ];
  for (const r of rejects) {
    it(`FORWARD ${r.port === 83 ? "DROP" : "REJECT"} to port ${r.port}: ${r.expect}`, () => {
      const { w, client } = setup();
      const got: string[] = [];
      client.bind(IPPROTO_TCP, 0, 40001).onReceive = (p) => {
        got.push(p.buf[p.off + 34 + 13]! & 0x04 ? "rst" : "tcp");
      };
      client.bind(1, 0, 0).onReceive = (p) => {
        got.push(`icmp ${p.buf[p.off + 34]}/${p.buf[p.off + 35]}`);
      };
      const id = sendTcp(client, { dst: ip("10.0.2.2"), sport: 40001, dport: r.port, seq: 5, flags: 0x02 });
      w.run();
      expect(got).toEqual(r.expect === "nothing" ? [] : [r.expect]);
      expect(summarize(w, id).dropped).toBe("netfilter");
    });
  }
});

/** Gen 1's hairpin: a pod reaches itself through its Service; the bridge port needs hairpin mode (kubelet's hairpin-veth). */
const HAIRPIN_RULES = `*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -d 10.96.0.10/32 -p udp -m udp --dport 53 -j DNAT --to-destination 10.244.0.2:5353
-A POSTROUTING -s 10.244.0.2/32 -d 10.244.0.2/32 -j MASQUERADE
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -m physdev --physdev-is-bridged -j ACCEPT
-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
COMMIT
`;

describe("br_netfilter with real iptables: Service hairpin on one bridge", () => {
  for (const hairpin of [true, false]) {
    it(`hairpin ${hairpin ? "on: the pod reaches itself via its Service, masqueraded to the bridge IP" : "off: the frame cannot leave by its ingress port"}`, () => {
      const w = new World();
      const node = bridgeNode(w, "node1", "10.244.0.1/24");
      const a = bridgePod(w, node, "pod-a", "10.244.0.2/24", "10.244.0.1", "veth-a");
      run(node, "sysctl -w net.bridge.bridge-nf-call-iptables=1");
      if (hairpin) run(node, "bridge link set dev veth-a hairpin on");
      node.netfilter = new IptablesHooks(node, HAIRPIN_RULES);
      const srv = a.bind(IPPROTO_UDP, 0, 5353);
      srv.onReceive = (_p, s) => {
        sendUdp(a, { dst: s.lastSrc, sport: 5353, dport: s.lastSport, payload: 4 });
      };
      const cli = a.bind(IPPROTO_UDP, 0, 40000);
      const id = sendUdp(a, { dst: ip("10.96.0.10"), sport: 40000, dport: 53, payload: 8 });
      w.run();
      const s = summarize(w, id);
      if (!hairpin) {
        expect(srv.rx).toBe(0);
        expect(s.dropped).toBe("otherhost");
        return;
      }
      expect(s.deliveredIn).toEqual(["pod-a"]);
      expect(s.forwards).toBe(0); // bridged DNAT: switched back out of veth-a, never routed
      expect(formatIpv4(srv.lastSrc)).toBe("10.244.0.1"); // MASQUERADE to the bridge's address
      expect(cli.rx).toBe(1); // the reply is de-NATed by conntrack at the node and routed back
      expect(formatIpv4(cli.lastSrc)).toBe("10.96.0.10");
      expect(cli.lastSport).toBe(53);
    });
  }
});

describe("br_netfilter bridged DNAT to a pod the node has not resolved yet", () => {
  it("waits for ARP on the bridge, keeps the source MAC, and bridges on", () => {
    const w = new World();
    const node = bridgeNode(w, "node1", "10.244.0.1/24");
    const a = bridgePod(w, node, "pod-a", "10.244.0.2/24", "10.244.0.1", "veth-a");
    const c = bridgePod(w, node, "pod-c", "10.244.0.3/24", "10.244.0.1", "veth-c");
    run(node, "sysctl -w net.bridge.bridge-nf-call-iptables=1");
    node.netfilter = new IptablesHooks(node, HAIRPIN_RULES.replace("10.244.0.2:5353", "10.244.0.3:5353"));
    let srcMac = -1;
    const srv = c.bind(IPPROTO_UDP, 0, 5353);
    srv.onReceive = (p) => {
      srcMac = getMac(p.buf, p.off + 6);
    };
    const id = sendUdp(a, { dst: ip("10.96.0.10"), sport: 40000, dport: 53, payload: 8 });
    w.run();
    const s = summarize(w, id);
    expect(s.deliveredIn).toEqual(["pod-c"]);
    expect(s.forwards).toBe(0);
    expect(s.hops).toContain("node1 cni0 neigh queue 10.244.0.3");
    expect(srcMac).toBe(a.dev("eth0").mac);
    expect(formatIpv4(srv.lastSrc)).toBe("10.244.0.2"); // no MASQUERADE: source and destination differ
  });
});
