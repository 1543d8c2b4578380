// eBPF programs on the model's tc hooks: the eBPF runtime's TcHooks (src/ebpf/tc.ts: clsact ingress/egress,
// filters by pref, direct-action) behind the kernel model's per-packet TcHook interface. One EbpfTc per
// namespace, because TcHooks keys by ifindex and ifindexes are unique only within a namespace; programs see the
// device's real ifindex in skb->ifindex.
//
//   const tc = new EbpfTc(ns, kernel.mem);
//   tc.attach(ns.dev("lxc1"), "ingress", obj.program());
//
// Each run copies the frame into a one-packet batch in the programs' shared memory, runs the hook, and copies the
// (possibly rewritten or resized) frame, the mark and any redirect target back into the packet.
import { PacketBatch } from "../ebpf/batch.js";
import type { SharedMemory } from "../ebpf/memory.js";
import type { BpfProgram } from "../ebpf/program.js";
import { TcHooks, type TcDirection, type TcFilter } from "../ebpf/tc.js";
import { TC_ACT_REDIRECT, TC_INGRESS } from "./constants.js";
import type { NetDevice } from "./device.js";
import { NetError } from "./error.js";
import type { TcHook } from "./hooks.js";
import type { NetNamespace } from "./netns.js";
import { PKT_BUF_SIZE, type Pkt } from "./pkt.js";

export class EbpfTc implements TcHook {
  readonly hooks = new TcHooks();
  private readonly batch: PacketBatch;

  constructor(
    readonly ns: NetNamespace,
    mem: SharedMemory,
  ) {
    this.batch = new PacketBatch(mem);
  }

  /** tc filter add dev DEV DIR bpf da: attaches and points the device's hook at this runner. */
  attach(dev: NetDevice, dir: TcDirection, prog: BpfProgram, opts: { pref?: number; handle?: number } = {}): TcFilter {
    if (dev.ns !== this.ns) throw new NetError(`device is in namespace ${dev.ns.name}, not ${this.ns.name}`, dev.where);
    const f = this.hooks.attach(dev.ifindex, dir, prog, opts);
    if (dir === "ingress") dev.tcIngress = this;
    else dev.tcEgress = this;
    return f;
  }

  detach(dev: NetDevice, dir: TcDirection, pref?: number): void {
    this.hooks.detach(dev.ifindex, dir, pref);
    if (this.hooks.list(dev.ifindex, dir).length === 0) {
      if (dir === "ingress") dev.tcIngress = null;
      else dev.tcEgress = null;
    }
  }

  run(pkt: Pkt, dev: NetDevice, dir: number): number {
    const b = this.batch;
    const ingress = dir === TC_INGRESS;
    b.reset();
    b.add(pkt.buf.subarray(pkt.off, pkt.off + pkt.len), { ifindex: dev.ifindex, ingressIfindex: ingress ? pkt.iif : 0, mark: pkt.mark });
    this.hooks.run(dev.ifindex, ingress ? "ingress" : "egress", b);
    const v = this.hooks.verdicts[0]!;
    const out = b.packet(0);
    // Keep the frame's end in place when a program grew it (bpf_skb_adjust_room / change_head): use headroom.
    if (pkt.off + out.length > PKT_BUF_SIZE) pkt.off = Math.max(0, PKT_BUF_SIZE - out.length);
    pkt.buf.set(out, pkt.off);
    pkt.len = out.length;
    pkt.mark = b.mark(0);
    if (v === TC_ACT_REDIRECT) {
      pkt.redirectIfindex = b.redirectIfindex(0);
      pkt.redirectFlags = b.redirectFlags(0);
    }
    return v;
  }
}
