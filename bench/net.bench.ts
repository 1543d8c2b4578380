// Packets per second through the kernel model: a bridge (veth -> bridge -> veth, switched), a routed hop
// (veth -> router -> veth, TTL decrement, two neighbour lookups) and VXLAN (pod -> bridge -> node routing ->
// encap -> underlay -> decap -> node routing -> bridge -> pod). Each task injects a batch of 1024 prebuilt frames
// on the first hop's receive queue and runs the world until every frame is delivered to the receiving socket.
// Neighbours are resolved beforehand, as in steady state. Trace recording is measured on and off.
import { IPPROTO_UDP, World, sendUdp, type NetDevice } from "../src/net/index.js";
import { bridgeNode, bridgePod, flannelCluster, ip, routedPair } from "../test/net/topo.js";
import { runGroup, type BenchOptions } from "./harness.js";

const BATCH = 1024;

interface Path {
  w: World;
  entry: NetDevice;
  frame: Uint8Array;
  delivered: () => number;
}

/** Send one datagram to resolve neighbours, capture the frame as it leaves the sender, then reuse it. */
function prepare(w: World, send: () => void, senderNs: string, sink: { rx: number }, entryOf: (w: World) => NetDevice): Path {
  let frame: Uint8Array | null = null;
  w.tap = (dev, pkt, dir) => {
    if (frame === null && dir === 1 && dev.ns.name === senderNs && pkt.buf[pkt.off + 23] === IPPROTO_UDP) frame = pkt.frame().slice();
  };
  send();
  w.run();
  w.tap = null;
  if (frame === null || sink.rx !== 1) throw new Error(`bench setup: path ${senderNs} did not deliver`);
  return { w, entry: entryOf(w), frame, delivered: () => sink.rx };
}

function bridgePath(): Path {
  const w = new World();
  const node = bridgeNode(w, "node1", "10.244.0.1/24");
  const a = bridgePod(w, node, "pod-a", "10.244.0.2/24", "10.244.0.1", "veth-a");
  const b = bridgePod(w, node, "pod-b", "10.244.0.3/24", "10.244.0.1", "veth-b");
  const sink = b.bind(IPPROTO_UDP, 0, 9000);
  return prepare(w, () => sendUdp(a, { dst: ip("10.244.0.3"), sport: 1, dport: 9000, payload: 64 }), "pod-a", sink, () => node.dev("veth-a"));
}

function routedPath(): Path {
  const w = new World();
  const { client, router, server } = routedPair(w);
  const sink = server.bind(IPPROTO_UDP, 0, 9000);
  return prepare(w, () => sendUdp(client, { dst: ip("10.0.2.2"), sport: 1, dport: 9000, payload: 64 }), "client", sink, () => router.dev("r1"));
}

function vxlanPath(): Path {
  const w = new World();
  const { nodes } = flannelCluster(w);
  const sink = nodes[1]!.pod.bind(IPPROTO_UDP, 0, 9000);
  return prepare(w, () => sendUdp(nodes[0]!.pod, { dst: ip("10.244.1.2"), sport: 1, dport: 9000, payload: 64 }), "pod1", sink, () => nodes[0]!.node.dev("veth1"));
}

function task(name: string, p: Path, trace: boolean) {
  p.w.trace.enabled = trace;
  return {
    name,
    items: BATCH,
    fn: () => {
      const w = p.w;
      w.trace.enabled = trace;
      const before = p.delivered();
      for (let i = 0; i < BATCH; i++) {
        const pkt = w.alloc();
        pkt.buf.set(p.frame, pkt.off);
        pkt.len = p.frame.length;
        w.enqueueRx(p.entry, pkt);
      }
      w.run();
      if (trace) w.trace.clear();
      if (p.delivered() - before !== BATCH) throw new Error(`${name}: lost packets`);
    },
  };
}

export default async function (opts: BenchOptions): Promise<void> {
  const br = bridgePath();
  const rt = routedPath();
  const vx = vxlanPath();
  await runGroup(
    "net: UDP 106-byte frames, pod to pod (packets/s)",
    [
      task("bridge (veth-bridge-veth)", br, false),
      task("routed hop (veth-router-veth)", rt, false),
      task("VXLAN encap+decap (two nodes)", vx, false),
      task("bridge, trace on", br, true),
      task("VXLAN, trace on", vx, true),
    ],
    opts,
  );
}
