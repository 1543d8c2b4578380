// A policy added or removed while connections are open (Gen 1-3, iptables): the open connection keeps passing
// (conntrack RELATED,ESTABLISHED is accepted before any policy chain), new connections follow the new policy.
import { describe, expect, it } from "vitest";
import { buildWithPolicy, updatePolicies } from "../../src/gens/policy-iptables.js";
import { podOf, type BuiltGeneration } from "../../src/gens/types.js";
import { IPPROTO_UDP, sendUdp } from "../../src/net/index.js";
import { parseIpv4 } from "../../src/packet/addr.js";
import { xyzCluster } from "../fixtures/netpol/xyz.js";

const DENY_X = `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny, namespace: x}
spec: {podSelector: {}}
`;

/** UDP from `from` to `to`:80 with source port `sport`; true when it reached the socket bound in `to`. */
function send(g: BuiltGeneration, from: string, to: string, sport: number, dport = 80): boolean {
  const a = podOf(g, from);
  const b = podOf(g, to);
  const sock = b.ns.sockets.lookup(IPPROTO_UDP, parseIpv4(b.ip), dport) ?? b.ns.bind(IPPROTO_UDP, 0, dport);
  const before = sock.rx;
  sendUdp(a.ns, { src: parseIpv4(a.ip), dst: parseIpv4(b.ip), sport, dport, payload: 8 });
  g.world.run();
  return sock.rx > before;
}

describe.each([1, 2, 3] as const)("Gen %i: policy changes with open connections", (gen) => {
  it("deny added: the open flow (and its replies) keep passing, a new flow is dropped; removed: new flows pass", () => {
    const g = buildWithPolicy(gen, xyzCluster("", { protocols: ["UDP"], ports: [80] }));
    // y/b -> x/a opens a flow; x/a answers (the reply makes the conntrack entry ESTABLISHED).
    expect(send(g, "y/b", "x/a", 41000)).toBe(true);
    expect(send(g, "x/a", "y/b", 80, 41000)).toBe(true);
    const deny = xyzCluster(DENY_X, { protocols: ["UDP"], ports: [80] }).networkPolicies;
    updatePolicies(g, deny);
    expect(send(g, "y/b", "x/a", 41000)).toBe(true); // the open flow
    expect(send(g, "y/b", "x/a", 41001)).toBe(false); // a new one
    expect(send(g, "z/c", "x/b", 41002)).toBe(false);
    updatePolicies(g, []);
    expect(send(g, "y/b", "x/a", 41003)).toBe(true);
  });
});
