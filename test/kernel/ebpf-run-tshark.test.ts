// tshark referees the packets a program rewrote: rewrite_dst.ts (the lb4 core: DNAT with l3/l4_csum_replace)
// runs over TCP and UDP flows with `tcbox run`, and tshark, checking every checksum, must find the IP, TCP and
// UDP checksums of every output packet good and the destinations rewritten. Skips when tshark is missing.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { main } from "../../src/cli/main.js";
import { buildTcp, buildUdp } from "../../src/packet/index.js";
import { writePcapng } from "../../src/packet/pcapng.js";

const hasTshark = spawnSync("tshark", ["-v"], { encoding: "utf8" }).status === 0;
const dir = mkdtempSync(join(tmpdir(), `tcbx-ebpf-tshark-${process.pid}-`));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.skipIf(!hasTshark)("tcbox run output, checked by tshark", () => {
  it("every rewritten packet has good IP/TCP/UDP checksums and the backend as destination", async () => {
    const pkts: Uint8Array[] = [];
    for (let i = 0; i < 40; i++) {
      const payload = new Uint8Array(i * 7).map((_, k) => (k * 13 + i) & 255);
      pkts.push(
        i % 2
          ? buildTcp({ src: `10.1.${i}.${200 - i}`, dst: "10.96.0.10", sport: 30000 + i * 997, dport: 80, flags: 0x18, seq: i * 7919, payload })
          : buildUdp({ src: `10.1.${i}.${200 - i}`, dst: "10.96.0.20", sport: 30000 + i * 991, dport: 53, payload }),
      );
    }
    writeFileSync(join(dir, "in.pcapng"), writePcapng([{ name: "eth0" }], pkts.map((data, i) => ({ ifIndex: 0, tsNs: BigInt(i + 1) * 1000n, data }))));
    writeFileSync(
      join(dir, "seed.json"),
      JSON.stringify({
        rewrite_services: [
          { key: { daddr: "10.96.0.10", dport: 80, proto: 6 }, value: { addr: "10.244.3.17", port: 8080 } },
          { key: { daddr: "10.96.0.20", dport: 53, proto: 17 }, value: { addr: "10.244.9.250", port: 1053 } },
        ],
      }),
    );
    const out = join(dir, "out.pcapng");
    const write = process.stdout.write;
    process.stdout.write = (() => true) as typeof process.stdout.write;
    let code: number;
    try {
      code = await main(["run", "--program", "programs/examples/rewrite_dst.ts", "--pcap", join(dir, "in.pcapng"), "--maps", join(dir, "seed.json"), "--out", out]);
    } finally {
      process.stdout.write = write;
    }
    expect(code).toBe(0);
    const r = spawnSync(
      "tshark",
      ["-r", out, "-o", "ip.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE", "-T", "fields", "-e", "ip.dst", "-e", "ip.checksum.status", "-e", "tcp.checksum.status", "-e", "udp.checksum.status", "-e", "tcp.dstport", "-e", "udp.dstport"],
      { encoding: "utf8" },
    );
    expect(r.status).toBe(0);
    const rows = r.stdout.trim().split("\n").map((l) => l.split("\t"));
    expect(rows.length).toBe(40);
    rows.forEach((row, i) => {
      const [dst, ipOk, tcpOk, udpOk, tport, uport] = row;
      // checksum.status: 1 = good (0 = bad, 2 = unverified)
      expect([i, dst, ipOk, i % 2 ? tcpOk : udpOk, i % 2 ? tport : uport]).toEqual([i, i % 2 ? "10.244.3.17" : "10.244.9.250", "1", "1", i % 2 ? "8080" : "1053"]);
    });
  });
});
