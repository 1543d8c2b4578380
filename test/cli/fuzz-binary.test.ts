// Seeded mutation fuzzing of the binary inputs through the commands, in-process: pcap and pcapng captures
// (`pcap inspect`, `conntrack`), compiled programs (`map dump`, `run`) and `map update` arguments. Every case must
// either succeed cleanly (exit 0, nothing on stderr, JSON on stdout) or fail by the one-line contract: exit
// non-zero, nothing on stdout, one stderr line `tcbox: WHERE: message` naming the file (or the program / map),
// and no JavaScript error text. Deterministic: the same seeds give the same cases on every run.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildSampleCapture } from "../../src/cli/pcap.js";
import { buildTcp, buildUdp } from "../../src/packet/index.js";
import { writePcap } from "../../src/packet/pcap.js";
import { PcapngWriter } from "../../src/packet/pcapng-writer.js";
import { mulberry32, randInt } from "../packet/rng.js";
import { runCli } from "./run.js";
import { customText, withCustomText } from "./wasm-sections.js";

const dir = mkdtempSync(join(tmpdir(), "tcbox-fuzz-binary-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

type Rnd = () => number;
const pick = <T>(rnd: Rnd, a: readonly T[]): T => a[randInt(rnd, a.length)]!;

// Length fields, magics and boundaries a reader must not trust.
const WORDS = [0, 1, 4, 12, 16, 0x7f, 0xff, 0xffff, 0x10000, 262144, 262145, 0x7fffffff, 0x80000000, 0xfffffffc, 0xffffffff, 0x0a0d0d0a, 0x1a2b3c4d, 0x4d3c2b1a, 0xa1b2c3d4, 0xd4c3b2a1, 0xa1b23c4d];

/** One random mutation of `src`: a bit flip, an extreme byte or 32-bit word (aligned or not, either byte order), a
 *  cut, or bytes inserted, deleted or duplicated. */
function mutate(src: Uint8Array, rnd: Rnd): Uint8Array {
  const b = Uint8Array.from(src);
  const dv = new DataView(b.buffer);
  const at = randInt(rnd, b.length);
  switch (randInt(rnd, 8)) {
    case 0:
      b[at]! ^= 1 << randInt(rnd, 8);
      return b;
    case 1:
      b[at] = pick(rnd, [0, 0x7f, 0x80, 0xff]);
      return b;
    case 2: {
      const off = rnd() < 0.7 ? at & ~3 : at;
      if (off + 4 <= b.length) dv.setUint32(off, pick(rnd, WORDS), rnd() < 0.7);
      return b;
    }
    case 3: {
      const off = at & ~3; // a length field nudged by a little: off-by-some, unaligned totals
      if (off + 4 <= b.length) dv.setUint32(off, (dv.getUint32(off, true) + randInt(rnd, 17) - 8) >>> 0, true);
      return b;
    }
    case 4:
      return b.subarray(0, at);
    case 5:
      return Uint8Array.from([...b.subarray(0, at), ...Array.from({ length: 1 + randInt(rnd, 16) }, () => randInt(rnd, 256)), ...b.subarray(at)]);
    case 6:
      return Uint8Array.from([...b.subarray(0, at), ...b.subarray(at + 1 + randInt(rnd, 16))]);
    default:
      return Uint8Array.from([...b.subarray(0, at + 1 + randInt(rnd, 64)), ...b.subarray(at)]);
  }
}

const JS_ERROR = /TypeError|RangeError|ReferenceError|SyntaxError: Unexpected|Cannot read|Cannot convert|is not a function|is not iterable|Invalid time|undefined/;

/** The contract, as one string per violation (empty when kept), so a failure shows the case and what broke. */
async function violations(args: string[], where: string): Promise<string[]> {
  const r = await runCli(args);
  const bad: string[] = [];
  if (r.code === 0) {
    if (r.err !== "") bad.push(`exit 0 with stderr ${JSON.stringify(r.err.slice(0, 200))}`);
    try {
      JSON.parse(r.out);
    } catch {
      bad.push(`exit 0 without a JSON document on stdout: ${JSON.stringify(r.out.slice(0, 200))}`);
    }
    return bad;
  }
  if (r.out !== "") bad.push(`stdout on error: ${JSON.stringify(r.out.slice(0, 200))}`);
  const lines = r.err.split("\n");
  if (lines.length !== 2 || lines[1] !== "") bad.push(`not one stderr line: ${JSON.stringify(r.err.slice(0, 400))}`);
  if (!lines[0]!.startsWith(`tcbox: ${where}: `)) bad.push(`does not name ${where}: ${JSON.stringify(lines[0])}`);
  if (JS_ERROR.test(r.err)) bad.push(`JavaScript error text: ${JSON.stringify(lines[0])}`);
  return bad;
}

async function fuzz(seed: number, n: number, make: (rnd: Rnd, i: number) => { file?: string; bytes?: Uint8Array; runs: [string[], string][] }): Promise<string[]> {
  const rnd = mulberry32(seed);
  const found: string[] = [];
  for (let i = 0; i < n; i++) {
    const c = make(rnd, i);
    if (c.file && c.bytes) writeFileSync(c.file, c.bytes);
    for (const [args, where] of c.runs) {
      for (const v of await violations(args, where)) found.push(`case ${i} (tcbox ${args.join(" ")}): ${v}`);
    }
  }
  return found;
}

const mac = { srcMac: "02:00:00:00:00:01", dstMac: "02:00:00:00:00:02" };
const tcp = buildTcp({ ...mac, src: "10.0.0.1", dst: "10.0.0.2", sport: 1000, dport: 80, flags: 2, seq: 1 });
const udp = buildUdp({ ...mac, src: "10.0.0.1", dst: "10.0.0.3", sport: 53, dport: 53, payload: new Uint8Array(20) });

function captureCase(seeds: Uint8Array[], ext: string) {
  return (rnd: Rnd, i: number) => {
    const file = join(dir, `case-${i}.${ext}`);
    const runs: [string[], string][] = [[["pcap", "inspect", "--json", file], file]];
    if (i % 4 === 0) runs.push([["conntrack", "--json", "--pcap", file], file]);
    return { file, bytes: mutate(pick(rnd, seeds), rnd), runs };
  };
}

describe("fuzzing binary inputs: every case succeeds cleanly or gives the one-line located error", () => {
  it("classic pcap: 400 mutations of little- and big-endian, micro- and nanosecond files", async () => {
    const seeds = [
      readFileSync("examples/lb4.pcap"),
      buildSampleCapture(true),
      writePcap([{ tsNs: 1_700_000_000_123_456_789n, data: tcp }, { tsNs: 1_700_000_001_000_000_000n, data: udp, origLen: 200 }], { bigEndian: true, nanosecond: true, snaplen: 128 }),
    ];
    expect(await fuzz(1, 400, captureCase(seeds, "pcap"))).toEqual([]);
  }, 60_000);

  it("pcapng: 400 mutations of one- and two-interface, little- and big-endian sections", async () => {
    const be = new PcapngWriter({ bigEndian: true });
    be.addInterface({ name: "be0" });
    be.writePacket({ ifIndex: 0, tsNs: 1_700_000_000_000_000_000n, data: tcp, comment: "c", direction: "inbound" });
    be.writePacket({ ifIndex: 0, tsNs: 1_700_000_000_000_001_000n, data: udp });
    expect(await fuzz(2, 400, captureCase([buildSampleCapture(), be.finish()], "pcapng"))).toEqual([]);
  }, 60_000);

  describe("a built program", () => {
    let pass: Uint8Array;
    beforeAll(async () => {
      const out = join(dir, "pass.wasm");
      expect((await runCli(["build", "programs/pass.ts", "-o", out])).code).toBe(0);
      pass = readFileSync(out);
    }, 60_000);

    // Byte mutations mostly stop at WebAssembly validation; the struct layouts (tcbox.btf, JSON) are mutated as
    // data so the cases reach the loader's own checks and the map printing.
    const WEIRD: unknown[] = [-1, 0, 3.5, 1e9, 2 ** 32, "x", "u64", "bytes", null, [], {}, true];
    function mutateBtf(rnd: Rnd): Uint8Array {
      const layouts = JSON.parse(customText(pass, "tcbox.btf")!) as unknown;
      const slots: [Record<string, unknown>, string][] = [];
      const walk = (v: unknown) => {
        if (typeof v !== "object" || v === null) return;
        for (const k of Object.keys(v)) {
          slots.push([v as Record<string, unknown>, k]);
          walk((v as Record<string, unknown>)[k]);
        }
      };
      walk(layouts);
      const [obj, key] = pick(rnd, slots);
      if (rnd() < 0.2 && !Array.isArray(obj)) delete obj[key];
      else obj[key] = pick(rnd, WEIRD);
      return withCustomText(pass, "tcbox.btf", JSON.stringify(layouts));
    }

    it("compiled programs: 120 mutations (bytes, and the BTF layouts) through map dump and run", async () => {
      const found = await fuzz(3, 120, (rnd, i) => {
        const file = join(dir, `prog-${i}.wasm`);
        const where = `program prog-${i}.wasm`;
        const args = i % 3 === 0 ? ["run", "--json", "--program", file, "--pcap", "examples/lb4.pcap"] : ["map", "dump", "pass_stats", "--json", "--program", file];
        return { file, bytes: rnd() < 0.5 ? mutateBtf(rnd) : mutate(pass, rnd), runs: [[args, where]] };
      });
      expect(found).toEqual([]);
    }, 60_000);

    it("map update arguments: 80 keys and values of the wrong length, bad hex and bad JSON", async () => {
      const wasm = join(dir, "pass.wasm");
      const hex = (rnd: Rnd) => (rnd() < 0.8 ? randInt(rnd, 256).toString(16).padStart(2, "0") : pick(rnd, ["0x", "0x0x1", "100", "g0", "-1", "NaN", "٣"]));
      const json = ['null', '[]', '[1]', '{', '"x"', '1', '{"packets":{}}', '{"packets":"0x10"}', '{"packets":1.5}', '{"nope":1}', '{"bytes":-1}', '{"packets":1e400}', '{"packets":true}'];
      const found = await fuzz(4, 80, (rnd) => {
        const words: string[] = ["key", ...Array.from({ length: rnd() < 0.6 ? 4 : randInt(rnd, 7) }, () => hex(rnd))];
        words.push("value", ...Array.from({ length: rnd() < 0.6 ? 16 : randInt(rnd, 19) }, () => hex(rnd)));
        if (rnd() < 0.3) words.push(pick(rnd, ["any", "exist", "noexist"]));
        const opts = rnd() < 0.4 ? ["--value", pick(rnd, json)] : rnd() < 0.3 ? ["--key", pick(rnd, json)] : [];
        if (opts.length > 0) words.splice(opts[0] === "--value" ? words.indexOf("value") : 0, opts[0] === "--value" ? words.length : words.indexOf("value"));
        return { runs: [[["map", "update", "pass_stats", "--json", "--program", wasm, ...opts, ...words], "map pass_stats"]] };
      });
      expect(found).toEqual([]);
    }, 60_000);
  });
});
