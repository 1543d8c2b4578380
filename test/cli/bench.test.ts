// tcbox bench --quick: JSON shape and sanity (never a speed), the SVG plot, no progress bar off a terminal.
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { main } from "../../src/cli/main.js";

async function capture(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const o = vi.spyOn(process.stdout, "write").mockImplementation((s: string | Uint8Array) => ((out += String(s)), true));
  const e = vi.spyOn(process.stderr, "write").mockImplementation((s: string | Uint8Array) => ((err += String(s)), true));
  try {
    const code = await main(argv);
    return { code, out, err };
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}

const dir = mkdtempSync(join(tmpdir(), "tcbox-bench-"));
const svg = join(dir, "bench.svg");
let run: { code: number; out: string; err: string };

describe("tcbox bench --quick --json --plot", () => {
  beforeAll(async () => {
    run = await capture(["bench", "--quick", "--json", "--gens", "1,4", "--services", "10,100", "--policies", "3", "--plot", svg]);
  }, 600_000);
  afterAll(() => undefined);

  it("exits 0 and prints only JSON (no progress bar: stdout is not a TTY)", () => {
    expect(run.code).toBe(0);
    expect(() => JSON.parse(run.out)).not.toThrow();
    expect(run.out).not.toMatch(/\[[░█]+\]/);
  });

  it("has one result per generation and scale with the contract's fields, all positive", () => {
    const { results } = JSON.parse(run.out) as { results: (Record<string, number> & { mode: string })[] };
    expect(results.map((r) => `${r.gen}/${r.mode}/${r.services}`)).toEqual(["1/iptables/10", "1/iptables/100", "1/ipvs/10", "1/ipvs/100", "4/ebpf/10", "4/ebpf/100"]);
    for (const r of results) {
      for (const k of ["new_pps", "established_pps", "sync_ms", "lookups_per_packet", "bytes_per_service", "bytes_per_ct_entry"]) {
        expect(r[k], `${r.gen}/${r.services} ${k}`).toBeGreaterThan(0);
      }
      expect(r.rules_per_new).toBeGreaterThanOrEqual(0);
    }
  });

  it("Gen 4 evaluates no rules and looks up maps; Gen 1 walks more rules with more Services", () => {
    const { results } = JSON.parse(run.out) as { results: (Record<string, number> & { mode: string })[] };
    const g4 = results.filter((r) => r.gen === 4);
    for (const r of g4) {
      expect(r.rules_per_new).toBe(0);
      expect(r.lookups_per_packet).toBeGreaterThan(0);
    }
    const g1 = results.filter((r) => r.gen === 1 && r.mode === "iptables");
    expect(g1[1]!.rules_per_new).toBeGreaterThan(g1[0]!.rules_per_new);
    // KUBE-SERVICES is linear: about half of 100 Services' rules more than 10's, per first packet on average.
    expect(g1[1]!.rules_per_new - g1[0]!.rules_per_new).toBeGreaterThan(30);
    // IPVS mode matches Services with ipsets and IPVS's hash: the rules walked do not grow with Services.
    const ipvs = results.filter((r) => r.gen === 1 && r.mode === "ipvs");
    expect(ipvs[1]!.rules_per_new).toBe(ipvs[0]!.rules_per_new);
    expect(ipvs[0]!.rules_per_new).toBeLessThan(g1[0]!.rules_per_new);
  });

  it("--policies: every row carries the policy hop; Felix walks rules for it, Gen 4 none; the first packet costs more with it", () => {
    const { results } = JSON.parse(run.out) as { results: (Record<string, number> & { mode: string })[] };
    for (const r of results) {
      expect(r.policies).toBe(3);
      expect(r.policy_new_ns).toBeGreaterThan(0);
      expect(r.new_with_policy_pps).toBeLessThan(r.new_pps);
      if (r.mode === "ebpf") expect(r.policy_rules_per_new).toBe(0);
      else expect(r.policy_rules_per_new).toBeGreaterThan(0);
    }
  });

  it("reports its clock and the live connections every table held", () => {
    const out = JSON.parse(run.out) as { clock: string; background_connections: number };
    expect(out.clock).toBe("cpu");
    expect(out.background_connections).toBeGreaterThan(0);
  });

  it("writes an SVG with axis titles and one line per generation in each panel", () => {
    const text = readFileSync(svg, "utf8");
    expect(text).toContain("<svg");
    expect(text).toContain("Services (log scale)");
    expect(text).toContain("packets per second");
    const lines = text.match(/aria-roledescription="line mark"/g) ?? [];
    expect(lines.length).toBe(3 * 2); // Gen 1 iptables, Gen 1 IPVS, Gen 4 x (new, established)
  });
});

describe("tcbox bench --workers 2", () => {
  it("Gen 4 rows carry 2 workers' total and per-worker rates and the 1-worker figure; Gen 1-3 rows say 1 worker", async () => {
    const r = await capture(["bench", "--quick", "--json", "--gens", "1,4", "--services", "10", "--workers", "2"]);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.out) as { results: (Record<string, number | number[]> & { mode: string })[]; notes: string[] };
    const g4 = out.results.find((x) => x.gen === 4)!;
    const g1 = out.results.find((x) => x.gen === 1)!;
    expect(g1.workers).toBe(1);
    expect(g1.new_pps_1worker).toBeUndefined();
    expect(g4.workers).toBe(2);
    for (const k of ["new_pps", "established_pps", "new_pps_1worker", "established_pps_1worker", "single_thread_new_pps", "single_thread_established_pps"]) {
      expect(g4[k], k).toBeGreaterThan(0);
    }
    for (const k of ["new_pps_per_worker", "established_pps_per_worker"]) {
      const per = g4[k] as number[];
      expect(per.length, k).toBe(2);
      for (const x of per) expect(x).toBeGreaterThan(0);
    }
    expect(out.notes.join("\n")).toMatch(/--workers 2: .*Gen 1-3 run on one thread/);
  }, 600_000);
});

describe("tcbox bench --modes nftables", () => {
  it("measures kube-proxy nftables mode: gen a number, mode nftables, rules per first packet flat in Services", async () => {
    const r = await capture(["bench", "--quick", "--json", "--gens", "1", "--services", "10,100", "--modes", "nftables"]);
    expect(r.code).toBe(0);
    const { results } = JSON.parse(r.out) as { results: (Record<string, number> & { mode: string })[] };
    expect(results.map((x) => `${x.gen}/${x.mode}/${x.services}`)).toEqual(["1/nftables/10", "1/nftables/100"]);
    expect(typeof results[0]!.gen).toBe("number");
    // Verdict maps: the rules walked do not grow with Services; the map lookups are counted with conntrack's.
    expect(results[1]!.rules_per_new).toBe(results[0]!.rules_per_new);
    expect(results[0]!.rules_per_new).toBeGreaterThan(0);
    expect(results[0]!.lookups_per_new).toBeGreaterThan(1);
    for (const x of results) expect(x.new_pps).toBeGreaterThan(0);
  }, 600_000);
});

describe("tcbox bench errors", () => {
  it("refuses more workers than it has established connection ranges for", async () => {
    const r = await capture(["bench", "--quick", "--workers", "17"]);
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(/--workers: .*1\.\.16/);
  });
  it("rejects an unknown --modes entry", async () => {
    const r = await capture(["bench", "--quick", "--modes", "iptables,userspace"]);
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(/--modes: .*unknown kube-proxy mode "userspace"/);
  });
  it("rejects a bad --services list", async () => {
    const r = await capture(["bench", "--services", "ten"]);
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(/--services/);
  });
});
