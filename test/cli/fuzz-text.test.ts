// Seeded mutation fuzz of tcbox's text inputs through the commands, in-process: iptables-save text (trace),
// manifests (kube-proxy, topology), topology scripts (ip), CNI config + state file (cni) and the --maps seed.
// Valid examples are mutated (lines deleted, duplicated, swapped, truncated; tokens replaced by huge, negative,
// NaN, empty, unicode, long values; CRLF, tabs; JSON/YAML values of the wrong type, nulls, deep nesting,
// duplicated and missing keys) and every run must either succeed cleanly or give the one-line error contract:
// `tcbox: WHERE: message` naming the file, a non-zero exit, nothing on stdout (for cni: the spec's error object),
// and no JavaScript error text (TypeError, "Cannot read properties", a stack overflow) in the message.
// Deterministic: the same seeds give the same inputs on every run.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseAllDocuments, stringify } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BpfKernel, type BpfObject } from "../../src/ebpf/kernel.js";
import { applySeed } from "../../src/ebpf/seed.js";
import { isArrayType } from "../../src/ebpf/maps/layout.js";
import { formatError } from "../../src/cli/output.js";
import { rng } from "../fuzz/hostile.js";
import { runCli } from "./run.js";

const dir = mkdtempSync(join(tmpdir(), "tcbox-fuzz-text-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

type Rand = () => number;
const int = (r: Rand, n: number) => Math.floor(r() * n);
const pick = <T>(r: Rand, a: readonly T[]): T => a[int(r, a.length)]!;

const WORDS = ["99999999999999999999", "-1", "-2147483649", "NaN", "", "4294967296", "1e309", "0x7fffffff", "0", "null", "[]", "{}", "é中😀", "\u0000", "\t", "a".repeat(3000), "256.1.1.1", "10.0.0.1/33", "1.2.3", "::1", "-", "!", "'", '"', "\\", "&a", "*a", ": ", "- ", "#", "65536", "3.5", "10.0.0.0/-1"];

/** Line and token mutations of any text. */
function mutateText(r: Rand, s: string): string {
  let lines = s.split("\n");
  for (let k = 1 + int(r, 3); k > 0; k--) {
    const i = int(r, Math.max(1, lines.length));
    const l = lines[i] ?? "";
    const toks = l.split(/\s+/);
    switch (int(r, 12)) {
      case 0: lines.splice(i, 1); break;
      case 1: lines.splice(i, 0, pick(r, lines) ?? ""); break;
      case 2: { const j = int(r, lines.length); [lines[i], lines[j]] = [lines[j]!, l]; break; }
      case 3: { const t = lines.join("\n"); lines = t.slice(0, int(r, t.length + 1)).split("\n"); break; }
      case 4: { const p = int(r, l.length + 1); lines[i] = l.slice(0, p) + String.fromCharCode(int(r, 128)) + l.slice(p + 1); break; }
      case 5: case 6: { const parts = l.split(/(\s+|[,:=/{}[\]"])/); parts[int(r, parts.length)] = pick(r, WORDS); lines[i] = parts.join(""); break; }
      case 7: lines[i] = l.replace(/\d+/g, (d) => (r() < 0.5 ? pick(r, WORDS) : d)); break;
      case 8: lines = lines.map((x) => x + "\r"); break;
      case 9: lines[i] = l.replace(/ /g, "\t"); break;
      case 10: toks.splice(int(r, toks.length), 1); lines[i] = toks.join(" "); break;
      default: toks.splice(int(r, toks.length + 1), 0, pick(r, toks) ?? "x"); lines[i] = toks.join(" ");
    }
  }
  return lines.join("\n");
}

const VALUES: unknown[] = [null, true, false, 0, -1, 1.5, 2 ** 53, 2 ** 32, 65536, "", "x", "a".repeat(3000), [], {}, [1], { a: 1 }, "10.0.0.1", "999.1.1.1", "10.0.0.0/8", "é😀", "constructor"];

/** Mutate a parsed JSON/YAML value in place at 1-3 random places; returns the (possibly replaced) root. */
function mutateValue(r: Rand, root: unknown): unknown {
  const slots: [Record<string | number, unknown>, string | number][] = [];
  const walk = (x: unknown) => {
    if (x === null || typeof x !== "object") return;
    for (const k of Object.keys(x)) {
      slots.push([x as Record<string, unknown>, Array.isArray(x) ? Number(k) : k]);
      walk((x as Record<string, unknown>)[k]);
    }
  };
  walk(root);
  if (slots.length === 0) return pick(r, VALUES);
  for (let k = 1 + int(r, 3); k > 0; k--) {
    const [o, key] = pick(r, slots);
    const v = o[key];
    switch (int(r, 7)) {
      case 0: if (Array.isArray(o)) o.splice(key as number, 1); else delete o[key]; break;
      case 1: { let d: unknown = 1; for (let n = 100 + int(r, 400); n > 0; n--) d = [d]; o[key] = d; break; }
      case 2: if (Array.isArray(o)) o.push(v, v); else o[`${key}x`] = v; break;
      case 3: o[key] = typeof v === "number" ? pick(r, [-v, v * 1e6, v + 0.5, String(v)]) : typeof v === "string" ? pick(r, [v + v, v.slice(1), Number(v) || 7, [v]]) : pick(r, VALUES); break;
      case 4: o[key] = Array.isArray(v) ? {} : []; break;
      default: o[key] = pick(r, VALUES);
    }
  }
  return root;
}

function mutateJson(r: Rand, s: string): string {
  if (r() < 0.25) return mutateText(r, s);
  const out = JSON.stringify(mutateValue(r, JSON.parse(s)));
  // JSON.parse keeps the last of duplicate keys: give one a different earlier value.
  return r() < 0.2 ? out.replace(/"(\w+)":/, (all, k: string) => `"${k}": 1, ${all}`) : out;
}

function mutateYaml(r: Rand, s: string): string {
  if (r() < 0.3) return mutateText(r, s);
  const docs = parseAllDocuments(s).map((d) => d.toJS() as unknown);
  const i = int(r, docs.length);
  docs[i] = mutateValue(r, docs[i]);
  const out = docs.map((d) => stringify(d, { aliasDuplicateObjects: false })).join("---\n");
  return r() < 0.3 ? mutateText(r, out) : out;
}

const LEAK = /TypeError|RangeError|ReferenceError|Cannot read propert|is not a function|is not iterable|Maximum call stack|\[object Object\]|\bundefined\b/;

interface Case {
  file: string;
  args: string[];
  json: boolean;
}

/** The contract for one run; returns what is wrong ("" when nothing). */
function verdict(c: Case, r: { code: number; out: string; err: string }, cni = false): string {
  if (r.code === 0) {
    if (r.err !== "") return `exit 0 with stderr ${JSON.stringify(r.err.slice(0, 200))}`;
    if (c.json) {
      try {
        JSON.parse(r.out);
      } catch {
        return "exit 0 but stdout is not one JSON document";
      }
    }
    return "";
  }
  const lines = r.err.trimEnd().split("\n");
  if (lines.length !== 1) return `stderr has ${lines.length} lines: ${JSON.stringify(r.err.slice(0, 300))}`;
  const line = lines[0]!;
  // cni: a fault of the invocation rather than the file (CHECK of a container never added) names the variable.
  if (!line.startsWith(`tcbox: ${c.file}`) && !(cni && /^tcbox: CNI_[A-Z]+: /.test(line))) return `not "tcbox: FILE...: message": ${JSON.stringify(line.slice(0, 300))}`;
  if (LEAK.test(line)) return `JavaScript error text in the message: ${JSON.stringify(line.slice(0, 300))}`;
  if (cni) {
    if (r.out === "") return "";
    const o = JSON.parse(r.out) as { code?: unknown; msg?: unknown };
    return typeof o.code === "number" && typeof o.msg === "string" ? "" : `stdout is not a CNI error object: ${r.out.slice(0, 200)}`;
  }
  return r.out === "" ? "" : `stdout not empty on error: ${JSON.stringify(r.out.slice(0, 200))}`;
}

/** Run `n` seeded cases of one format; the failures, each with its input file kept for reproduction. */
async function campaign(name: string, n: number, make: (r: Rand, file: string) => Case, cni = false): Promise<{ failures: string[]; ok: number }> {
  const failures: string[] = [];
  let ok = 0;
  // A process warning (node prints it on stderr) breaks the one-line contract as much as a second line does.
  const warnings: string[] = [];
  const onWarning = (w: Error) => warnings.push(w.message);
  process.on("warning", onWarning);
  for (let i = 0; i < n; i++) {
    const r = rng(0x7e47 * 1000 + i);
    const c = make(r, join(dir, `${name}-${i}`));
    warnings.length = 0;
    const res = await runCli(c.args);
    await new Promise((done) => setImmediate(done)); // warnings are emitted on the next tick
    if (warnings.length > 0) failures.push(`case ${i} (${c.args.join(" ")}): process warning: ${warnings[0]!.slice(0, 200)}`);
    if (res.code === 0) ok++;
    const bad = verdict(c, res, cni);
    if (bad !== "") failures.push(`case ${i} (${c.args.join(" ")}): ${bad}`);
  }
  process.off("warning", onWarning);
  return { failures, ok };
}

const seedText = (p: string) => readFileSync(p, "utf8");
const RULES = ["test/fixtures/iptables/docker.save", "test/fixtures/iptables/calico.save", "test/fixtures/iptables/kube-proxy.save", "test/fixtures/iptables/matches-targets.save"].map(seedText);
const MANIFESTS = ["test/fixtures/k8s/all-kinds.yaml", "test/fixtures/k8s/kube-proxy/flows/node-ports.yaml", "test/fixtures/k8s/kube-proxy/flows/topology-prefer-close.yaml"].map(seedText);
const TOPO = seedText("test/net/fixtures/two-nodes.topo");
const PACKETS = ["tcp 10.0.0.2:40000 -> 172.30.0.41:80", "udp 10.244.1.5:5353 -> 10.96.0.10:53", "tcp 1.2.3.4:1234 -> 172.17.0.2:80"];
const CNI_CONFS = [
  { cniVersion: "1.0.0", name: "cbr0", type: "bridge", isDefaultGateway: true, mtu: 1450, ipam: { type: "host-local", subnet: "10.244.3.0/24", routes: [{ dst: "10.0.0.0/8" }] } },
  { cniVersion: "0.4.0", name: "cbr0", type: "bridge", bridge: "cni0", ipMasq: true, ipam: { type: "host-local", ranges: [[{ subnet: "10.244.3.0/24", rangeStart: "10.244.3.10", rangeEnd: "10.244.3.20", gateway: "10.244.3.1" }]] } },
  { cniVersion: "1.0.0", name: "k8s-pod-network", type: "calico", nodename: "node", ipam: { type: "calico-ipam", pool: "10.244.0.0/16", blockSize: 26, hint: "10.244.1.0/24" } },
  { cniVersion: "1.0.0", name: "aws-cni", type: "aws-cni", vethPrefix: "eni", instanceType: "m5.large", nodeIP: "192.168.1.10", subnet: "192.168.1.0/24", mtu: "9001" },
].map((c) => JSON.stringify(c));
const CNI_ENV = { CNI_COMMAND: "ADD", CNI_CONTAINERID: "pod-a", CNI_NETNS: "/var/run/netns/pod-a", CNI_IFNAME: "eth0", CNI_PATH: "/opt/cni/bin" };

function expectClean(name: string, res: { failures: string[]; ok: number }, n: number): void {
  expect(res.failures, name).toEqual([]);
  // The mutations leave some inputs valid and break most: both paths are exercised.
  expect(res.ok, `${name}: successes`).toBeGreaterThan(0);
  expect(res.ok, `${name}: successes`).toBeLessThan(n);
}

describe("mutated text inputs: a clean success or the one-line located error", () => {
  it("iptables-save text (tcbox trace)", async () => {
    const n = 300;
    const res = await campaign("rules", n, (r, file) => {
      writeFileSync(file, mutateText(r, pick(r, RULES)));
      const json = r() < 0.5;
      return { file, json, args: ["trace", ...(json ? ["--json"] : []), "--rules", file, "--packet", pick(r, PACKETS)] };
    });
    expectClean("trace", res, n);
  });

  it("Kubernetes manifests (tcbox kube-proxy, tcbox topology)", async () => {
    const n = 250;
    const res = await campaign("manifests", n, (r, file) => {
      writeFileSync(file, mutateYaml(r, r() < 0.6 ? MANIFESTS[0]! : pick(r, MANIFESTS)));
      if (r() < 0.85) {
        const mode = pick(r, ["iptables", "ipvs", "nftables"]);
        return { file, json: true, args: ["kube-proxy", "--json", "--manifests", file, "--node-name", "node-a", "--node-ip", "192.168.1.10", "--cluster-cidr", "10.244.0.0/16", "--mode", mode] };
      }
      return { file, json: true, args: ["topology", "--json", "--gen", pick(r, ["1", "2", "3"]), "--cluster", file] };
    });
    expectClean("manifests", res, n);
  }, 30_000);

  it("topology scripts (tcbox ip)", async () => {
    const n = 300;
    const res = await campaign("topo", n, (r, file) => {
      writeFileSync(file, mutateText(r, TOPO));
      return { file, json: true, args: ["ip", "-t", file, pick(r, ["addr", "link", "route", "rule", "neigh", "fdb"]), "-d", "--json"] };
    });
    expectClean("ip", res, n);
  });

  it("CNI network config and state file (tcbox cni)", async () => {
    const saved = { ...process.env };
    try {
      const n = 300;
      const res = await campaign(
        "cni",
        n,
        (r, file) => {
          const conf = pick(r, CNI_CONFS);
          Object.assign(process.env, CNI_ENV, { CNI_COMMAND: pick(r, ["ADD", "ADD", "DEL", "CHECK"]) });
          writeFileSync(file, r() < 0.15 ? conf : mutateJson(r, conf));
          if (r() < 0.25) {
            // A state file that replays one ADD, mutated: errors then name the state file.
            const state = `${file}.state`;
            const earlier = { ...CNI_ENV, CNI_CONTAINERID: "pod-b", CNI_NETNS: "/var/run/netns/pod-b" };
            writeFileSync(state, mutateJson(r, JSON.stringify({ kind: "tcbox-cni-state", version: 1, seed: 1, host: "node", journal: [{ env: earlier, stdin: conf }] })));
            return { file: dir, json: false, args: ["cni", "--config", file, "--state", state] };
          }
          return { file, json: false, args: ["cni", "--config", file] };
        },
        true,
      );
      expectClean("cni", res, n);
    } finally {
      for (const k of Object.keys(CNI_ENV)) delete process.env[k];
      Object.assign(process.env, saved);
    }
  });
});

// Loading a program costs a few hundred milliseconds, so the seed fuzz loads lb4 once and applies each mutated
// seed as `--maps` does (applySeed), reporting errors through the CLI's formatter; hostile.test.ts runs the
// same errors through `tcbox run --maps`.
describe("mutated --maps seeds: applied, or the one-line located error", () => {
  let obj: BpfObject;
  beforeAll(async () => {
    obj = await new BpfKernel().load("programs/lb4.ts");
  }, 60_000);

  it("examples/lb4-maps.json mutated", () => {
    const seed = seedText("examples/lb4-maps.json");
    const failures: string[] = [];
    let ok = 0;
    const n = 300;
    for (let i = 0; i < n; i++) {
      const r = rng(0x5eed * 1000 + i);
      const text = mutateJson(r, seed);
      const file = `maps-${i}.json`;
      for (const m of obj.maps.values()) if (!isArrayType(m.spec.type)) for (const [k] of [...m.entries()]) m.delete(k);
      let line = "";
      try {
        applySeed(obj, JSON.parse(text), file);
        ok++;
      } catch (e) {
        if (e instanceof SyntaxError) continue; // not JSON: loadWithSeed's own message, before applySeed
        line = formatError(e);
      }
      if (line === "") continue;
      if (line.includes("\n") || !line.startsWith(`tcbox: ${file}`) || LEAK.test(line)) failures.push(`case ${i}: ${JSON.stringify(line.slice(0, 300))}`);
    }
    expect(failures).toEqual([]);
    expect(ok).toBeGreaterThan(0);
    expect(ok).toBeLessThan(n);
  });
});
