// tcbox topology: text and JSON per node, errors naming the flag.
import { afterEach, describe, expect, it, vi } from "vitest";
import { main } from "../../src/cli/main.js";

function capture() {
  let out = "";
  let err = "";
  vi.spyOn(process.stdout, "write").mockImplementation((s: string | Uint8Array) => ((out += String(s)), true));
  vi.spyOn(process.stderr, "write").mockImplementation((s: string | Uint8Array) => ((err += String(s)), true));
  return { out: () => out, err: () => err };
}
afterEach(() => vi.restoreAllMocks());

describe("tcbox topology", () => {
  it("Gen 1 node-1 as text: ip route with the flannel routes", async () => {
    const c = capture();
    expect(await main(["topology", "--gen", "1", "--node", "node-1"])).toBe(0);
    expect(c.out()).toContain("  10.244.1.0/24 via 10.244.1.0 dev flannel.1 onlink\n");
    expect(c.out()).toContain("# bridge fdb");
  });

  it("Gen 2 JSON: learned routes per node", async () => {
    const c = capture();
    expect(await main(["topology", "--gen", "2", "--json"])).toBe(0);
    const j = JSON.parse(c.out());
    expect(j.gen).toBe(2);
    expect(j.nodes.map((n: { name: string }) => n.name)).toEqual(["node-1", "node-2", "node-3"]);
    expect(j.nodes[1].learnedRoutes).toEqual(["10.244.0.0/26 via 10.0.1.10 dev eth0 proto bird", "10.244.2.0/26 via 10.0.1.1 dev eth0 proto bird"]);
  });

  it("errors name the flag", async () => {
    const c = capture();
    expect(await main(["topology", "--gen", "7"])).toBe(1);
    expect(c.err()).toMatch(/^tcbox: --gen: generation "7" has no builder/);
    expect(await main(["topology", "--gen", "3", "--node", "nope"])).toBe(1);
    expect(c.err()).toContain("tcbox: --node: node \"nope\" not found");
  });
});
