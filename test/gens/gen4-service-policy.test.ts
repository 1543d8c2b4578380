// Replies of connections that went through a Service, to a client an ingress NetworkPolicy selects (every
// generation, Gen 4 being the one at risk): lb4 reverse-NATs the reply to come from the frontend before policy
// runs, so policy must recognise it as a reply via the connection's TUPLE_F_SERVICE conntrack entry (lb4 hands
// the frontend to policy in skb->cb). Same node (the backend's from-container and the client's to-container
// hooks both see the reverse-NATed reply) and cross node (only the client's to-container does).
import { beforeAll, describe, expect, it } from "vitest";
import { buildGen4, prepareGen4Programs } from "../../src/gens/gen4.js";
import { installCiliumPolicy } from "../../src/gens/policy-cilium.js";
import { buildWithPolicy } from "../../src/gens/policy-iptables.js";
import { podOf, type BuiltGeneration } from "../../src/gens/types.js";
import { IPPROTO_TCP, IPPROTO_UDP, sendTcp, sendUdp } from "../../src/net/index.js";
import { formatIpv4, parseIpv4 } from "../../src/packet/addr.js";
import { get16, get32 } from "../../src/packet/checksum.js";
import { xyzCluster } from "../fixtures/netpol/xyz.js";

// xyz places x/a, x/c on n1 and x/b, y/a on n2. x/a is the client; its ingress is closed (no rules).
const MANIFESTS = `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: a-no-ingress, namespace: x}
spec: {podSelector: {matchLabels: {pod: a}}, policyTypes: [Ingress]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: b-only-from-y, namespace: x}
spec:
  podSelector: {matchLabels: {pod: b}}
  ingress: [{from: [{namespaceSelector: {matchLabels: {ns: y}}}]}]
---
apiVersion: v1
kind: Service
metadata: {name: near, namespace: x}
spec: {selector: {pod: c}, ports: [{name: u, port: 8080, targetPort: 80, protocol: UDP}, {name: t, port: 8080, targetPort: 80, protocol: TCP}]}
---
apiVersion: v1
kind: Service
metadata: {name: far, namespace: y}
spec: {selector: {pod: a}, ports: [{name: u, port: 8080, targetPort: 80, protocol: UDP}, {name: t, port: 8080, targetPort: 80, protocol: TCP}]}
---
apiVersion: v1
kind: Service
metadata: {name: closed, namespace: x}
spec: {selector: {pod: b}, ports: [{name: u, port: 8080, targetPort: 80, protocol: UDP}, {name: t, port: 8080, targetPort: 80, protocol: TCP}]}
`;

interface Exchange {
  /** The request reached the backend's socket. */
  request: boolean;
  /** The backend's reply reached the client's socket, and the source the client saw. */
  reply: boolean;
  replySrc: string;
}

/** A request from `client` to Service `svc` port 8080 (UDP, or TCP SYN), and the backend's answer to the peer it saw. */
function exchange(g: BuiltGeneration, client: string, backend: string, svc: string, proto: number, sport: number): Exchange {
  const vip = g.cluster.services.find((s) => `${s.metadata.namespace}/${s.metadata.name}` === svc)!.clusterIP;
  const a = podOf(g, client);
  const b = podOf(g, backend);
  const srv = b.ns.bind(proto, 0, 80);
  const cli = a.ns.bind(proto, 0, sport);
  const out: Exchange = { request: false, reply: false, replySrc: "" };
  const peer = { addr: 0, port: 0, local: 0 };
  srv.onReceive = (p) => {
    const l3 = p.off + 14;
    out.request = true;
    peer.addr = get32(p.buf, l3 + 12);
    peer.port = get16(p.buf, l3 + 20);
    peer.local = get32(p.buf, l3 + 16);
  };
  cli.onReceive = (p) => {
    const l3 = p.off + 14;
    out.reply = true;
    out.replySrc = `${formatIpv4(get32(p.buf, l3 + 12))}:${get16(p.buf, l3 + 20)}`;
  };
  const send = (from: typeof a, o: { src?: number; dst: number; sport: number; dport: number }, syn: boolean) =>
    proto === IPPROTO_UDP ? sendUdp(from.ns, { ...o, payload: 16 }) : sendTcp(from.ns, { ...o, flags: syn ? 0x02 : 0x12, seq: 1, ack: syn ? 0 : 2 });
  try {
    send(a, { dst: parseIpv4(vip), sport, dport: 8080 }, true);
    g.world.run();
    if (out.request) {
      send(b, { src: peer.local, dst: peer.addr, sport: 80, dport: peer.port }, false);
      g.world.run();
    }
  } finally {
    b.ns.sockets.close(srv);
    a.ns.sockets.close(cli);
  }
  return out;
}

const gens: BuiltGeneration[] = [];
beforeAll(async () => {
  await prepareGen4Programs();
  const cluster = () => xyzCluster(MANIFESTS, { protocols: ["TCP", "UDP"], ports: [80] });
  for (const gen of [1, 2, 3] as const) gens.push(buildWithPolicy(gen, cluster()));
  const g4 = buildGen4(cluster());
  installCiliumPolicy(g4);
  gens.push(g4);
}, 600_000);

describe.each([1, 2, 3, 4] as const)("Gen %i: a Service reply to a client selected by an ingress policy", (gen) => {
  const g = () => gens[gen - 1]!;
  const vip = (svc: string) => g().cluster.services.find((s) => `${s.metadata.namespace}/${s.metadata.name}` === svc)!.clusterIP;
  let sport = 42000;

  it.each([
    ["UDP", IPPROTO_UDP],
    ["TCP", IPPROTO_TCP],
  ] as const)("same node (backend x/c on the client's node), %s: the reply is delivered, from the Service address", (_n, proto) => {
    const r = exchange(g(), "x/a", "x/c", "x/near", proto, sport++);
    expect(r).toEqual({ request: true, reply: true, replySrc: `${vip("x/near")}:8080` });
  });

  it.each([
    ["UDP", IPPROTO_UDP],
    ["TCP", IPPROTO_TCP],
  ] as const)("cross node (backend y/a on the other node), %s: the reply is delivered, from the Service address", (_n, proto) => {
    const r = exchange(g(), "x/a", "y/a", "y/far", proto, sport++);
    expect(r).toEqual({ request: true, reply: true, replySrc: `${vip("y/far")}:8080` });
  });

  it.each([
    ["UDP", IPPROTO_UDP],
    ["TCP", IPPROTO_TCP],
  ] as const)("hairpin (x/c to Service near, whose only backend is x/c), %s: delivered, the reply from the Service address", (_n, proto) => {
    const r = exchange(g(), "x/c", "x/c", "x/near", proto, sport++);
    expect(r).toEqual({ request: true, reply: true, replySrc: `${vip("x/near")}:8080` });
  });

  it("a denied connection through a Service stays denied (x/b admits only namespace y), request and retry", () => {
    for (let i = 0; i < 2; i++) expect(exchange(g(), "x/a", "x/b", "x/closed", IPPROTO_UDP, 42100)).toEqual({ request: false, reply: false, replySrc: "" });
  });
});
