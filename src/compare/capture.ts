// `tcbox compare --pcap DIR`: every frame on every interface of every namespace of one built generation (nodes,
// pods, the underlay router, the internet), as one pcapng file. One Interface Description Block per interface,
// named where it lives: `NODE/IFNAME` in a node's namespace (`node-1/eth0`, `node-1/cni0`, `node-1/flannel.1`),
// `NS/POD/IFNAME` in a pod's own namespace (`shop/db-0/eth0`; hostNetwork pods share their node's interfaces), and
// `vpc-router/eth0`, `internet/eth0` for the underlay router and the outside world. Ethernet link type (lo too:
// the model's loopback frames carry an Ethernet header, as Linux's lo does).
//
// Frames come from World.tap, called where the model's devices receive (after netif_receive, before tc ingress,
// as tcpdump sees them) and transmit (after tc egress, before the driver), so a frame crossing a veth pair is in
// the file twice: out of one end, into the other. Each record has epb_flags inbound/outbound. Timestamps are the
// model clock (World.now) from a fixed epoch, strictly increasing by at least 1 µs per frame so that Wireshark's
// order is the model's order. The writer streams blocks to the file as they are made.
import { closeSync, openSync, writeSync } from "node:fs";
import type { BuiltGeneration } from "../gens/types.js";
import type { NetDevice, TapFn, World } from "../net/index.js";
import { PcapngWriter } from "../packet/pcapng-writer.js";

/** 2023-11-14T22:13:20Z: a fixed epoch, so the same seed writes the same bytes. */
const T0_NS = 1_700_000_000_000_000_000n;
const STEP_NS = 1000n;

export class GenerationCapture {
  private readonly writer: PcapngWriter;
  private readonly ids = new Map<NetDevice, number>();
  private readonly nsLabel = new Map<number, string>();
  private readonly world: World;
  private readonly prevTap: TapFn | null;
  private lastNs = 0n;
  private fd: number;
  /** Frames written. */
  packets = 0;

  /** Opens `file` and starts capturing every frame of `g` (chaining to a tap already set). */
  constructor(g: BuiltGeneration, readonly file: string) {
    this.world = g.world;
    for (const n of g.nodes) this.nsLabel.set(n.ns.id, n.name);
    for (const p of g.pods) if (!p.hostNetwork) this.nsLabel.set(p.ns.id, p.key);
    this.fd = openSync(file, "w");
    this.writer = new PcapngWriter({ userappl: `tcbox compare (gen ${g.gen}: ${g.title})`, sink: (b) => writeSync(this.fd, b) });
    for (const ns of this.world.namespaces) for (const d of ns.deviceList()) this.interfaceId(d);
    this.prevTap = this.world.tap;
    const prev = this.prevTap;
    this.world.tap = (dev, pkt, dir) => {
      this.record(dev, pkt.frame(), dir);
      if (prev !== null) prev(dev, pkt, dir);
    };
  }

  /** `node-1/eth0`, `shop/db-0/eth0`, `internet/eth0`. */
  interfaceName(d: NetDevice): string {
    return `${this.nsLabel.get(d.ns.id) ?? d.ns.name}/${d.name}`;
  }

  private interfaceId(d: NetDevice): number {
    let id = this.ids.get(d);
    if (id === undefined) {
      id = this.writer.addInterface({ name: this.interfaceName(d), description: `netns ${d.ns.name} ifindex ${d.ifindex}` });
      this.ids.set(d, id);
    }
    return id;
  }

  private record(dev: NetDevice, frame: Uint8Array, dir: 0 | 1): void {
    const ifIndex = this.interfaceId(dev); // a device made after the capture started gets its IDB here
    const clock = T0_NS + BigInt(Math.round(this.world.now * 1e9));
    this.lastNs = clock > this.lastNs ? clock : this.lastNs + STEP_NS;
    this.writer.writePacket({ ifIndex, tsNs: this.lastNs, data: frame, direction: dir === 0 ? "inbound" : "outbound" });
    this.packets++;
  }

  /** Stops capturing (restoring the previous tap) and closes the file. */
  close(): void {
    if (this.fd < 0) return;
    this.world.tap = this.prevTap;
    this.writer.finish();
    closeSync(this.fd);
    this.fd = -1;
  }
}
