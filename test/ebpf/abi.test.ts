// The SDK (assembly/) and the host (src/ebpf/abi.ts, maps/layout.ts) must agree on every address and offset.
import { expect, it } from "vitest";
import * as abi from "../../src/ebpf/abi.js";
import * as L from "../../src/ebpf/maps/layout.js";
import { BpfKernel } from "../../src/ebpf/kernel.js";

it("SDK and host agree on the context layout, control block, arena and map layout", async () => {
  const kernel = new BpfKernel();
  const r = (await kernel.load("programs/examples/abi_probe.ts")).program().run(new Uint8Array(64));
  const at = r.mark;
  const got = Array.from({ length: 29 }, (_, i) => kernel.mem.u32[(at >>> 2) + i]);
  expect(got).toEqual([
    abi.SKB_DATA, abi.SKB_DATA_END, 184, abi.SKB_RETVAL, abi.SKB_REDIRECT_IFINDEX, abi.SKB_DROP_REASON, abi.SKB_TAIL_CALLS,
    abi.SKB_CB, abi.SKB_MARK, abi.CB_TRAP_REASON, abi.CB_BATCH_INDEX, abi.CB_BUDGET, abi.CB_CPU, abi.CB_KTIME, abi.CB_PRANDOM,
    abi.CB_HASHRND, abi.CB_SCRATCH, abi.CTX_BASE, abi.CTX_SIZE, abi.PKT_BASE, abi.PKT_ARENA, abi.BATCH_MAX, L.M_ELEMS,
    L.M_LRU_TAIL, L.M_NCPUS, L.LPM_HDR_SIZE, L.RB_DROPPED, L.E_KEY, 216,
  ]);
  expect(216).toBeLessThanOrEqual(abi.CTX_SIZE);
});
