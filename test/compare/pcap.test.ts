// compare --pcap: one pcapng per generation, read back by tshark (skipped with a message when tshark is missing):
// every file opens, has frames, no bad IPv4/TCP/UDP checksum, VXLAN decoded in Gen 1 only, interfaces named
// node/ifname (pods NS/POD/eth0), strictly increasing timestamps, and the DNATed Service flow seen with the
// ClusterIP on the client's interface and with the backend's address and target port on the backend's.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { loadDemoCluster } from "../../src/k8s/demo-cluster.js";
import { compare, type CompareJson, type WorkloadEntry } from "../../src/compare/run.js";
import { runCli } from "../cli/run.js";

const hasTshark = spawnSync("tshark", ["-v"], { encoding: "utf8" }).status === 0;
if (!hasTshark) console.warn("test/compare/pcap.test.ts: tshark not found, the pcapng checks are skipped (apt-get install tshark)");

const GENS = [1, 2, 3, 4] as const;
const dir = mkdtempSync(join(tmpdir(), "tcbox-pcap-"));
const cluster = loadDemoCluster();
// Cross-node TCP to a Service with a named targetPort, UDP DNS through CoreDNS, and the internet.
const wl: WorkloadEntry[] = [
  { from: "shop/frontend-65486dc66b-cvrq6", to: "service/shop/backend:8080", protocol: "TCP", count: 2 },
  { from: "shop/db-0", to: "service/kube-system/kube-dns:53", protocol: "UDP", count: 1 },
  { from: "shop/db-0", to: "8.8.8.8:53", protocol: "UDP", count: 1 },
];
let r: CompareJson;

function tshark(gen: number, ...args: string[]): string {
  const p = spawnSync("tshark", ["-r", join(dir, `gen${gen}.pcapng`), ...args], { encoding: "utf8", maxBuffer: 64 << 20 });
  expect(p.status, `tshark ${args.join(" ")}: ${p.stderr}`).toBe(0);
  return p.stdout;
}
const rows = (s: string) => s.split("\n").filter((l) => l !== "").map((l) => l.split("\t"));
const CHECK = ["-o", "ip.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE"];
const FIELDS = ["frame.interface_name", "frame.time_epoch", "ip.src", "ip.dst", "tcp.srcport", "tcp.dstport", "udp.dstport", "vxlan.vni", "ip.checksum.status", "tcp.checksum.status", "udp.checksum.status"] as const;
type Frame = Record<(typeof FIELDS)[number], string>;
/** Every frame of a generation's file, one tshark run with the checksum checks on. */
const frames: Record<number, Frame[]> = {};

beforeAll(async () => {
  if (!hasTshark) return;
  r = await compare(cluster, wl, [...GENS], 1, { pcapDir: dir });
  for (const g of GENS) {
    frames[g] = rows(tshark(g, ...CHECK, "-T", "fields", ...FIELDS.flatMap((f) => ["-e", f]))).map((x) => Object.fromEntries(FIELDS.map((f, i) => [f, x[i] ?? ""])) as Frame);
  }
}, 600_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.skipIf(!hasTshark)("compare --pcap (tshark)", () => {
  it("every generation's file opens with frames on interfaces named node/ifname or NS/POD/ifname", () => {
    for (const g of GENS) {
      const names = frames[g]!.map((x) => x["frame.interface_name"]);
      expect(names.length, `gen${g}`).toBeGreaterThan(0);
      expect(names).toContain("node-1/eth0");
      expect(names).toContain("shop/db-0/eth0");
      expect(names).toContain("internet/eth0");
      for (const n of names) expect(n).toMatch(/^[^/]+(\/[^/]+)?\/[^/]+$/);
    }
  });

  it("no bad checksum, nothing malformed (and the checks did run: good ones are counted)", () => {
    for (const g of GENS) {
      // Wireshark's checksum.status: 0 Bad, 1 Good, 2 Unverified (tshark -G values).
      expect(tshark(g, ...CHECK, "-Y", "ip.checksum.status==0 || tcp.checksum.status==0 || udp.checksum.status==0 || icmp.checksum.status==0 || _ws.malformed"), `gen${g}`).toBe("");
      const ip = frames[g]!.filter((x) => x["ip.src"] !== "");
      expect(ip.length).toBeGreaterThan(0);
      // Every IPv4 header (outer and inner) and every TCP/UDP checksum verified good.
      for (const x of ip) {
        for (const k of ["ip.checksum.status", "tcp.checksum.status", "udp.checksum.status"] as const) {
          for (const v of x[k].split(",")) if (v !== "") expect(v, `gen${g} ${k} ${JSON.stringify(x)}`).toBe("1");
        }
      }
      expect(ip.some((x) => x["tcp.checksum.status"] === "1")).toBe(true);
      expect(ip.some((x) => x["udp.checksum.status"] === "1")).toBe(true);
    }
  });

  it("VXLAN (UDP 4789) decoded with the pods' inner packets in Gen 1, none in Gen 2-4", () => {
    const inner = frames[1]!.filter((x) => x["vxlan.vni"] !== "");
    expect(inner.length).toBeGreaterThan(0);
    const pods = Object.values(r.addresses["1"]!.pods);
    const nodes = Object.values(r.addresses["1"]!.nodes);
    for (const x of inner) {
      expect(x["vxlan.vni"]).toBe("1");
      expect(x["udp.dstport"].split(",")[0]).toBe("4789");
      const [outer, inn] = x["ip.src"].split(",");
      expect(nodes).toContain(outer);
      expect([...pods, ...nodes]).toContain(inn);
    }
    for (const g of [2, 3, 4]) expect(frames[g]!.filter((x) => x["vxlan.vni"] !== "" || x["udp.dstport"] === "4789"), `gen${g}`).toEqual([]);
  });

  it("timestamps strictly increase", () => {
    for (const g of GENS) {
      const ts = frames[g]!.map((x) => BigInt(x["frame.time_epoch"].replace(".", "")));
      for (let i = 1; i < ts.length; i++) expect(ts[i]! > ts[i - 1]!, `gen${g} frame ${i + 1}`).toBe(true);
    }
  });

  it("the Service flow: ClusterIP on the client's interface, the backend's address and target port on the backend's", () => {
    const svc = cluster.services.find((s) => s.metadata.name === "backend")!;
    for (const g of GENS) {
      for (const f of r.flows.filter((x) => x.spec === 0)) {
        const x = f.results[String(g)]!;
        expect(x.delivered, `gen${g}`).toBe(true);
        const sport = x.src_seen!.split(":")[1]!;
        const [ip, port] = x.dst!.split(":");
        const at = (ifname: string) => frames[g]!.filter((y) => y["frame.interface_name"] === ifname && (y["tcp.srcport"] === sport || y["tcp.dstport"] === sport));
        const podIp = r.addresses[String(g)]!.pods[f.from];
        const client = at(`${f.from}/eth0`);
        expect(client.some((y) => y["ip.src"] === podIp && y["ip.dst"] === svc.clusterIP && y["tcp.dstport"] === "8080"), `gen${g} client: ${JSON.stringify(client)}`).toBe(true);
        expect(client.some((y) => y["ip.src"] === svc.clusterIP && y["tcp.srcport"] === "8080" && y["ip.dst"] === podIp), `gen${g}: the reply un-NATed at the client`).toBe(true);
        const backend = at(`${x.dst_pod}/eth0`);
        expect(backend.length, `gen${g} backend ${x.dst_pod}`).toBeGreaterThan(0);
        expect(backend.some((y) => y["ip.src"] === podIp && y["ip.dst"] === ip && y["tcp.dstport"] === port)).toBe(true);
        expect(backend.some((y) => y["ip.dst"] === svc.clusterIP || y["ip.src"] === svc.clusterIP), `gen${g}: the ClusterIP never reaches the backend`).toBe(false);
        expect(backend.some((y) => y["ip.src"] === ip && y["tcp.srcport"] === port && y["ip.dst"] === podIp), `gen${g}: the backend answers from its own address`).toBe(true);
      }
    }
  });
});

describe("tcbox compare --pcap", () => {
  const cli = runCli;

  it("creates DIR and writes one file per generation asked for", async () => {
    const wl = join(dir, "wl.yaml");
    writeFileSync(wl, "flows:\n  - {from: shop/db-0, to: service/kube-system/kube-dns:53, protocol: UDP}\n");
    const out = join(dir, "cli", "caps");
    const r = await cli(["compare", "--workload", wl, "--gens", "2", "--pcap", out]);
    expect(r.code, r.err).toBe(0);
    expect(readdirSync(out)).toEqual(["gen2.pcapng"]);
    expect(statSync(join(out, "gen2.pcapng")).size).toBeGreaterThan(1000);
  }, 600_000);

  it("a directory that cannot be made is a located error, before anything runs", async () => {
    const file = join(dir, "not-a-dir");
    writeFileSync(file, "x");
    const r = await cli(["compare", "--gens", "1", "--pcap", join(file, "caps")]);
    expect(r.code).not.toBe(0);
    expect(r.err).toContain(`tcbox: --pcap ${join(file, "caps")}: cannot create the capture directory`);
    expect(existsSync(join(file, "caps", "gen1.pcapng"))).toBe(false);
  });
});
