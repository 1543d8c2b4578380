// Program hot-swap under load (Gen 4): the agent recompiles lb4 (here: the same source with a trivial change,
// as an upgrade that does not touch map layouts would) and swaps it in with `tc filter replace` while
// connections keep sending. The replace is atomic between packets (the kernel swaps the filter's prog pointer
// under RCU), and the new object reuses the pinned maps (/sys/fs/bpf/tc/globals/*: same type, key, value and
// max_entries), so no packet is lost, the CT map keeps every connection on its backend and the Service maps
// are the same maps, not copies.
import { readFileSync } from "node:fs";
import { buildTcp } from "../../packet/index.js";
import { PacketBatch } from "../../ebpf/batch.js";
import { TcHooks } from "../../ebpf/tc.js";
import type { GenNumber } from "../../gens/types.js";
import { dstOf, LB4_FILE, loadLb4, TC_ACT_OK } from "./lb4-host.js";
import { notApplicable, type GenVerdict, type Scenario, type ScenarioResult } from "./types.js";

const IFINDEX = 2;
const PREF = 1;

export interface HotSwapOutcome {
  flows: number;
  batches: number;
  packets: number;
  passed: number;
  lost: number;
  by_v1: number;
  by_v2: number;
  backend_changed: number;
  ct_before: number;
  ct_after: number;
  services_before: number;
  services_after: number;
  backends_before: number;
  backends_after: number;
  same_map_objects: number;
}

export async function runHotSwap(flows = 64, batches = 40): Promise<HotSwapOutcome> {
  const h = await loadLb4(11);
  for (let n = 1; n <= 8; n++) h.lb.upsertBackend({ id: n, address: `10.244.9.${n}`, port: 8080, proto: "TCP" });
  h.lb.upsertFrontend({ address: "10.96.0.80", port: 80, proto: "TCP", revNatIndex: 1, backendIds: [1, 2, 3, 4, 5, 6, 7, 8] });
  const tc = new TcHooks();
  tc.attach(IFINDEX, "ingress", h.prog, { pref: PREF });
  const pkt = (i: number, first: boolean) => buildTcp({ src: `10.244.1.${1 + i}`, dst: "10.96.0.80", sport: 33000 + i, dport: 80, flags: first ? 0x02 : 0x18, seq: 1, payload: first ? undefined : new Uint8Array(16) });
  const backend: string[] = [];
  const o: HotSwapOutcome = { flows, batches, packets: 0, passed: 0, lost: 0, by_v1: 0, by_v2: 0, backend_changed: 0, ct_before: 0, ct_after: 0, services_before: 0, services_after: 0, backends_before: 0, backends_after: 0, same_map_objects: 0 };
  const ct = () => h.kernel.pinned.get("cilium_ct4_global")!;
  const batch = new PacketBatch(h.kernel.mem);
  const mapsV1 = [...h.obj.maps.values()];
  let v2Load: Promise<void> | null = null;
  let swapped = false;
  const source = readFileSync(LB4_FILE, "utf8") + "\n// v2: rebuilt with a trivial change\n";
  for (let b = 0; b < batches; b++) {
    if (b === Math.floor(batches / 4)) {
      o.ct_before = ct().count;
      o.services_before = h.lb.services.count;
      o.backends_before = h.lb.backends.count;
      v2Load = h.kernel.load(LB4_FILE, { name: "lb4_v2.ts", source }).then((v2) => {
        tc.replace(IFINDEX, "ingress", PREF, v2.program("cls_main"));
        swapped = true;
        o.same_map_objects = [...v2.maps.values()].filter((m) => mapsV1.includes(m)).length;
      });
    }
    if (b === Math.floor(batches / 2) && !swapped) await v2Load; // the compile finishes while earlier batches ran
    batch.reset();
    for (let i = 0; i < flows; i++) batch.add(pkt(i, b === 0));
    const name = tc.list(IFINDEX, "ingress")[0]!.prog.objectName;
    tc.run(IFINDEX, "ingress", batch);
    for (let i = 0; i < flows; i++) {
      o.packets++;
      if (tc.verdicts[i] !== TC_ACT_OK) {
        o.lost++;
        continue;
      }
      o.passed++;
      if (name === "lb4_v2.ts") o.by_v2++;
      else o.by_v1++;
      const be = dstOf(batch.packet(i));
      if (b === 0) backend[i] = be;
      else if (be !== backend[i]) o.backend_changed++;
    }
    await new Promise((r) => setImmediate(r));
  }
  o.ct_after = ct().count;
  o.services_after = h.lb.services.count;
  o.backends_after = h.lb.backends.count;
  return o;
}

export const hotSwap: Scenario = {
  name: "hot-swap",
  title: "program hot-swap under load (Gen 4): lb4 replaced while traffic flows; no packet lost, pinned maps intact",
  gens: [4],
  async run(gens: GenNumber[]): Promise<ScenarioResult> {
    const happened: string[] = [];
    const verdicts: GenVerdict[] = [];
    let counters: Record<string, number> = {};
    for (const gen of gens) {
      if (gen !== 4) {
        verdicts.push(notApplicable(gen, "no tc programs (kube-proxy reprograms iptables with iptables-restore instead)"));
        continue;
      }
      const o = await runHotSwap();
      counters = { ...o };
      happened.push(`lb4 v1 attached at tc ingress (pref ${PREF}); ${o.flows} TCP connections to 10.96.0.80:80 send ${o.batches} rounds`);
      happened.push(`  lb4 v2 (same source + a comment) compiled during the run, then tc filter replace: ${o.by_v1} packets ran v1, ${o.by_v2} ran v2`);
      happened.push(`  packets ${o.packets}, passed ${o.passed}, lost ${o.lost}; connections that changed backend: ${o.backend_changed}`);
      happened.push(`  pinned maps reused by v2: ${o.same_map_objects}; cilium_ct4_global ${o.ct_before} -> ${o.ct_after} entries, services ${o.services_before} -> ${o.services_after}, backends ${o.backends_before} -> ${o.backends_after}`);
      verdicts.push({ gen, applies: true, verdict: `${o.lost} packets lost across the swap, ${o.backend_changed} connections moved, maps intact`, counters: { ...o } });
    }
    return { name: this.name, title: this.title, happened, counters, gens: verdicts };
  },
};
