// The programmable dataplane's costs: the per-packet floor (pass.ts), the lb4 core (hash lookup + DNAT rewrite
// + l3/l4 checksum helpers, programs/examples/rewrite_dst.ts) by number of Services, batched vs per-packet
// calls, map lookups in WebAssembly memory vs through a JS import. Batches of 1024 packets. The map holds each
// frontend -> backend and its reverse backend -> frontend, so running the same batch again flips every packet
// back: each run does the full lookup + rewrite + checksum fixes with no host work to restore the bytes. The target for lb4: >= 25 M packets/s at 10k Services, and the cost at
// 100k <= 1.5x the cost at 10; a minimal prototype ran 36 M/s at 1k and 28 M/s at 100k.
import { buildTcp } from "../src/packet/index.js";
import { BpfKernel, type BpfObject } from "../src/ebpf/kernel.js";
import { PacketBatch } from "../src/ebpf/batch.js";
import { CTX_BASE, CTX_SIZE, PKT_BASE, SKB_DATA_END, SKB_RETVAL } from "../src/ebpf/abi.js";
import { compileProgram } from "../src/ebpf/compile.js";
import { instrument } from "../src/ebpf/instrument.js";
import { Wasm } from "../src/ebpf/wasm-api.js";
import { dataRegion, moduleFacts } from "../src/ebpf/wasm.js";
import { runGroup, type BenchOptions, type TaskResult } from "./harness.js";

const N_PKTS = 1024;
const PROGRAM = "programs/examples/rewrite_dst.ts";

function backendAddr(i: number): string {
  return `10.${128 + (i >>> 16)}.${(i >>> 8) & 255}.${i & 255}`;
}

function svcAddr(i: number): string {
  return `10.${96 + (i >>> 16)}.${(i >>> 8) & 255}.${i & 255}`;
}

interface Setup {
  kernel: BpfKernel;
  obj: BpfObject;
  batch: PacketBatch;
  restore: () => void;
}

async function lb4Setup(services: number, seed = 1): Promise<Setup> {
  const kernel = new BpfKernel();
  const obj = await kernel.load(PROGRAM);
  const map = obj.map("rewrite_services").typed();
  // Frontend -> backend, and backend -> frontend: a run flips each packet between the two, so every run of
  // the same batch does the full lookup + rewrite without restoring the bytes (the map holds 2N entries).
  for (let i = 0; i < services; i++) {
    map.update({ daddr: svcAddr(i), dport: 80, proto: 6 }, { addr: backendAddr(i), port: 8080 });
    map.update({ daddr: backendAddr(i), dport: 8080, proto: 6 }, { addr: svcAddr(i), port: 80 });
  }
  const batch = new PacketBatch(kernel.mem);
  let x = seed;
  for (let i = 0; i < N_PKTS; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    const svc = x % services;
    batch.add(buildTcp({ src: `192.168.${(i >>> 8) & 255}.${i & 255}`, dst: svcAddr(svc), sport: 1024 + i, dport: 80, flags: 0x02 }));
  }
  const end = kernel.mem.u32[(CTX_BASE + (N_PKTS - 1) * CTX_SIZE + SKB_DATA_END) >>> 2]!;
  const pristine = kernel.mem.alloc(end - PKT_BASE, "bench: pristine packets");
  kernel.mem.u8.copyWithin(pristine, PKT_BASE, end);
  const u8 = kernel.mem.u8;
  return { kernel, obj, batch, restore: () => u8.copyWithin(PKT_BASE, pristine, pristine + (end - PKT_BASE)) };
}

/** The same program with the lookup done by the host through an import (what the shared-memory design avoids). */
const JS_LOOKUP_SOURCE = `
import { __sk_buff, BPF_F_MARK_MANGLED_0, BPF_F_PSEUDO_HDR, ctx_data, ctx_data_end, ETH_HLEN, ETH_P_IP, bpf_htons, iphdr,
  IPPROTO_TCP, IPPROTO_UDP, l3_csum_replace, l4_csum_replace, TC_ACT_OK, TC_ACT_SHOT, load_be16 } from "tcbox";
@external("bench", "lookup") declare function js_lookup(key: usize): usize;
@unmanaged class SvcKey { daddr: u32; dport: u16; proto: u8; pad: u8; }
@unmanaged class Backend { addr: u32; port: u16; pad: u16; }
const key = changetype<SvcKey>(memory.data(offsetof<SvcKey>()));
export function cls_main(skb: __sk_buff): i32 {
  const data = ctx_data(skb);
  if (data + 42 > ctx_data_end(skb) || load<u16>(data, 12) != bpf_htons(ETH_P_IP)) return TC_ACT_OK;
  const ip4 = changetype<iphdr>(data + ETH_HLEN);
  if (ip4.ihl_version != 0x45) return TC_ACT_OK;
  const proto = ip4.protocol;
  if (proto != IPPROTO_TCP && proto != IPPROTO_UDP) return TC_ACT_OK;
  key.daddr = ip4.daddr; key.dport = <u16>load_be16(skb, 36); key.proto = proto; key.pad = 0;
  const p = js_lookup(changetype<usize>(key));
  if (p == 0) return TC_ACT_OK;
  const be = changetype<Backend>(p);
  const csumOff: u32 = 34 + (proto == IPPROTO_TCP ? 16 : 6);
  const mm0: u64 = proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;
  if (l4_csum_replace(skb, csumOff, ip4.daddr, be.addr, BPF_F_PSEUDO_HDR | mm0 | 4) < 0) return TC_ACT_SHOT;
  if (l3_csum_replace(skb, 24, ip4.daddr, be.addr, 4) < 0) return TC_ACT_SHOT;
  ip4.daddr = be.addr;
  const oldPort = <u32>key.dport; const newPort = <u32>be.port;
  if (newPort != 0 && newPort != oldPort) {
    if (l4_csum_replace(skb, csumOff, oldPort, newPort, mm0 | 2) < 0) return TC_ACT_SHOT;
    store<u16>(data + 36, <u16>newPort);
  }
  return TC_ACT_OK;
}`;

async function jsLookupRunner(s: Setup): Promise<(ctx: number, n: number) => void> {
  const mem = s.kernel.mem;
  const map = s.obj.map("rewrite_services");
  const base = mem.findFree(65536, 16);
  const built = await compileProgram("bench/js-lookup.ts", { memoryBase: base, source: JS_LOOKUP_SOURCE });
  const inst = instrument(built.wasm, ["cls_main"]);
  const region = dataRegion(moduleFacts(built.wasm));
  if (region) mem.reserve(region.start, region.end, "bench: js-lookup program");
  const keyBuf = new Uint8Array(8);
  const instance = new Wasm.Instance(new Wasm.Module(inst.wasm), {
    env: { memory: mem.memory, abort: () => { throw new Error("abort"); } },
    bench: {
      lookup: (k: number) => {
        const u8 = mem.u8;
        for (let i = 0; i < 8; i++) keyBuf[i] = u8[k + i]!;
        return map.valueAddr(keyBuf);
      },
    },
  });
  return instance.exports[inst.entries[0]!.batch] as (ctx: number, n: number) => void;
}

export default async function (opts: BenchOptions): Promise<void> {
  const sizes = [10, 1000, 10_000, 100_000];
  const setups = new Map<number, Setup>();
  for (const n of sizes) setups.set(n, await lb4Setup(n));
  const s10k = setups.get(10_000)!;
  const prog10k = s10k.obj.program();

  // Sanity: every run rewrites every packet (a miss would be a cheaper, dishonest path): frontend -> backend
  // (10.128+.x.y) on odd runs, back on even runs.
  for (const [n, s] of setups) {
    s.restore();
    for (const want of [128, 96]) {
      s.obj.program().runBatch(s.batch);
      for (let i = 0; i < N_PKTS; i++) {
        const second = s.batch.packet(i)[31]!;
        if (second < want || second >= want + 32) throw new Error(`bench setup ${n}: packet ${i} not rewritten (${second})`);
      }
    }
  }

  const pass = await new BpfKernel().load("programs/pass.ts");
  const passBatch = new PacketBatch(pass.kernel.mem);
  for (let i = 0; i < N_PKTS; i++) passBatch.add(buildTcp({ src: "10.0.0.1", dst: "10.0.0.2", sport: 1024 + i, dport: 80, flags: 2 }));
  const passProg = pass.program();

  const lb4 = await runGroup(
    "ebpf: lb4 core (hash lookup + DNAT + l3/l4 csum helpers), batched, by Services",
    sizes.map((n) => {
      const s = setups.get(n)!;
      const p = s.obj.program();
      return { name: `${n} Services`, items: N_PKTS, fn: () => { p.runBatch(s.batch); } };
    }),
    opts,
  );

  const entry = prog10k.entryFn;
  const i32 = s10k.kernel.mem.i32;
  await runGroup(
    "ebpf: per-packet floor and call styles (1024 packets, 10k Services)",
    [
      { name: "pass.ts batched (floor)", items: N_PKTS, fn: () => { passProg.runBatch(passBatch); } },
      { name: "lb4 core batched", items: N_PKTS, fn: () => { prog10k.runBatch(s10k.batch); } },
      {
        name: "lb4 core, one call per packet (entry)",
        items: N_PKTS,
        fn: () => {
          for (let i = 0; i < N_PKTS; i++) {
            const ctx = CTX_BASE + i * CTX_SIZE;
            prog10k.resetBudget();
            i32[(ctx + SKB_RETVAL) >>> 2] = entry(ctx);
          }
        },
      },
      { name: "lb4 core, runBatch(i, 1) per packet", items: N_PKTS, fn: () => { for (let i = 0; i < N_PKTS; i++) prog10k.runBatch(s10k.batch, i, 1); } },
      {
        name: "full path: fill batch (add) + run",
        items: N_PKTS,
        fn: () => {
          const b = s10k.batch;
          const pkts = fullPathPackets;
          b.reset();
          for (let i = 0; i < N_PKTS; i++) b.add(pkts[i]!);
          prog10k.runBatch(b);
        },
      },
    ],
    opts,
  );

  const jsRun = await jsLookupRunner(s10k);
  await runGroup(
    "ebpf: map lookup in WebAssembly memory vs through a JS import (10k Services, batched)",
    [
      { name: "lookup in WASM memory", items: N_PKTS, fn: () => { prog10k.runBatch(s10k.batch); } },
      { name: "lookup via JS import", items: N_PKTS, fn: () => { jsRun(CTX_BASE, N_PKTS); } },
    ],
    opts,
  );

  const at = (n: number) => lb4.find((r) => r.name === `${n} Services`)!;
  const mpps = (r: TaskResult) => (r.perSecond / 1e6).toFixed(1);
  console.log(
    `lb4 core: ${mpps(at(10))} M/s at 10, ${mpps(at(1000))} M/s at 1k (prototype 36), ${mpps(at(10_000))} M/s at 10k (target >= 25), ` +
      `${mpps(at(100_000))} M/s at 100k (prototype 28); cost 100k/10 = ${(at(100_000).medianNs / at(10).medianNs).toFixed(2)}x (target <= 1.5)`,
  );
}

const fullPathPackets: Uint8Array[] = [];
for (let i = 0; i < N_PKTS; i++) fullPathPackets.push(buildTcp({ src: "192.168.0.1", dst: svcAddr(i % 10_000), sport: 1024 + i, dport: 80, flags: 2 }));
