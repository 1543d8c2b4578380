import { writeFileSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { main } from "../../src/cli/main.js";

const TOPO = new URL("./fixtures/two-nodes.topo", import.meta.url).pathname;

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const o = vi.spyOn(process.stdout, "write").mockImplementation((s) => ((out += String(s)), true));
  const e = vi.spyOn(process.stderr, "write").mockImplementation((s) => ((err += String(s)), true));
  try {
    const code = await main(args);
    return { code, out, err };
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}

afterEach(() => vi.restoreAllMocks());

describe("tcbox ip", () => {
  it("prints a namespace's routes as ip route does", async () => {
    const r = await run(["ip", "-t", TOPO, "-n", "node1", "route"]);
    expect(r.code).toBe(0);
    expect(r.out).toBe(
      ["# node1", "10.244.0.0/24 dev cni0 proto kernel scope link src 10.244.0.1", "10.244.1.0/24 via 192.168.1.12 dev eth0", "192.168.1.0/24 dev eth0 proto kernel scope link src 192.168.1.11", ""].join("\n"),
    );
  });

  it("--json gives {netns, lines}", async () => {
    const r = await run(["ip", "-t", TOPO, "-n", "pod1", "addr", "--json"]);
    const j = JSON.parse(r.out) as Array<{ netns: string; lines: string[] }>;
    expect(j[0]!.netns).toBe("pod1");
    expect(j[0]!.lines).toContain("    inet 10.244.0.2/24 scope global eth0");
  });

  it("send traces a cross-node ping and its reply", async () => {
    const r = await run(["ip", "-t", TOPO, "send", "--from", "pod1", "--to", "10.244.1.2", "--json"]);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out) as Array<{ deliveredIn: string[]; hops: string[] }>;
    expect(j[0]!.deliveredIn).toEqual(["pod2"]);
    expect(j[0]!.hops).toContain("node2 cni0 forward ttl 62");
    expect(j.some((p) => p.deliveredIn.includes("pod1"))).toBe(true);
  });

  it("a script error names the file and line", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tcbox-ip-"));
    const f = join(dir, "bad.topo");
    writeFileSync(f, "netns add a\na ip link set eth9 up\n");
    const r = await run(["ip", "-t", f, "route"]);
    expect(r.code).toBe(1);
    expect(r.err.trim()).toBe(`tcbox: ${f}:2: Cannot find device "eth9"`);
  });
});
