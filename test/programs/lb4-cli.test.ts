// The README example: `tcbox run --program programs/lb4.ts --pcap examples/lb4.pcap --maps
// examples/lb4-maps.json --out OUT --json` DNATs the connection, reverse-NATs the backend's reply, balances the
// DNS query, drops the SYN to the Service without backends (158), and writes valid packets.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, it, vi } from "vitest";
import { main } from "../../src/cli/main.js";
import { readCapture } from "../../src/packet/pcapng.js";
import { checksumsValid, hdr } from "./lb4-helpers.js";

const dir = mkdtempSync(join(tmpdir(), "tcbox-lb4-cli-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

it("tcbox run lb4 on the example capture and maps", async () => {
  const out = join(dir, "out.pcapng");
  let stdout = "";
  const spy = vi.spyOn(process.stdout, "write").mockImplementation((s: string | Uint8Array) => {
    stdout += String(s);
    return true;
  });
  let code: number;
  try {
    code = await main(["run", "--program", "programs/lb4.ts", "--pcap", "examples/lb4.pcap", "--maps", "examples/lb4-maps.json", "--out", out, "--json"]);
  } finally {
    spy.mockRestore();
  }
  expect(code).toBe(0);
  const res = JSON.parse(stdout) as { packets: { verdict: string; dropReason?: number }[] };
  expect(res.packets.map((p) => p.verdict)).toEqual(["TC_ACT_OK", "TC_ACT_OK", "TC_ACT_OK", "TC_ACT_OK", "TC_ACT_SHOT"]);
  expect(res.packets[4]!.dropReason).toBe(158);
  const written = readCapture(readFileSync(out), out).records.map((r) => r.data);
  expect(written.map(hdr)).toEqual([
    { saddr: "10.244.1.5", daddr: "10.244.3.11", sport: 40000, dport: 8080, proto: 6 },
    { saddr: "10.96.0.10", daddr: "10.244.1.5", sport: 80, dport: 40000, proto: 6 },
    { saddr: "10.244.1.5", daddr: "10.244.3.11", sport: 40000, dport: 8080, proto: 6 },
    { saddr: "10.244.1.5", daddr: "10.244.2.20", sport: 53000, dport: 5353, proto: 17 },
  ]);
  for (const p of written) expect(checksumsValid(p)).toBe(true);
}, 120_000);
