import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { main } from "../../src/cli/main.js";
import { samplePackets } from "../../src/cli/pcap.js";
import { readCapture } from "../../src/packet/pcapng.js";
import type { PacketJson } from "../../src/packet/format.js";

const dir = mkdtempSync(join(tmpdir(), "tcbox-pcap-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let out = "";
let err = "";
beforeEach(() => {
  out = "";
  err = "";
  vi.spyOn(process.stdout, "write").mockImplementation((s: string | Uint8Array) => ((out += String(s)), true));
  vi.spyOn(process.stderr, "write").mockImplementation((s: string | Uint8Array) => ((err += String(s)), true));
});
afterEach(() => vi.restoreAllMocks());

async function run(...argv: string[]): Promise<number> {
  return main(argv);
}

describe("tcbox pcap write-sample / inspect", () => {
  const ng = join(dir, "sample.pcapng");
  const classic = join(dir, "sample.pcap");
  const n = samplePackets().length;

  it("writes the sample pcapng on two interfaces", async () => {
    expect(await run("pcap", "write-sample", ng)).toBe(0);
    expect(out).toMatch(/^wrote .*sample\.pcapng: \d+ packets \(pcapng, interfaces node-1\/eth0, node-2\/eth0\)\n$/);
    const cap = readCapture(readFileSync(ng), ng);
    expect(cap.interfaces.map((i) => i.name)).toEqual(["node-1/eth0", "node-2/eth0"]);
    expect(cap.records).toHaveLength(n);
    expect(new Set(cap.records.map((r) => r.ifName))).toEqual(new Set(["node-1/eth0", "node-2/eth0"]));
  });

  it("inspect prints one line per packet with interface names (VXLAN adds its inner line)", async () => {
    expect(await run("pcap", "inspect", ng)).toBe(0);
    const lines = out.trimEnd().split("\n");
    const vxlan = lines.filter((l) => l.includes("VXLAN, flags [I] (0x08), vni 1")).length;
    expect(vxlan).toBe(2);
    expect(lines).toHaveLength(n + vxlan);
    expect(lines[0]).toBe(
      "22:13:20.000000 node-1/eth0 Out 02:42:c0:a8:01:01 > ff:ff:ff:ff:ff:ff, ethertype ARP (0x0806), length 42: Request who-has 192.168.1.2 tell 192.168.1.1, length 28",
    );
    expect(lines.some((l) => /node-2\/eth0 In .*Flags \[S\], seq 1000000, win 64240/.test(l))).toBe(true);
    expect(lines.some((l) => l.includes("4660+ A? kubernetes.default.svc.cluster.local. (54)"))).toBe(true);
    expect(lines.some((l) => l.includes("4660 1/0/0 A 10.96.0.1 (70)"))).toBe(true);
    expect(err).toBe("");
  });

  it("inspect --json prints an array with the documented fields", async () => {
    expect(await run("pcap", "inspect", ng, "--json")).toBe(0);
    const arr = JSON.parse(out) as PacketJson[];
    expect(arr).toHaveLength(n);
    expect(arr.map((p) => p.index)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
    const first = arr[0]!;
    expect(first).toMatchObject({ index: 1, time: "2023-11-14T22:13:20.000000000Z", tsNs: "1700000000000000000", ifIndex: 0, interface: "node-1/eth0", direction: "outbound", length: 42, capturedLength: 42 });
    expect(first.layers).toMatchObject({ arp: { op: 1, spa: "192.168.1.1", tpa: "192.168.1.2" } });
    const vx = arr.find((p) => (p.layers as { vxlan?: unknown }).vxlan)!;
    expect(vx.layers).toMatchObject({ udp: { dport: 4789 }, vxlan: { vni: 1, inner: { ipv4: { src: "10.244.1.2", dst: "10.244.2.3" }, tcp: { dport: 8080, flags: 2 } } } });
    expect(arr.every((p) => p.error === undefined)).toBe(true);
  });

  it("classic pcap: no interface names", async () => {
    expect(await run("pcap", "write-sample", classic, "--pcap", "--json")).toBe(0);
    expect(JSON.parse(out)).toMatchObject({ format: "pcap", packets: n, interfaces: [] });
    out = "";
    expect(await run("pcap", "inspect", classic)).toBe(0);
    expect(out.split("\n")[0]).toMatch(/^22:13:20\.000000 02:42:c0:a8:01:01 > ff:ff:ff:ff:ff:ff, ethertype ARP/);
  });

  it("--nano prints nanosecond times", async () => {
    expect(await run("pcap", "inspect", ng, "--nano")).toBe(0);
    expect(out).toMatch(/^22:13:20\.000000000 node-1\/eth0/);
  });
});

describe("tcbox pcap inspect: bad captures", () => {
  const sample = () => readFileSync(join(dir, "sample.pcapng"));
  /** The sample cut 20 bytes into its third Enhanced Packet Block. */
  const cutInThirdPacket = () => {
    const b = sample();
    let epbs = 0;
    for (let at = 0; at < b.length; at += b.readUInt32LE(at + 4)) {
      if (b.readUInt32LE(at) === 6 && ++epbs === 3) return b.subarray(0, at + 20);
    }
    throw new Error("sample has fewer than 3 packets");
  };
  const cases: { name: string; bytes: () => Uint8Array; msg: RegExp }[] = [
    { name: "truncated in packet 3", bytes: cutInThirdPacket, msg: /^tcbox: .*bad\.pcapng: packet 3: truncated block at byte \d+/ },
    { name: "not a capture", bytes: () => new TextEncoder().encode("hello world\n"), msg: /^tcbox: .*bad\.pcapng: byte 0: bad magic/ },
    {
      name: "non-Ethernet classic pcap",
      bytes: () => Uint8Array.from([0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 113, 0, 0, 0]),
      msg: /^tcbox: .*bad\.pcapng: byte 20: unsupported link type 113 \(LINKTYPE_LINUX_SLL\)/,
    },
  ];
  for (const c of cases) {
    for (const json of [false, true]) {
      it(`${c.name}${json ? " (--json)" : ""}: one error line, nothing on stdout, exit 1`, async () => {
        const f = join(dir, "bad.pcapng");
        writeFileSync(f, c.bytes());
        expect(await run("pcap", "inspect", f, ...(json ? ["--json"] : []))).toBe(1);
        expect(out).toBe("");
        expect(err).toMatch(c.msg);
        expect(err.trimEnd().split("\n")).toHaveLength(1);
      });
    }
  }

  it("a missing file", async () => {
    expect(await run("pcap", "inspect", join(dir, "nope.pcap"))).toBe(1);
    expect(err).toMatch(/^tcbox: .*nope\.pcap: cannot read: ENOENT/);
  });
});
