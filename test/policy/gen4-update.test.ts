// Gen 4: a NetworkPolicy added or removed while connections are open, as Cilium behaves. Cilium's conntrack only
// short-cuts replies (CT_REPLY / CT_RELATED); every packet in a connection's own direction, established or new,
// goes through the policy map (bpf_lxc: policy_can_egress4 for CT_NEW and CT_ESTABLISHED; ipv4_policy drops all
// but replies the policy denies; cilium/cilium#2700 "connections get dropped as soon as policy no longer allows
// the connection"). So unlike Gen 1-3 (test/policy/update.test.ts: iptables accepts RELATED,ESTABLISHED first),
// an open connection stops at its next packet once a policy denies it, its replies still pass, and it flows
// again when the policy goes (the conntrack entry was never flushed).
import { beforeAll, describe, expect, it } from "vitest";
import { buildGen4, prepareGen4Programs, type BuiltGen4 } from "../../src/gens/gen4.js";
import { installCiliumPolicy, updateCiliumPolicy } from "../../src/gens/policy-cilium.js";
import { podOf } from "../../src/gens/types.js";
import { IPPROTO_UDP, sendUdp } from "../../src/net/index.js";
import { parseIpv4 } from "../../src/packet/addr.js";
import { xyzCluster } from "../fixtures/netpol/xyz.js";

const policies = (yaml: string) => xyzCluster(yaml, { protocols: ["UDP"], ports: [80] }).networkPolicies;

// x/a: nothing in, nothing out.
const DENY_A = `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny, namespace: x}
spec: {podSelector: {matchLabels: {pod: a}}, policyTypes: [Ingress, Egress]}
`;
const FROM = (ns: string) => `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: from, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{from: [{namespaceSelector: {matchLabels: {ns: ${ns}}}}]}]
`;

/** UDP from `from`:sport to `to`:dport; true when it reached a socket bound in `to`. */
function send(g: BuiltGen4, from: string, to: string, sport: number, dport = 80): boolean {
  const a = podOf(g, from);
  const b = podOf(g, to);
  const sock = b.ns.sockets.lookup(IPPROTO_UDP, parseIpv4(b.ip), dport) ?? b.ns.bind(IPPROTO_UDP, 0, dport);
  const before = sock.rx;
  sendUdp(a.ns, { src: parseIpv4(a.ip), dst: parseIpv4(b.ip), sport, dport, payload: 8 });
  g.world.run();
  return sock.rx > before;
}

const policyEntries = (g: BuiltGen4) => g.ebpf.reduce((n, x) => n + x.policy.policy.count, 0);

beforeAll(async () => {
  await prepareGen4Programs();
}, 300_000);

describe("Gen 4: policy changes with open connections (Cilium)", () => {
  it("deny added: the open flow's next packet is dropped, its replies pass, new flows are dropped; removed: everything flows again", () => {
    const g = buildGen4(xyzCluster("", { protocols: ["UDP"], ports: [80] }));
    installCiliumPolicy(g);
    // y/b (n1) -> x/a (n1) and z/b (n2) -> x/a (cross node) open flows; x/a answers both.
    expect(send(g, "y/b", "x/a", 41000)).toBe(true);
    expect(send(g, "x/a", "y/b", 80, 41000)).toBe(true);
    expect(send(g, "z/b", "x/a", 41010)).toBe(true);
    expect(send(g, "x/a", "z/b", 80, 41010)).toBe(true);

    updateCiliumPolicy(g, policies(DENY_A));
    expect(policyEntries(g)).toBe(0); // x/a is enforced both ways with no rules: default deny
    expect(send(g, "x/a", "y/b", 80, 41000)).toBe(true); // a reply: replies skip policy
    expect(send(g, "y/b", "x/a", 41000)).toBe(false); // the open flow, same node
    expect(send(g, "z/b", "x/a", 41010)).toBe(false); // the open flow, cross node
    expect(send(g, "x/a", "z/b", 80, 41010)).toBe(true); // its reply
    expect(send(g, "y/b", "x/a", 41001)).toBe(false); // a new flow in
    expect(send(g, "x/a", "y/b", 41002)).toBe(false); // a new flow out
    expect(send(g, "y/b", "x/b", 41003)).toBe(true); // x/b is not selected

    updateCiliumPolicy(g, []);
    expect(send(g, "y/b", "x/a", 41000)).toBe(true); // the open flow again (its conntrack entry stayed)
    expect(send(g, "z/b", "x/a", 41010)).toBe(true);
    expect(send(g, "y/b", "x/a", 41004)).toBe(true);
    expect(send(g, "x/a", "y/b", 41005)).toBe(true);
  });

  it("a policy replaced by a narrower one: entries of the old one are deleted from the maps, its open flows stop", () => {
    const g = buildGen4(xyzCluster(FROM("y"), { protocols: ["UDP"], ports: [80] }));
    installCiliumPolicy(g);
    expect(send(g, "y/b", "x/a", 42000)).toBe(true);
    expect(send(g, "z/b", "x/a", 42001)).toBe(false);
    const before = policyEntries(g);
    expect(before).toBeGreaterThan(0);

    updateCiliumPolicy(g, policies(FROM("z")));
    expect(policyEntries(g)).toBe(before); // one entry per pod of the peer namespace, three either way
    expect(send(g, "y/b", "x/a", 42000)).toBe(false); // y's open flow: y's entries are gone
    expect(send(g, "y/b", "x/a", 42002)).toBe(false);
    expect(send(g, "z/b", "x/a", 42003)).toBe(true);
  });
});
