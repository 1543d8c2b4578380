// Packet hot path: bind Ethernet + IPv4 + TCP views on a batch of pre-built TCP/IPv4 frames and DNAT them
// (destination address and port) with both checksums fixed incrementally (RFC 1624), against the same rewrite
// with full checksum recomputes, and against the plain-function fast path. Each call handles BATCH packets and
// alternates between two backends so every call really changes the bytes.
import {
  buildTcp,
  dnat4,
  EthernetView,
  ETH_P_IP,
  flowHash,
  flowKeyFromPacket,
  ipv4FrameL3,
  Ipv4View,
  IPPROTO_TCP,
  parsePacket,
  set16,
  TCP_FLAGS,
  TcpView,
  writeTcp,
  writeUdp,
} from "../src/packet/index.js";
import { runGroup, type BenchOptions } from "./harness.js";

const BATCH = 1024;
const BACKEND_A = 0x0af40102; // 10.244.1.2
const BACKEND_B = 0x0af40203; // 10.244.2.3

function makeBatch(): Uint8Array[] {
  const pkts: Uint8Array[] = [];
  for (let i = 0; i < BATCH; i++) {
    const payload = new Uint8Array((i * 37) % 1400);
    for (let j = 0; j < payload.length; j++) payload[j] = (i + j) & 255;
    pkts.push(
      buildTcp({
        src: (0x0a000000 + 1 + (i % 250)) >>> 0,
        dst: 0x0a600001, // a ClusterIP
        sport: 32768 + i,
        dport: 443,
        flags: TCP_FLAGS.ACK | TCP_FLAGS.PSH,
        seq: i * 1000,
        ack: 1,
        payload,
      }),
    );
  }
  return pkts;
}

export default async function (opts: BenchOptions): Promise<void> {
  const viewsBatch = makeBatch();
  const fullBatch = makeBatch();
  const fastBatch = makeBatch();
  const eth = new EthernetView();
  const ip = new Ipv4View();
  const tcp = new TcpView();
  let flipV = 0;
  let flipF = 0;
  let flipP = 0;
  let sink = 0;
  const key = new Uint32Array(4);

  await runGroup(
    "packet: parse (views) + DNAT dst addr+port, both checksums",
    [
      {
        name: "views bind + incremental (RFC 1624)",
        items: BATCH,
        fn: () => {
          flipV ^= 1;
          const addr = flipV ? BACKEND_A : BACKEND_B;
          const port = flipV ? 8443 : 9443;
          for (let i = 0; i < BATCH; i++) {
            const b = viewsBatch[i]!;
            eth.bind(b, 0, b.length);
            if (eth.etherType !== ETH_P_IP) continue;
            ip.bind(b, eth.payloadOff, b.length - eth.payloadOff);
            if (ip.protocol !== IPPROTO_TCP) continue;
            tcp.bind(b, ip.payloadOff, ip.payloadLen);
            dnat4(b, ip.off, addr, port);
          }
        },
      },
      {
        name: "views bind + full recompute",
        items: BATCH,
        fn: () => {
          flipF ^= 1;
          const addr = flipF ? BACKEND_A : BACKEND_B;
          const port = flipF ? 8443 : 9443;
          for (let i = 0; i < BATCH; i++) {
            const b = fullBatch[i]!;
            eth.bind(b, 0, b.length);
            if (eth.etherType !== ETH_P_IP) continue;
            ip.bind(b, eth.payloadOff, b.length - eth.payloadOff);
            if (ip.protocol !== IPPROTO_TCP) continue;
            tcp.bind(b, ip.payloadOff, ip.payloadLen);
            const o = ip.off;
            b[o + 16] = addr >>> 24;
            b[o + 17] = (addr >>> 16) & 255;
            b[o + 18] = (addr >>> 8) & 255;
            b[o + 19] = addr & 255;
            set16(b, tcp.off + 2, port);
            ip.fillChecksum();
            tcp.fillChecksum(ip.src, addr);
          }
        },
      },
      {
        name: "fast path (ipv4FrameL3) + incremental",
        items: BATCH,
        fn: () => {
          flipP ^= 1;
          const addr = flipP ? BACKEND_A : BACKEND_B;
          const port = flipP ? 8443 : 9443;
          for (let i = 0; i < BATCH; i++) {
            const b = fastBatch[i]!;
            const l3 = ipv4FrameL3(b, 0, b.length);
            if (l3 < 0 || b[l3 + 9] !== IPPROTO_TCP) continue;
            dnat4(b, l3, addr, port);
          }
        },
      },
    ],
    opts,
  );

  await runGroup(
    "packet: per-packet lookups vs the human form",
    [
      {
        name: "flowKeyFromPacket + flowHash (jhash2)",
        items: BATCH,
        fn: () => {
          for (let i = 0; i < BATCH; i++) if (flowKeyFromPacket(viewsBatch[i]!, 0, key, 0)) sink ^= flowHash(key, 0, 0x9e3779b9);
        },
      },
      {
        name: "parsePacket (plain objects, for humans)",
        items: 64,
        fn: () => {
          for (let i = 0; i < 64; i++) sink ^= parsePacket(viewsBatch[i]!).tcp!.dport;
        },
      },
    ],
    opts,
  );
  // Workload generation: frames written into one preallocated ring with numeric addresses (no allocation).
  const ring = new Uint8Array(BATCH * 128);
  const tcpOpts = { src: 0x0a000001, dst: 0x0a600001, sport: 40000, dport: 443, flags: TCP_FLAGS.ACK, seq: 0, ack: 1, payload: new Uint8Array(64) };
  const udpOpts = { src: 0x0a000001, dst: 0x0a60000a, sport: 40000, dport: 53, payload: new Uint8Array(40) };
  await runGroup(
    "packet: writing frames into a caller's buffer",
    [
      {
        name: "writeTcp (64 B payload)",
        items: BATCH,
        fn: () => {
          for (let i = 0; i < BATCH; i++) {
            tcpOpts.sport = 32768 + i;
            tcpOpts.seq = i;
            sink ^= writeTcp(ring, i * 128, tcpOpts);
          }
        },
      },
      {
        name: "writeUdp (40 B payload)",
        items: BATCH,
        fn: () => {
          for (let i = 0; i < BATCH; i++) {
            udpOpts.sport = 32768 + i;
            sink ^= writeUdp(ring, i * 128, udpOpts);
          }
        },
      },
    ],
    opts,
  );
  if (sink === 0.5) console.log(sink);
}
