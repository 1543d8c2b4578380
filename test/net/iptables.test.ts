// The kernel model with the real iptables/conntrack/NAT model (src/netfilter) in a router namespace.
import { describe, expect, it } from "vitest";
import { IPPROTO_TCP, IPPROTO_UDP, World, sendTcp, sendUdp, summarize } from "../../src/net/index.js";
import { IptablesHooks } from "../../src/net/iptables.js";
import { formatIpv4 } from "../../src/packet/addr.js";
import { ip, routedPair } from "./topo.js";

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
