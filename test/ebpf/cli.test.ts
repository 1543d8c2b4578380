// The CLI end to end, in-process: tcbox build, run and map, with their errors.
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { buildTcp, buildUdp, get16, get32, parseIpv4 } from "../../src/packet/index.js";
import { readCapture, writePcapng } from "../../src/packet/pcapng.js";
import { runCli } from "../cli/run.js";

let dir: string;
const SEED = { rewrite_services: [{ key: { daddr: "10.96.0.10", dport: 53, proto: 17 }, value: { addr: "10.244.2.99", port: 5353 } }] };
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "tcbox-ebpf-cli-"));
  const pkts = [
    buildUdp({ src: "10.0.0.5", dst: "10.96.0.10", sport: 33000, dport: 53, payload: new Uint8Array(12) }),
    buildTcp({ src: "10.0.0.5", dst: "10.0.0.6", sport: 1, dport: 2, flags: 2 }),
    buildUdp({ src: "10.0.0.7", dst: "10.96.0.10", sport: 33001, dport: 53 }),
  ];
  writeFileSync(join(dir, "in.pcapng"), writePcapng([{ name: "eth0" }], pkts.map((data, i) => ({ ifIndex: 0, tsNs: 1_000_000_000n * BigInt(i + 1), data }))));
  writeFileSync(join(dir, "seed.json"), JSON.stringify(SEED));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const cli = runCli;

describe("tcbox build", () => {
  it("writes the module and lists entry points and maps", async () => {
    const out = join(dir, "rw.wasm");
    const r = await cli(["build", "programs/examples/rewrite_dst.ts", "-o", out, "--json"]);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.entryPoints).toEqual(["cls_main"]);
    expect(j.maps).toEqual([{ name: "rewrite_services", type: "hash", key: 8, value: 8, maxEntries: 262144, pinning: 2 }]);
    expect(existsSync(out)).toBe(true);
  });

  it("compile errors: FILE:LINE:COL and exit 1", async () => {
    const bad = join(dir, "bad.ts");
    writeFileSync(bad, `import { __sk_buff } from "tcbox";\nexport function cls_main(skb: __sk_buff): i32 {\n  return nope;\n}\n`);
    const r = await cli(["build", bad]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(new RegExp(`^tcbox: ${bad.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}:3:10: .*nope`, "m"));
  });

  it("verifier rejections exit 1 naming the program", async () => {
    const bad = join(dir, "grow.ts");
    writeFileSync(bad, `import { __sk_buff } from "tcbox";\nexport function cls_main(skb: __sk_buff): i32 { return memory.grow(1); }\n`);
    const r = await cli(["build", bad, "-o", join(dir, "grow.wasm")]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^tcbox: program grow.wasm: program grows memory/m);
  });
});

describe("tcbox run", () => {
  it("seeds the map, rewrites the frontend packets, writes all three and prints counters (JSON)", async () => {
    const out = join(dir, "out.pcapng");
    const r = await cli(["run", "--program", "programs/examples/rewrite_dst.ts", "--pcap", join(dir, "in.pcapng"), "--maps", join(dir, "seed.json"), "--out", out, "--json"]);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.packets.map((p: { verdict: string; changed: boolean }) => [p.verdict, p.changed])).toEqual([["TC_ACT_OK", true], ["TC_ACT_OK", false], ["TC_ACT_OK", true]]);
    expect(j.counters.retvals).toEqual({ TC_ACT_OK: 3 });
    const cap = readCapture(readFileSync(out), out);
    expect(cap.records.length).toBe(3);
    expect(get32(cap.records[0]!.data, 30)).toBe(parseIpv4("10.244.2.99"));
    expect(get16(cap.records[2]!.data, 36)).toBe(5353);
    expect(cap.records[1]!.tsNs).toBe(2_000_000_000n);
  });

  it("drop.ts: nothing written; a runaway entry is stopped by the budget and counted", async () => {
    const out = join(dir, "none.pcapng");
    let r = await cli(["run", "--program", "programs/drop.ts", "--pcap", join(dir, "in.pcapng"), "--out", out]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/TC_ACT_SHOT \(reason 133\)/);
    expect(r.out).toMatch(/verdicts: TC_ACT_SHOT 3/);
    expect(r.out).toMatch(/wrote 0 of 3 packets/);
    expect(readCapture(readFileSync(out), out).records.length).toBe(0);
    const loop = join(dir, "loop.ts");
    writeFileSync(loop, `import { __sk_buff, TC_ACT_OK } from "tcbox";\nexport function cls_main(skb: __sk_buff): i32 { while (skb.len > 44) { skb.cb0++; } return TC_ACT_OK; }\n`);
    r = await cli(["run", "--program", loop, "--pcap", join(dir, "in.pcapng"), "--budget", "10000", "--json"]);
    const j = JSON.parse(r.out);
    expect(j.packets.map((p: { trap?: string }) => p.trap ?? "-")).toEqual(["budget", "budget", "-"]);
    expect(j.counters.traps.budget).toBe(2);
  });

  it("errors: missing capture, unknown map in the seed", async () => {
    let r = await cli(["run", "--program", "programs/pass.ts", "--pcap", join(dir, "missing.pcap")]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/missing.pcap: cannot read/);
    writeFileSync(join(dir, "badseed.json"), JSON.stringify({ nosuch: [] }));
    r = await cli(["run", "--program", "programs/pass.ts", "--pcap", join(dir, "in.pcapng"), "--maps", join(dir, "badseed.json")]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/badseed.json: no map "nosuch" in pass.ts/);
  });
});

describe("tcbox map", () => {
  it("dump like bpftool (hex and fields), -j with formatted fields", async () => {
    const common = ["--program", "programs/examples/rewrite_dst.ts", "--maps", join(dir, "seed.json")];
    let r = await cli(["map", "dump", ...common, "rewrite_services"]);
    expect(r.out).toBe("key: 0a 60 00 0a 00 35 11 00  value: 0a f4 02 63 14 e9 00 00\n\t{daddr: 10.96.0.10, dport: 53, proto: 17, pad: 0} => {addr: 10.244.2.99, port: 5353, pad: 0}\nFound 1 element\n");
    r = await cli(["map", "dump", ...common, "--json", "rewrite_services"]);
    expect(JSON.parse(r.out)).toEqual([
      {
        key: ["0x0a", "0x60", "0x00", "0x0a", "0x00", "0x35", "0x11", "0x00"],
        value: ["0x0a", "0xf4", "0x02", "0x63", "0x14", "0xe9", "0x00", "0x00"],
        formatted: { key: { daddr: "10.96.0.10", dport: 53, proto: 17, pad: 0 }, value: { addr: "10.244.2.99", port: 5353, pad: 0 } },
      },
    ]);
  });

  it("update (hex, bpftool syntax, and JSON fields), delete, --save round-trips as a seed", async () => {
    const saved = join(dir, "saved.json");
    const common = ["--program", "programs/examples/rewrite_dst.ts", "--maps", join(dir, "seed.json")];
    let r = await cli(["map", "update", ...common, "--save", saved, "rewrite_services", "key", "0a", "60", "00", "01", "01", "bb", "06", "00", "value", "0a", "00", "00", "09", "00", "00", "00", "00", "noexist"]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/Found 2 elements/);
    r = await cli(["map", "update", ...common, "rewrite_services", "--key", '{"daddr":"10.96.0.10","dport":53,"proto":17}', "--value", '{"addr":"1.2.3.4"}', "noexist"]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^tcbox: map rewrite_services: key 0a 60 00 0a 00 35 11 00: update: -EEXIST/m);
    r = await cli(["map", "delete", "--program", "programs/examples/rewrite_dst.ts", "--maps", saved, "--json", "rewrite_services", "key", "0a", "60", "00", "0a", "00", "35", "11", "00"]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out).map((e: { formatted: { key: { daddr: string; dport: number } } }) => [e.formatted.key.daddr, e.formatted.key.dport])).toEqual([["10.96.0.1", 443]]);
  });

  it("list: bpftool's shape, pinned path, -j field names", async () => {
    const r = await cli(["map", "list", "--program", "programs/examples/map_filler.ts", "--json"]);
    expect(JSON.parse(r.out).map((m: Record<string, unknown>) => [m.type, m.name, m.bytes_key, m.bytes_value, m.max_entries, m.lookups])).toEqual([
      ["hash", "fill_hash", 4, 8, 4, 0], // lookups: tcbox's additive field (program lookups; none ran here)
      ["lru_hash", "fill_lru", 4, 8, 4, 0],
    ]);
  });
});
