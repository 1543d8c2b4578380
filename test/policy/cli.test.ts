// tcbox policy in-process: the e2e matrix, the JSON contract, --expect (matrix text and JSON) passing and failing.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it, vi } from "vitest";
import { main } from "../../src/cli/main.js";
import { xyzYaml } from "../fixtures/netpol/xyz.js";

const dir = mkdtempSync(join(tmpdir(), "tcbox-policy-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const POLICY = `---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-b, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{from: [{podSelector: {matchLabels: {pod: b}}}], ports: [{port: 80}]}]
`;
const clusterFile = join(dir, "xyz.yaml");
writeFileSync(clusterFile, xyzYaml({ protocols: ["TCP", "UDP"], ports: [80] }) + POLICY);

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const o = vi.spyOn(process.stdout, "write").mockImplementation((s) => ((out += String(s)), true));
  const e = vi.spyOn(process.stderr, "write").mockImplementation((s) => ((err += String(s)), true));
  try {
    return { code: await main(["policy", ...args]), out, err };
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}

const PODS = ["x/a", "x/b", "x/c", "y/a", "y/b", "y/c", "z/a", "z/b", "z/c"];
/** The matrix written by hand: only x/b reaches x/a on 80/TCP; on 80/UDP x/a is isolated (ports say TCP). */
function expectedMatrix(proto: "TCP" | "UDP", override?: { from: string; to: string; cell: string }): string {
  const rows = [`80/${proto}`, ["-", ...PODS].join("\t")];
  for (const f of PODS) {
    const cells = PODS.map((t) => {
      if (override && override.from === f && override.to === t) return override.cell;
      if (f === t) return "-";
      if (t === "x/a") return proto === "TCP" && f === "x/b" ? "." : "X";
      return ".";
    });
    rows.push([f, ...cells].join("\t"));
  }
  return rows.join("\n");
}

describe("tcbox policy", () => {
  it("prints the e2e matrix per port, the same in Gen 1-3", async () => {
    const r = await run(["--cluster", clusterFile, "--gens", "1,2,3"]);
    expect(r.code).toBe(0);
    expect(r.out).toContain(expectedMatrix("TCP").replace("80/TCP", "80/TCP (gens 1,2,3)"));
    expect(r.out).toContain(expectedMatrix("UDP").replace("80/UDP", "80/UDP (gens 1,2,3)"));
    expect(r.out).toContain("generations agree on every cell");
  });

  it("--json keeps the issue 6 contract", async () => {
    const r = await run(["--cluster", clusterFile, "--gens", "2", "--json"]);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(Object.keys(j)).toEqual(["gens", "results"]);
    expect(j.gens).toEqual([2]);
    expect(j.results).toHaveLength(9 * 8 * 2);
    expect(j.results).toContainEqual({ from: "x/b", to: "x/a", port: 80, protocol: "TCP", verdict: { "2": "allow" } });
    expect(j.results).toContainEqual({ from: "y/b", to: "x/a", port: 80, protocol: "TCP", verdict: { "2": "deny" } });
    expect(j.results).toContainEqual({ from: "x/b", to: "x/a", port: 80, protocol: "UDP", verdict: { "2": "deny" } });
    expect(j.results.some((x: { from: string; to: string }) => x.from === x.to)).toBe(false);
  });

  it("--expect with the right matrix exits 0; with wrong cells lists each one and exits non-zero", async () => {
    const good = join(dir, "good.txt");
    writeFileSync(good, `${expectedMatrix("TCP")}\n\n${expectedMatrix("UDP")}\n`);
    expect((await run(["--cluster", clusterFile, "--gens", "3", "--expect", good])).code).toBe(0);

    const bad = join(dir, "bad.txt");
    writeFileSync(bad, `${expectedMatrix("TCP", { from: "y/a", to: "x/a", cell: "." })}\n${expectedMatrix("UDP", { from: "z/c", to: "y/b", cell: "X" })}\n`);
    const r = await run(["--cluster", clusterFile, "--gens", "1,3", "--expect", bad]);
    expect(r.code).not.toBe(0);
    expect(r.err).toContain("y/a -> x/a 80/TCP: gen 1 deny, expected allow");
    expect(r.err).toContain("y/a -> x/a 80/TCP: gen 3 deny, expected allow");
    expect(r.err).toContain("z/c -> y/b 80/UDP: gen 1 allow, expected deny");
    expect(r.err).toContain(`tcbox: ${bad}: 4 cell(s) differ from the expected truth table`);
  });

  it("--expect takes the JSON form, per generation", async () => {
    const f = join(dir, "want.json");
    writeFileSync(f, JSON.stringify({ gens: [2], results: [{ from: "x/b", to: "x/a", port: 80, protocol: "TCP", verdict: { "2": "deny" } }] }));
    const r = await run(["--cluster", clusterFile, "--gens", "2", "--json", "--expect", f]);
    expect(r.code).not.toBe(0);
    expect(r.err).toContain("x/b -> x/a 80/TCP: gen 2 allow, expected deny");
  });

  it("refuses a generation without policy enforcement, and a malformed matrix with its line", async () => {
    const g5 = await run(["--cluster", clusterFile, "--gens", "5"]);
    expect(g5.code).not.toBe(0);
    expect(g5.err).toMatch(/^tcbox: --gens: generation "5"/);
    const f = join(dir, "broken.txt");
    writeFileSync(f, "80/TCP\n-\tx/a\tx/b\nx/a\t-\tY\n");
    const r = await run(["--cluster", clusterFile, "--gens", "2", "--expect", f]);
    expect(r.code).not.toBe(0);
    expect(r.err).toContain(`tcbox: ${f}:3: cell "Y" is not`);
  });
});
