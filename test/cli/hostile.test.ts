// Malformed manifests, rule dumps, captures and programs through the commands, in-process: each gives one line
// `tcbox: WHERE: message` naming the file (and line/document/packet where the layer knows it), a non-zero exit,
// and nothing on stdout (so `--json` consumers never parse half a document).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { main } from "../../src/cli/main.js";
import { customText, withCustomText } from "./wasm-sections.js";

const dir = mkdtempSync(join(tmpdir(), "tcbox-hostile-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, data: string | Uint8Array) => {
  const p = join(dir, name);
  writeFileSync(p, data);
  return p;
};

// A classic pcap header (Ethernet) followed by a record that claims more bytes than the file has.
function truncatedPcap(): Uint8Array {
  const b = new Uint8Array(24 + 16 + 10);
  const v = new DataView(b.buffer);
  v.setUint32(0, 0xa1b2c3d4, true);
  v.setUint16(4, 2, true);
  v.setUint16(6, 4, true);
  v.setUint32(16, 65535, true);
  v.setUint32(20, 1, true);
  v.setUint32(24 + 8, 60, true);
  v.setUint32(24 + 12, 60, true);
  return b;
}

// A little-endian pcapng: SHB, IDB (Ethernet, default microsecond resolution), one EPB of a 60-byte frame whose
// timestamp is `ts` units.
function pcapngWithTimestamp(ts: bigint): Uint8Array {
  const b = new Uint8Array(28 + 20 + 92);
  const v = new DataView(b.buffer);
  const block = (at: number, type: number, total: number) => {
    v.setUint32(at, type, true);
    v.setUint32(at + 4, total, true);
    v.setUint32(at + total - 4, total, true);
  };
  block(0, 0x0a0d0d0a, 28);
  v.setUint32(8, 0x1a2b3c4d, true);
  v.setUint16(12, 1, true);
  v.setBigInt64(16, -1n, true);
  block(28, 1, 20);
  v.setUint16(36, 1, true);
  block(48, 6, 92);
  v.setUint32(60, Number(ts >> 32n), true);
  v.setUint32(64, Number(ts & 0xffffffffn), true);
  v.setUint32(68, 60, true);
  v.setUint32(72, 60, true);
  return b;
}

// (module (func (export "cls_main") (param i32) (result i32) i32.const 0)): no memory.
const NO_MEMORY_WASM = Uint8Array.from([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version
  0x01, 0x06, 0x01, 0x60, 0x01, 0x7f, 0x01, 0x7f, // type section: (i32) -> i32
  0x03, 0x02, 0x01, 0x00, // function section: one function of type 0
  0x07, 0x0c, 0x01, 0x08, ...[..."cls_main"].map((c) => c.charCodeAt(0)), 0x00, 0x00, // export "cls_main" func 0
  0x0a, 0x06, 0x01, 0x04, 0x00, 0x41, 0x00, 0x0b, // code: no locals, i32.const 0, end
]);

async function run(args: string[]) {
  let out = "";
  let err = "";
  const o = vi.spyOn(process.stdout, "write").mockImplementation((s: string | Uint8Array) => ((out += String(s)), true));
  const e = vi.spyOn(process.stderr, "write").mockImplementation((s: string | Uint8Array) => ((err += String(s)), true));
  try {
    const code = await main(args);
    return { code, out, err };
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}

const RULE = "tcp 10.0.0.2:40000 -> 172.30.0.41:80";

describe("hostile input through every command: one-line located error, non-zero exit, empty stdout", () => {
  const cases: [string, () => string[], RegExp][] = [
    ["manifests: YAML syntax", () => ["topology", "--gen", "1", "--json", "--cluster", file("bad-syntax.yaml", "kind: Pod\nmetadata: [unclosed\n")], /bad-syntax\.yaml/],
    ["manifests: wrong field type", () => ["topology", "--gen", "2", "--json", "--cluster", file("bad-port.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: default}\nspec:\n  ports: [{port: eighty}]\n")], /bad-port\.yaml: document 1/],
    ["manifests: not Kubernetes at all", () => ["topology", "--gen", "3", "--json", "--cluster", file("binary.yaml", "\u0000\u0001\u0002garbage")], /binary\.yaml/],
    ["manifests: nesting deeper than the parser's stack", () => ["topology", "--gen", "1", "--json", "--cluster", file("deep.yaml", `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: ${"[".repeat(3000)}${"]".repeat(3000)}\n`)], /deep\.yaml:4: document 1: collections nested too deeply for the YAML parser$/],
    ["manifests: an alias bomb", () => ["kube-proxy", "--node-name", "a", "--node-ip", "10.0.0.1", "--cluster-cidr", "10.244.0.0/16", "--manifests", file("bomb.yaml", `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata:\n  a: &a [x, x, x, x, x, x, x, x, x]\n${["b", "c", "d", "e", "f", "g"].map((k, i) => `  ${k}: &${k} [${Array(9).fill(`*${"abcdefg"[i]}`).join(", ")}]`).join("\n")}\n`)], /bomb\.yaml: document 1: Excessive alias count/],
    ["manifests: an alias with no anchor", () => ["topology", "--gen", "2", "--cluster", file("alias.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: *nowhere}\n")], /alias\.yaml: document 1: Unresolved alias .*: nowhere$/],
    ["manifests: a collection as a mapping key (was a process warning on stderr, exit 0)", () => ["topology", "--gen", "1", "--json", "--cluster", file("ckey.yaml", "apiVersion: v1\nkind: Namespace\nmetadata:\n  ? [a, b]\n  : x\n  name: n\n")], /ckey\.yaml:4: document 1: a mapping key must be a string, not a collection$/],
    ["compare workload: a collection as a mapping key (was two lines of process warning after the error)", () => ["compare", "--gens", "1", "--json", "--workload", file("wl.yaml", 'flows:\n  - from: shop/frontend-0\n    to: "10.96.0.10:53"\n    ? [x]\n    : y\n')], /wl\.yaml:4: not YAML: a mapping key must be a string, not a collection$/],
    ["rule dump: unknown match on line 3", () => ["trace", "--json", "--rules", file("bad.rules", "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -m nosuchmatch --foo -j ACCEPT\nCOMMIT\n"), "--packet", RULE], /bad\.rules:3/],
    ["rule dump: missing COMMIT", () => ["trace", "--json", "--rules", file("nocommit.rules", "*nat\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -j DNAT --to-destination 10.0.0.1\n"), "--packet", RULE], /nocommit\.rules/],
    ["capture: garbage bytes", () => ["pcap", "inspect", "--json", file("garbage.pcap", "this is not a capture")], /garbage\.pcap/],
    ["capture: truncated record", () => ["pcap", "inspect", "--json", file("trunc.pcap", truncatedPcap())], /trunc\.pcap: packet 1/],
    ["capture into conntrack: truncated record", () => ["conntrack", "--json", "--pcap", file("trunc2.pcap", truncatedPcap())], /trunc2\.pcap/],
    ["program: syntax error", () => ["build", file("bad.ts", "export function cls_main(skb: i32): i32 { return ; ;; }} \n")], /bad\.ts/],
    ["program: not a program for run", () => ["run", "--json", "--program", file("bad2.ts", "export const x = ;"), "--pcap", "examples/lb4.pcap"], /bad2\.ts/],
    ["maps seed: null where a field's value goes", () => ["run", "--json", "--program", "programs/lb4.ts", "--pcap", "examples/lb4.pcap", "--maps", file("null-field.json", '{"cilium_lb4_backends_v3":[{"key":1,"value":{"address":null,"port":80}}]}')], /null-field\.json: cilium_lb4_backends_v3\[0\]: value\.address: want a number or string, got null$/],
    ["maps seed: null key", () => ["run", "--json", "--program", "programs/lb4.ts", "--pcap", "examples/lb4.pcap", "--maps", file("null-key.json", '{"cilium_lb4_reverse_nat":[{"key":null,"value":{"port":80}}]}')], /null-key\.json: cilium_lb4_reverse_nat\[0\]: key: want an object .*got null$/],
    ["maps seed: an address number past 32 bits (was wrapped silently)", () => ["run", "--json", "--program", "programs/lb4.ts", "--pcap", "examples/lb4.pcap", "--maps", file("wide-addr.json", '{"cilium_lb4_backends_v3":[{"key":1,"value":{"address":4294967296,"port":80}}]}')], /wide-addr\.json: cilium_lb4_backends_v3\[0\]: value\.address: 4294967296 is not an IPv4 address/],
    // A module without the kernel's memory (tcbox's compiler gives asc's output the import back; this one is bare).
    ["program: a .wasm that imports no memory", () => ["run", "--json", "--program", file("nomem.wasm", NO_MEMORY_WASM), "--pcap", "examples/lb4.pcap"], /^tcbox: program nomem\.wasm: program imports no memory \(env\.memory\)/],
    ["scenario: unknown name", () => ["scenario", "run", "nope", "--json"], /scenario run: unknown scenario "nope"/],
    ["scenario: bad --gens", () => ["scenario", "run", "ndots", "--gens", "1,7", "--json"], /--gens: invalid generation "7"/],
  ];
  it.each(cases)("%s", async (_n, args, where) => {
    const r = await run(args());
    expect(r.code).not.toBe(0);
    expect(r.out).toBe("");
    const lines = r.err.trimEnd().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^tcbox: /);
    expect(lines[0]).toMatch(where);
  }, 60_000);
});

// `tcbox cni` is the one command whose error also goes to stdout: the spec's error object, for the runtime.
describe("hostile CNI input: one-line located error, exit 1, the spec's error object on stdout", () => {
  const BRIDGE = { cniVersion: "1.0.0", name: "cbr0", type: "bridge", ipam: { type: "host-local", subnet: "10.244.3.0/24" } };
  const conf = (name: string, patch: Record<string, unknown>) => file(name, JSON.stringify({ ...BRIDGE, ...patch }));
  const cases: [string, () => string[], RegExp][] = [
    ["config: type names an Object.prototype member", () => ["cni", "--config", conf("ctor.conf", { type: "constructor" })], /ctor\.conf: type: CNI error 7: failed to find plugin "constructor"/],
    ["config: ipam of the wrong JSON type", () => ["cni", "--config", conf("ipam-str.conf", { ipam: "host-local" })], /ipam-str\.conf: ipam: CNI error 6: failed to load netconf: json: cannot unmarshal string into Go struct field ipam of type struct$/],
    ["config: a route without dst", () => ["cni", "--config", conf("route.conf", { ipam: { ...BRIDGE.ipam, routes: [{ gw: "10.244.3.1" }] } })], /route\.conf: ipam\.routes\[0\]: CNI error 7: route without dst$/],
    ["config: two range sets over the same addresses (was one address assigned twice)", () => ["cni", "--config", conf("overlap.conf", { ipam: { type: "host-local", ranges: [[{ subnet: "10.244.3.0/24" }], [{ subnet: "10.244.3.0/25" }]] } })], /overlap\.conf: ipam\.ranges\[1\]: CNI error 7: range set 0 overlaps with 1$/],
    ["config: an aws-cni subnet too small for the ENIs (named 'subnet', not the file)", () => ["cni", "--config", conf("aws-sub.conf", { name: "aws-cni", type: "aws-cni", ipam: undefined, instanceType: "m5.large", nodeIP: "192.168.1.10", subnet: "10.0.0.1" })], /aws-sub\.conf: subnet: CNI error 999: subnet 10\.0\.0\.1 has no free addresses/],
    ["config: a bridge name that is more than a name", () => ["cni", "--config", conf("brname.conf", { bridge: "cni0 type vxlan id 5" })], /brname\.conf: bridge: CNI error 7: invalid interface name "cni0 type vxlan id 5"$/],
    ["config: an MTU of the wrong type", () => ["cni", "--config", conf("mtu.conf", { mtu: "1500 up" })], /mtu\.conf: mtu: CNI error 6: .*cannot unmarshal string into Go struct field mtu of type int$/],
    ["state file: a journal entry that is not an invocation", () => ["cni", "--config", conf("ok.conf", {}), "--state", file("state-null.json", '{"kind":"tcbox-cni-state","version":1,"seed":1,"host":"node","journal":[null]}')], /state-null\.json: journal\[0\]: want/],
  ];
  it.each(cases)("%s", async (_n, args, where) => {
    vi.stubEnv("CNI_COMMAND", "ADD");
    vi.stubEnv("CNI_CONTAINERID", "pod-a");
    vi.stubEnv("CNI_NETNS", "/var/run/netns/pod-a");
    vi.stubEnv("CNI_IFNAME", "eth0");
    vi.stubEnv("CNI_PATH", "/opt/cni/bin");
    try {
      const r = await run(args());
      expect(r.code).not.toBe(0);
      if (r.out !== "") expect(JSON.parse(r.out)).toMatchObject({ cniVersion: "1.0.0", code: expect.any(Number), msg: expect.any(String) });
      const lines = r.err.trimEnd().split("\n");
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/^tcbox: /);
      expect(lines[0]).toMatch(where);
    } finally {
      vi.unstubAllEnvs();
    }
  });
});
describe("valid but extreme captures are read, not crashed on", () => {
  it("an EPB timestamp of all ones (year 586524) prints as an expanded ISO year", async () => {
    const r = await run(["pcap", "inspect", "--json", file("far-future.pcapng", pcapngWithTimestamp(0xffff_ffff_ffff_ffffn))]);
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)[0].time).toBe("+586524-01-19T08:01:49.551615000Z");
  });
});

// pass.wasm with its struct layouts (the tcbox.btf section) changed by `edit`: PassCount is layout 1, {packets: u64 @0,
// bytes: u64 @8}, 16 bytes, the value type of the map pass_stats.
const passWasm = join(dir, "pass.wasm");
let pass: Uint8Array;
beforeAll(async () => {
  expect((await run(["build", "programs/pass.ts", "-o", passWasm])).code).toBe(0);
  pass = readFileSync(passWasm);
}, 60_000);

describe("a program whose BTF section is corrupt is refused at load, naming the layout and field", () => {
  const corrupt = (name: string, edit: (layouts: { name: string; size: unknown; fields: Record<string, unknown>[] }[]) => void) => {
    const layouts = JSON.parse(customText(pass, "tcbox.btf")!);
    expect(layouts[0].name).toBe("PassCount");
    edit(layouts);
    return file(name, withCustomText(pass, "tcbox.btf", JSON.stringify(layouts)));
  };
  const cases: [string, () => string, RegExp][] = [
    ["a field past the end of its struct", () => corrupt("btf-offset.wasm", (l) => (l[0]!.fields[1]!.offset = 100)), /^tcbox: program btf-offset\.wasm: tcbox\.btf section: layout 1: PassCount: field 2 \(bytes\): offset 100 \+ size 8 runs past the struct's 16 bytes$/],
    ["a field type that is not a string", () => corrupt("btf-type.wasm", (l) => (l[0]!.fields[0]!.type = 7)), /^tcbox: program btf-type\.wasm: tcbox\.btf section: layout 1: PassCount: field 1 \(packets\): unknown type 7$/],
    ["fields missing", () => corrupt("btf-fields.wasm", (l) => delete (l[0] as { fields?: unknown }).fields), /^tcbox: program btf-fields\.wasm: tcbox\.btf section: layout 1: PassCount: fields is not an array$/],
    ["not JSON", () => file("btf-json.wasm", withCustomText(pass, "tcbox.btf", "[{")), /^tcbox: program btf-json\.wasm: tcbox\.btf section: not JSON \(.*\)$/],
    // Consistent in itself, but 32 bytes for a 16-byte value: a dump would read past each value.
    ["a struct bigger than the map's value", () => corrupt("btf-size.wasm", (l) => ((l[0]!.size = 32), (l[0]!.fields[1]!.offset = 24))), /^tcbox: program btf-size\.wasm: map pass_stats: value type PassCount is 32 bytes in the BTF, value_size is 16$/],
  ];
  it.each(cases)("%s", async (_n, make, want) => {
    const prog = make();
    for (const args of [["map", "dump", "pass_stats", "--program", prog], ["run", "--json", "--program", prog, "--pcap", "examples/lb4.pcap"]]) {
      const r = await run(args);
      expect(r.out).toBe("");
      expect(r.code).not.toBe(0);
      expect(r.err).toMatch(new RegExp(want.source.slice(0, -1) + "\n$"));
    }
  });
});

// The map name is an AssemblyScript string in the program's static data: UTF-16 after a u32 byte length.
describe("a program whose static data claims a 2 GiB string", () => {
  it("is cut at MAX_STRING_BYTES and refused by the name check, not read until the host runs out of memory", async () => {
    const name = Uint8Array.from([..."pass_stats"].flatMap((c) => [c.charCodeAt(0), 0]));
    const at = Buffer.from(pass).indexOf(name);
    expect(at).toBeGreaterThan(4);
    const bad = Uint8Array.from(pass);
    expect(new DataView(bad.buffer).getUint32(at - 4, true)).toBe(20);
    new DataView(bad.buffer).setUint32(at - 4, 0x80000014, true);
    const r = await run(["map", "dump", "pass_stats", "--program", file("long-name.wasm", bad)]);
    expect(r.out).toBe("");
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(/^tcbox: program long-name\.wasm: map "pass_stats.*\.\.\.": invalid name \(letters, digits, '_' and '\.', at most 64\)\n$/);
  });
});

describe("map update/delete: a key or value that is not what the map holds is refused, naming the map", () => {
  const cases: [string, string[], RegExp][] = [
    ["--key null", ["update", "pass_stats", "--key", "null", "value", ...Array(16).fill("00")], /^tcbox: map pass_stats: --key: want an object of \w+'s fields or a number or string, got null$/],
    ["--key as an array", ["delete", "pass_stats", "--key", "[1]"], /^tcbox: map pass_stats: --key: want an object of \w+'s fields or a number or string, got a list$/],
    ["a field given an object", ["update", "pass_stats", "key", "00", "00", "00", "00", "--value", '{"packets":{}}'], /^tcbox: map pass_stats: --value\.packets: want a number or string, got an object$/],
    ["an unknown field", ["update", "pass_stats", "key", "00", "00", "00", "00", "--value", '{"nope":1}'], /^tcbox: map pass_stats: --value: no field "nope" in PassCount \(fields: packets, bytes\)$/],
    ["a key one byte short", ["update", "pass_stats", "key", "00", "00", "00", "value", ...Array(16).fill("00")], /^tcbox: map pass_stats: key: want 4 bytes, got 3$/],
    ["a value byte that is not hex", ["update", "pass_stats", "key", "00", "00", "00", "00", "value", "0x0x1", ...Array(15).fill("00")], /^tcbox: map pass_stats: value: "0x0x1" is not a hex byte$/],
  ];
  it.each(cases)("%s", async (_n, args, want) => {
    const r = await run(["map", ...args, "--program", passWasm]);
    expect(r.out).toBe("");
    expect(r.code).not.toBe(0);
    expect(r.err.trimEnd()).toMatch(want);
    expect(r.err.endsWith("\n") && r.err.indexOf("\n") === r.err.length - 1).toBe(true);
  });
});
