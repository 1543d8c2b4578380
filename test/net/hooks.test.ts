import { describe, expect, it } from "vitest";
import {
  BPF_F_INGRESS,
  IPPROTO_UDP,
  NF_ACCEPT,
  NF_DROP,
  NFPROTO_BRIDGE,
  TC_ACT_OK,
  TC_ACT_REDIRECT,
  TC_ACT_SHOT,
  World,
  sendUdp,
  summarize,
  type NetfilterHooks,
  type NfHookState,
} from "../../src/net/index.js";
import { csumReplace32, get16, set16, set32 } from "../../src/packet/checksum.js";
import { bridgeNode, bridgePod, ip, routedPair, run } from "./topo.js";

const HOOKS = ["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"];

/** Records every hook call as `ns HOOK in>out [bridged phys>phys]`; drops at `dropAt`. */
function recorder(log: string[], dropAt = ""): NetfilterHooks {
  return {
    run(_pkt, st: NfHookState) {
      const name = HOOKS[st.hook]!;
      const phys = st.pf === NFPROTO_BRIDGE ? ` phys ${st.physIn?.name ?? "-"}>${st.physOut?.name ?? "-"}` : "";
      log.push(`${st.ns!.name} ${name} ${st.in?.name ?? "-"}>${st.out?.name ?? "-"}${phys}`);
      return `${st.ns!.name} ${name}` === dropAt ? NF_DROP : NF_ACCEPT;
    },
  };
}

describe("netfilter hooks on the path", () => {
  it("a routed packet: OUTPUT, POSTROUTING at the sender; PREROUTING, FORWARD, POSTROUTING at the router; PREROUTING, INPUT at the receiver", () => {
    const w = new World();
    const { client, router, server } = routedPair(w);
    const log: string[] = [];
    for (const ns of [client, router, server]) ns.netfilter = recorder(log);
    server.bind(IPPROTO_UDP, 0, 99);
    sendUdp(client, { dst: ip("10.0.2.2"), sport: 1, dport: 99 });
    w.run();
    expect(log.filter((l) => !l.includes("ARP"))).toEqual([
      "client OUTPUT ->eth0",
      "client POSTROUTING ->eth0",
      "router PREROUTING r1>-",
      "router FORWARD r1>r2",
      "router POSTROUTING r1>r2",
      "server PREROUTING eth0>-",
      "server INPUT eth0>-",
    ]);
  });

  it("NF_DROP at FORWARD drops the packet there", () => {
    const w = new World();
    const { client, router, server } = routedPair(w);
    router.netfilter = recorder([], "router FORWARD");
    const sock = server.bind(IPPROTO_UDP, 0, 99);
    const id = sendUdp(client, { dst: ip("10.0.2.2"), sport: 1, dport: 99 });
    w.run();
    expect(summarize(w, id).dropped).toBe("netfilter");
    expect(sock.rx).toBe(0);
  });

  it("br_netfilter: bridged IPv4 runs PREROUTING, FORWARD, POSTROUTING with physdev ports only when enabled", () => {
    for (const enabled of [true, false]) {
      const w = new World();
      const node = bridgeNode(w, "node1", "10.244.0.1/24");
      const a = bridgePod(w, node, "pod-a", "10.244.0.2/24", "10.244.0.1", "veth-a");
      const b = bridgePod(w, node, "pod-b", "10.244.0.3/24", "10.244.0.1", "veth-b");
      run(node, `sysctl -w net.bridge.bridge-nf-call-iptables=${enabled ? 1 : 0}`);
      const log: string[] = [];
      node.netfilter = recorder(log);
      b.bind(IPPROTO_UDP, 0, 99);
      sendUdp(a, { dst: ip("10.244.0.3"), sport: 1, dport: 99 });
      w.run();
      expect(log).toEqual(
        enabled ? ["node1 PREROUTING cni0>- phys veth-a>-", "node1 FORWARD cni0>cni0 phys veth-a>veth-b", "node1 POSTROUTING ->cni0 phys ->veth-b"] : [],
      );
    }
  });

  for (const skipL4 of [false, true])
  it(`a DNAT in br_netfilter PREROUTING to another pod on the bridge stays bridged; ${skipL4 ? "a stale UDP checksum is dropped at the socket" : "it reaches the pod"}`, () => {
    const w = new World();
    const node = bridgeNode(w, "node1", "10.244.0.1/24");
    const a = bridgePod(w, node, "pod-a", "10.244.0.2/24", "10.244.0.1", "veth-a");
    const b = bridgePod(w, node, "pod-b", "10.244.0.3/24", "10.244.0.1", "veth-b");
    run(node, "sysctl -w net.bridge.bridge-nf-call-iptables=1");
    // Let pod-b's MAC be known to the node first (the kernel resolves it the same way).
    run(node, `ip neigh add 10.244.0.3 lladdr ${[...Array(6)].map((_, i) => (Math.floor(b.dev("eth0").mac / 2 ** (8 * (5 - i))) & 255).toString(16).padStart(2, "0")).join(":")} dev cni0 nud reachable`);
    const svc = ip("10.96.0.10");
    node.netfilter = {
      run(pkt, st) {
        // A toy DNAT: 10.96.0.10 -> 10.244.0.3 with both checksums fixed incrementally (RFC 1624).
        const l3 = pkt.off + 14;
        const d = (pkt.buf[l3 + 16]! << 24) | (pkt.buf[l3 + 17]! << 16) | (pkt.buf[l3 + 18]! << 8) | pkt.buf[l3 + 19]!;
        if (st.hook === 0 && d >>> 0 === svc) {
          const to = ip("10.244.0.3");
          set32(pkt.buf, l3 + 16, to);
          set16(pkt.buf, l3 + 10, csumReplace32(get16(pkt.buf, l3 + 10), svc, to));
          if (!skipL4) set16(pkt.buf, l3 + 26, csumReplace32(get16(pkt.buf, l3 + 26), svc, to));
        }
        return NF_ACCEPT;
      },
    };
    const sock = b.bind(IPPROTO_UDP, 0, 53);
    const id = sendUdp(a, { dst: svc, sport: 1, dport: 53 });
    w.run();
    const s = summarize(w, id);
    expect(s.deliveredIn).toEqual(["pod-b"]);
    expect(s.forwards).toBe(0); // bridged DNAT: no IP forwarding at the node
    expect(sock.rx).toBe(skipL4 ? 0 : 1);
    expect(s.dropped).toBe(skipL4 ? "bad csum" : null);
  });
});

describe("tc clsact hooks", () => {
  it("TC_ACT_SHOT at a host veth's ingress drops; TC_ACT_OK passes", () => {
    for (const act of [TC_ACT_SHOT, TC_ACT_OK]) {
      const w = new World();
      const { client, router, server } = routedPair(w);
      let calls = 0;
      router.dev("r1").tcIngress = {
        run(pkt) {
          if (pkt.buf[pkt.off + 12] === 0x08 && pkt.buf[pkt.off + 13] === 0x00) {
            calls++;
            return act;
          }
          return TC_ACT_OK;
        },
      };
      const sock = server.bind(IPPROTO_UDP, 0, 99);
      const id = sendUdp(client, { dst: ip("10.0.2.2"), sport: 1, dport: 99 });
      w.run();
      expect(calls).toBe(1);
      expect(sock.rx).toBe(act === TC_ACT_OK ? 1 : 0);
      if (act === TC_ACT_SHOT) expect(summarize(w, id).dropped).toBe("tc shot");
    }
  });

  it("TC_ACT_REDIRECT from one host veth's ingress to another's egress bypasses the bridge", () => {
    const w = new World();
    const node = bridgeNode(w, "node1", "10.244.0.1/24");
    const a = bridgePod(w, node, "pod-a", "10.244.0.2/24", "10.244.0.1", "veth-a");
    const b = bridgePod(w, node, "pod-b", "10.244.0.3/24", "10.244.0.1", "veth-b");
    const target = node.dev("veth-b");
    node.dev("veth-a").tcIngress = {
      run(pkt) {
        if (pkt.buf[pkt.off + 13] !== 0x00) return TC_ACT_OK; // IPv4 only
        pkt.redirectIfindex = target.ifindex;
        pkt.redirectFlags = 0;
        return TC_ACT_REDIRECT;
      },
    };
    // Static neighbour so pod-a addresses pod-b's MAC directly.
    const mac = b.dev("eth0").mac;
    a.neigh.set(a.dev("eth0"), ip("10.244.0.3"), mac, 0x80, 0);
    const sock = b.bind(IPPROTO_UDP, 0, 99);
    const id = sendUdp(a, { dst: ip("10.244.0.3"), sport: 1, dport: 99 });
    w.run();
    const s = summarize(w, id);
    expect(sock.rx).toBe(1);
    expect(s.hops.some((h) => h.includes("bridge"))).toBe(false);
    expect(s.hops).toContain(`node1 veth-a redirect to ifindex ${target.ifindex} flags 0`);
    void BPF_F_INGRESS;
  });
});
