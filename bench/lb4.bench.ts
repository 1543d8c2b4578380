// lb4 alone, batched (1024 packets per call through the batch runner), at 10, 1k, 10k and 100k Services:
//  - "prototype": programs/examples/rewrite_dst.ts, one hash lookup + DNAT + checksums (the issue's minimal
//    prototype: 36 M packets/s at 1k Services, 28 M at 100k on this machine);
//  - "established": lb4 on packets of connections already in conntrack (service lookup, CT lookup, backend
//    lookup, DNAT with both checksums; the CT entry's counters and lifetime updated);
//  - "new connection": every packet a new flow (service lookup, CT miss, random slot lookup, backend lookup,
//    two CT creates: once the LRU CT map is full, each create evicts the least recently used entry).
//  - "pass.ts": the runtime's floor (batch call, per-packet verdict accounting, a trivial program).
// Each call first restores the 1024 frames' bytes (one 64 KiB copy, measured alone as "copy only") since the
// programs rewrite them in place. Services have 2 backends each from a pool of 1000.
import { BpfKernel } from "../src/ebpf/kernel.js";
import { PacketBatch } from "../src/ebpf/batch.js";
import { PKT_BASE } from "../src/ebpf/abi.js";
import { Lb4Maps } from "../src/k8s/agent/lb-maps.js";
import { buildTcp } from "../src/packet/index.js";
import { runGroup, type BenchOptions, type TaskResult } from "./harness.js";

const BATCH = 1024;
const SIZES = [10, 1000, 10_000, 100_000];
const vip = (i: number) => (0x0a600000 + 1 + i) >>> 0; // 10.96.0.1 + i
const VIP_PORT = 80;

export default async function (opts: BenchOptions): Promise<void> {
  const kernel = new BpfKernel({ seed: 1 });
  const lb4 = (await kernel.load("programs/lb4.ts")).program("cls_main");
  const protoObj = await kernel.load("programs/examples/rewrite_dst.ts");
  const proto = protoObj.program();
  const protoMap = protoObj.map("rewrite_services");
  const pass = (await kernel.load("programs/pass.ts")).program();
  const lb = new Lb4Maps(kernel);
  for (let b = 1; b <= 1000; b++) lb.upsertBackend({ id: b, address: (0x0af40000 + b) >>> 0, port: 8080, proto: "TCP" });

  const batch = new PacketBatch(kernel.mem);
  let added = 0;
  const summary: { n: number; floor: TaskResult; est: TaskResult; fresh: TaskResult; proto: TaskResult }[] = [];
  for (const n of SIZES) {
    // SETUP: grow the service set to n (the agent's incremental writes).
    const pk = new Uint8Array(8);
    const pv = new Uint8Array(8);
    for (; added < n; added++) {
      lb.upsertFrontend({ address: vip(added), port: VIP_PORT, proto: "TCP", revNatIndex: added + 1, backendIds: [1 + (added % 1000), 1 + ((added * 7 + 3) % 1000)] });
      new DataView(pk.buffer).setUint32(0, vip(added), false);
      new DataView(pk.buffer).setUint16(4, VIP_PORT, false);
      pk[6] = 6;
      new DataView(pv.buffer).setUint32(0, (0x0af40000 + 1 + (added % 1000)) >>> 0, false);
      new DataView(pv.buffer).setUint16(4, 8080, false);
      protoMap.update(pk, pv);
    }
    // PKTGEN: 1024 flows to services spread over the n (a different service per packet when n >= 1024).
    batch.reset();
    for (let i = 0; i < BATCH; i++) {
      const svc = Math.floor((i * 2654435761) % 4294967296 / 4294967296 * n);
      batch.add(buildTcp({ src: (0x0af50000 + i) >>> 0, dst: vip(svc), sport: 10000 + (i % 50000), dport: VIP_PORT, flags: 0x10, payload: new Uint8Array(6) }));
    }
    const used = batch.packet(BATCH - 1).byteOffset + batch.packet(BATCH - 1).length - PKT_BASE;
    const pristine = kernel.mem.u8.slice(PKT_BASE, PKT_BASE + used);
    const restore = () => kernel.mem.u8.set(pristine, PKT_BASE);
    // Warm conntrack (every flow established) and let the engine tier the WebAssembly up to optimised code
    // (the first few hundred batches run in the baseline compiler; tinybench's warm-up is too short for that).
    for (let w = 0; w < (n === SIZES[0] ? 300 : 30); w++) {
      restore();
      lb4.runBatch(batch);
      restore();
      proto.runBatch(batch);
      pass.runBatch(batch);
    }
    // New connections: a fresh source port per packet per call (the frames' checksums are not checked).
    const sportOff: number[] = [];
    for (let i = 0; i < BATCH; i++) sportOff.push(batch.packet(i).byteOffset - PKT_BASE + 34);
    let gen = 0;
    const results = await runGroup(`lb4 at ${n} Services (${BATCH}-packet batches)`, [
      { name: "copy only", items: BATCH, fn: () => restore() },
      { name: "pass.ts (runtime floor)", items: BATCH, fn: () => { restore(); pass.runBatch(batch); } },
      { name: "prototype: lookup+DNAT+csum", items: BATCH, fn: () => { restore(); proto.runBatch(batch); } },
      { name: "lb4 established (CT hit)", items: BATCH, fn: () => { restore(); lb4.runBatch(batch); } },
      {
        name: "lb4 new connection",
        items: BATCH,
        fn: () => {
          gen = (gen + 1) & 0xffff;
          for (let i = 0; i < BATCH; i++) {
            const o = sportOff[i]!;
            pristine[o - 8] = gen >> 8; // source address byte 2..3 vary per call, port below
            pristine[o - 7] = gen & 255;
          }
          restore();
          lb4.runBatch(batch);
        },
      },
    ], opts);
    summary.push({ n, floor: results[1]!, proto: results[2]!, est: results[3]!, fresh: results[4]! });
  }
  const first = summary[0]!;
  const last = summary[summary.length - 1]!;
  process.stdout.write(
    `\nlb4 summary (packets/s, median; copy included):\n` +
      summary.map((s) => `  ${String(s.n).padStart(6)} Services: pass.ts ${(s.floor.perSecond / 1e6).toFixed(1)} M/s, prototype ${(s.proto.perSecond / 1e6).toFixed(1)} M/s, established ${(s.est.perSecond / 1e6).toFixed(1)} M/s, new connection ${(s.fresh.perSecond / 1e6).toFixed(1)} M/s`).join("\n") +
      `\n  cost at ${last.n} / cost at ${first.n}: established ${(last.est.medianNs / first.est.medianNs).toFixed(2)}x, new connection ${(last.fresh.medianNs / first.fresh.medianNs).toFixed(2)}x, prototype ${(last.proto.medianNs / first.proto.medianNs).toFixed(2)}x` +
      `\n  established / prototype cost: ${summary.map((s) => `${s.n}: ${(s.est.medianNs / s.proto.medianNs).toFixed(2)}x`).join(", ")}\n`,
  );
}
