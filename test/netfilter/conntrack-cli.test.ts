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

  it("--rules walks an iptables-save ruleset: DNAT, MASQUERADE and a stateful FORWARD chain drive the table", async () => {
    const rules = join(dir, "rules.txt");
    writeFileSync(
      rules,
      [
        "*nat",
        ":PREROUTING ACCEPT [0:0]",
        ":INPUT ACCEPT [0:0]",
        ":OUTPUT ACCEPT [0:0]",
        ":POSTROUTING ACCEPT [0:0]",
        "-A PREROUTING -d 10.96.0.10/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.244.2.7:8080",
        "-A POSTROUTING -s 10.244.0.0/16 ! -d 10.244.0.0/16 -o eth0 -j MASQUERADE",
        "COMMIT",
        "*filter",
        ":INPUT ACCEPT [0:0]",
        ":FORWARD DROP [0:0]",
        ":OUTPUT ACCEPT [0:0]",
        "-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        "-A FORWARD -p tcp -m conntrack --ctstate NEW -j ACCEPT",
        "COMMIT",
        "",
      ].join("\n"),
    );
    const cap = capture("rules.pcap", [
      tcp("10.244.1.5", 43210, "10.96.0.10", 80, F.SYN, 1),
      tcp("10.244.2.7", 8080, "10.244.1.5", 43210, F.SYN | F.ACK, 9, 2),
      tcp("10.244.1.5", 43210, "10.96.0.10", 80, F.ACK, 2, 10),
      udp("10.244.1.5", 5353, "8.8.8.8", 53), // UDP is not allowed by FORWARD: dropped, no entry
      tcp("10.244.1.5", 40000, "1.1.1.1", 443, F.SYN, 1), // masqueraded to the first local address
    ]);
    const r = await run(["conntrack", "--pcap", cap, "--rules", rules, "--local-ip", "192.168.1.10", "--json"]);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.replay).toEqual({ frames: 5, ipv4: 5, accepted: 4, dropped: 1 });
    expect(j.entries.map((e: { state: string; reply: { src: string; dst: string; sport: number } }) => [e.state, e.reply.src, e.reply.dst, e.reply.sport])).toEqual([
      ["ESTABLISHED", "10.244.2.7", "10.244.1.5", 8080],
      ["SYN_SENT", "1.1.1.1", "192.168.1.10", 443],
    ]);
    expect(j.count).toBe(2);
    const both = await run(["conntrack", "--pcap", cap, "--rules", rules, "--dnat", "10.96.0.10:80=1.2.3.4"]);
    expect(both.code).toBe(1);
    expect(both.err).toBe("tcbox: --rules: --dnat/--snat cannot be combined with --rules\n");
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
