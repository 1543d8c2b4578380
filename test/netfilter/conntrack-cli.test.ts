// `tcbox conntrack --pcap`: a capture in, `conntrack -L` lines (or -S, or JSON) out.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it, vi } from "vitest";
import { main } from "../../src/cli/main.js";
import { writePcap } from "../../src/packet/pcap.js";
import { F, ping, tcp, udp } from "./conntrack-fixtures.js";

const dir = mkdtempSync(join(tmpdir(), "tcbox-ct-cli-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function capture(name: string, frames: Uint8Array[]): string {
  const file = join(dir, name);
  writeFileSync(file, writePcap(frames.map((data, k) => ({ tsNs: 1_700_000_000_000_000_000n + BigInt(k) * 10_000_000n, data }))));
  return file;
}

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

const handshake = capture("hs.pcap", [
  tcp("10.244.1.5", 43210, "10.96.0.10", 80, F.SYN, 1),
  tcp("10.244.2.7", 8080, "10.244.1.5", 43210, F.SYN | F.ACK, 9, 2),
  tcp("10.244.1.5", 43210, "10.96.0.10", 80, F.ACK, 2, 10),
  udp("10.244.1.5", 5353, "8.8.8.8", 53),
  ping("10.244.1.5", "8.8.8.8", 42),
]);

// The same flows seen through a box that also SNATs the client to 192.168.1.10: the pod answers that address.
const snatted = capture("snat.pcap", [
  tcp("10.244.1.5", 43210, "10.96.0.10", 80, F.SYN, 1),
  tcp("10.244.2.7", 8080, "192.168.1.10", 43210, F.SYN | F.ACK, 9, 2),
  tcp("10.244.1.5", 43210, "10.96.0.10", 80, F.ACK, 2, 10),
  udp("10.244.1.5", 5353, "8.8.8.8", 53),
  ping("10.244.1.5", "8.8.8.8", 42),
]);

describe("tcbox conntrack --pcap", () => {
  it("lists the table like conntrack -L, with DNAT and SNAT applied", async () => {
    const r = await run(["conntrack", "--pcap", snatted, "--dnat", "tcp/10.96.0.10:80=10.244.2.7:8080", "--snat", "10.244.0.0/16=192.168.1.10"]);
    expect(r.code).toBe(0);
    expect(r.out.split("\n").filter(Boolean)).toEqual([
      "tcp      6 431999 ESTABLISHED src=10.244.1.5 dst=10.96.0.10 sport=43210 dport=80 src=10.244.2.7 dst=192.168.1.10 sport=8080 dport=43210 [ASSURED] mark=0 use=1",
      "udp      17 29 src=10.244.1.5 dst=8.8.8.8 sport=5353 dport=53 [UNREPLIED] src=8.8.8.8 dst=192.168.1.10 sport=53 dport=5353 mark=0 use=1",
      "icmp     1 30 src=10.244.1.5 dst=8.8.8.8 type=8 code=0 id=42 [UNREPLIED] src=8.8.8.8 dst=192.168.1.10 type=0 code=0 id=42 mark=0 use=1",
    ]);
    expect(r.err).toContain("3 flow entries have been shown.");
  });

  it("--at lets entries age and expire; --json carries states, status and the replay summary", async () => {
    const r = await run(["conntrack", "--pcap", handshake, "--dnat", "tcp/10.96.0.10:80=10.244.2.7:8080", "--at", "100", "--json"]);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.entries).toHaveLength(1); // UDP and ICMP (30 s) are gone
    expect(j.entries[0]).toMatchObject({ proto: "tcp", state: "ESTABLISHED", timeout: 431899, original: { sport: 43210, dport: 80 } });
    expect(j.entries[0].status).toEqual(expect.arrayContaining(["ASSURED", "SEEN_REPLY", "CONFIRMED"]));
    expect(j.replay).toEqual({ frames: 5, ipv4: 5, invalid: 0, dropped: 0 });
  });

  it("--max with --stats counts drops when the table is full", async () => {
    const r = await run(["conntrack", "--pcap", handshake, "--dnat", "tcp/10.96.0.10:80=10.244.2.7:8080", "--max", "1", "--stats"]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^cpu=0   \tfound=0 invalid=0 insert=0 insert_failed=0 drop=2 early_drop=0 /);
  });

  it("reports a bad flag or file as one line with its location", async () => {
    const bad = await run(["conntrack", "--pcap", handshake, "--dnat", "10.96.0.10:80"]);
    expect(bad.code).toBe(1);
    expect(bad.err).toBe("tcbox: --dnat 10.96.0.10:80: expected [PROTO/]IP[:PORT]=IP[:PORT]\n");
    const missing = await run(["conntrack", "--pcap", join(dir, "nope.pcap")]);
    expect(missing.code).toBe(1);
    expect(missing.err).toMatch(/^tcbox: .*nope\.pcap: cannot read/);
  });
});
