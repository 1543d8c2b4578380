// tcbox compare in-process: a workload file through Gen 1 and 2, --json output, workload errors with their place.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { runCli } from "./run.js";

const cli = runCli;
afterEach(() => vi.restoreAllMocks());

const dir = mkdtempSync(join(tmpdir(), "tcbox-compare-"));

describe("tcbox compare", () => {
  it("runs a workload file through the chosen generations and prints the JSON contract", async () => {
    const wl = join(dir, "wl.yaml");
    writeFileSync(wl, "flows:\n  - {from: shop/db-0, to: service/kube-system/kube-dns:53, protocol: UDP, count: 2}\n");
    const r = await cli(["compare", "--workload", wl, "--gens", "1,2", "--json"]);
    expect(r.code, r.err).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.gens).toEqual([1, 2]);
    expect(j.flows).toHaveLength(2);
    expect(j.flows[1]).toMatchObject({ id: 1, spec: 0, from: "shop/db-0", protocol: "UDP" });
    expect(j.flows[0].results["1"].delivered).toBe(true);
    expect(j.flows[0].results["2"].src_seen.split(":")[0]).toBe(j.addresses["2"].pods["shop/db-0"]);
  });

  it("--tunnel vxlan runs Gen 4 over cilium_vxlan: 50 encapsulation bytes cross node, none natively", async () => {
    const wl = join(dir, "tunnel.yaml");
    writeFileSync(wl, "flows:\n  - {from: shop/db-0, to: service/shop/frontend:80, protocol: TCP, count: 6}\n");
    const encap = async (extra: string[]) => {
      const r = await cli(["compare", "--workload", wl, "--gens", "4", "--json", ...extra]);
      expect(r.code, r.err).toBe(0);
      const flows = JSON.parse(r.out).flows as { results: Record<string, { delivered: boolean; encap_bytes: number; dst_pod: string }> }[];
      for (const f of flows) expect(f.results["4"]!.delivered).toBe(true);
      return new Set(flows.map((f) => f.results["4"]!.encap_bytes));
    };
    expect(await encap(["--tunnel", "vxlan"])).toContain(50);
    expect([...(await encap([]))]).toEqual([0]);
    const bad = await cli(["compare", "--workload", wl, "--gens", "4", "--tunnel", "geneve"]);
    expect(bad.code).not.toBe(0);
    expect(bad.err).toMatch(/--tunnel: invalid tunnel mode "geneve"/);
  });

  it("a workload error names the file, the entry and the field", async () => {
    const wl = join(dir, "bad.yaml");
    writeFileSync(wl, "flows:\n  - {from: shop/db-0, to: service/kube-system/kube-dns:53, protocol: SCTP}\n");
    const r = await cli(["compare", "--workload", wl, "--gens", "1"]);
    expect(r.code).not.toBe(0);
    expect(r.err).toContain(`${wl}: flows[0].protocol`);
  });
});
