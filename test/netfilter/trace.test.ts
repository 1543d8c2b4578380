// `tcbox trace` on a kube-proxy ruleset the kernel printed (fixtures/iptables/kube-proxy.save): flows in,
// endpoints, masquerade and probabilities out, as kube-proxy's own TestTracePacket-style tests state them.
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it, vi } from "vitest";
import { main } from "../../src/cli/main.js";

const RULES = fileURLToPath(new URL("../fixtures/iptables/kube-proxy.save", import.meta.url));

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

afterEach(() => vi.restoreAllMocks());

interface Outcome {
  probability: number;
  verdict: string;
  dnat: string | null;
  snat: string | null;
  masquerade: boolean;
  mark: string;
  rules: string[];
}

async function trace(packet: string): Promise<Outcome[]> {
  const r = await run(["trace", "--rules", RULES, "--packet", packet, "--local-ip", "192.168.0.2", "--json"]);
  expect(r.err).toBe("");
  expect(r.code).toBe(0);
  return (JSON.parse(r.out) as { outcomes: Outcome[] }).outcomes;
}

describe("tcbox trace on kube-proxy rules", () => {
  const flows: Array<[string, string, Array<[number, string, string | null, boolean]>]> = [
    ["pod to cluster IP, two endpoints", "tcp 10.0.0.2:40000 -> 172.30.0.41:80", [[0.5, "ACCEPT", "10.180.0.1:80", false], [0.5, "ACCEPT", "10.180.2.1:80", false]]],
    ["hairpin: endpoint to its own service masquerades on its own branch", "tcp 10.180.0.1:40000 -> 172.30.0.41:80", [[0.5, "ACCEPT", "10.180.0.1:80", true], [0.5, "ACCEPT", "10.180.2.1:80", false]]],
    ["external client to cluster IP is masqueraded", "tcp 1.2.3.4:40000 -> 172.30.0.42:80", [[1, "ACCEPT", "10.180.0.2:80", true]]],
    ["external client to NodePort", "tcp 1.2.3.4:40000 -> 192.168.0.2:3001", [[1, "ACCEPT", "10.180.0.2:80", true]]],
    ["node itself to cluster IP (OUTPUT path)", "tcp 192.168.0.2:40000 -> 172.30.0.43:80", [[0.5, "ACCEPT", "10.180.0.3:80", true], [0.5, "ACCEPT", "10.180.1.3:80", true]]],
    ["service without endpoints is rejected", "tcp 10.0.0.2:40000 -> 172.30.0.44:80", [[1, "REJECT", null, false]]],
    ["load balancer firewall drops", "tcp 10.0.0.2:40000 -> 5.6.7.8:80", [[1, "DROP", null, false]]],
    ["unrelated traffic passes untouched", "udp 10.0.0.2:5353 -> 10.0.0.3:53", [[1, "ACCEPT", null, false]]],
  ];
  it.each(flows)("%s", async (_name, packet, expected) => {
    const outcomes = await trace(packet);
    const got = outcomes.map((o) => [o.probability, o.verdict, o.dnat, o.masquerade]).sort((a, b) => String(a[2]).localeCompare(String(b[2])));
    expect(got).toEqual(expected);
    expect(outcomes.reduce((s, o) => s + o.probability, 0)).toBeCloseTo(1, 12);
    for (const o of outcomes) expect(o.snat).toBeNull();
  });

  it("lists the rules hit as TABLE CHAIN N, starting at nat PREROUTING", async () => {
    const [first] = await trace("tcp 1.2.3.4:40000 -> 192.168.0.2:3001");
    expect(first!.rules.slice(0, 4)).toEqual(["nat PREROUTING 1", "nat KUBE-SERVICES 4", "nat KUBE-NODEPORTS 1", "nat KUBE-EXT-GNZBNJ2PO5MGZ6GT 1"]);
    expect(first!.rules.at(-1)).toBe("nat KUBE-POSTROUTING 3");
  });

  it("prints xtables-monitor style TRACE lines without --json", async () => {
    const r = await run(["trace", "--rules", RULES, "--packet", "tcp 10.0.0.2:40000 -> 172.30.0.44:80"]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^outcome 1\/1: probability 1 {2}verdict REJECT/);
    expect(r.out).toContain("TRACE: nat:PREROUTING:rule:0x1:JUMP:KUBE-SERVICES  -4 -t nat -A PREROUTING");
    expect(r.out).toContain("TRACE: filter:KUBE-SERVICES:rule:0x1:REJECT");
  });

  it("reports a bad rules file with its line", async () => {
    const r = await run(["trace", "--rules", fileURLToPath(new URL("../fixtures/iptables/docker.in", import.meta.url)).replace("docker.in", "nope.txt"), "--packet", "tcp 1.1.1.1:1 -> 2.2.2.2:2"]);
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(/^tcbox: .*nope\.txt: /);
  });

  it("reports a malformed --packet", async () => {
    const r = await run(["trace", "--rules", RULES, "--packet", "tcp 1.1.1.1 2.2.2.2"]);
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(/^tcbox: --packet: expected/);
  });
});
