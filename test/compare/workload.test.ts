// The compare workload file: defaults (packets 1, count 1, TCP), every destination form, and each bad value as an
// error naming the file, the entry and the field.
import { describe, expect, it } from "vitest";
import { parseDestination, parseWorkload, WorkloadError } from "../../src/compare/workload.js";

const F = "wl.yaml";

function err(text: string): WorkloadError {
  try {
    parseWorkload(text, F);
  } catch (e) {
    if (e instanceof WorkloadError) return e;
    throw e;
  }
  throw new Error("no error");
}

describe("parseWorkload", () => {
  it("reads every field, with packets and count defaulting to 1 and protocol to TCP", () => {
    const wl = parseWorkload(
      [
        "flows:",
        "  - {from: shop/a, to: service/shop/backend:8080, protocol: TCP, packets: 5, count: 2}",
        "  - {from: shop/a, to: pod/shop/db-0:5432}",
        "  - {from: shop/a, to: 8.8.8.8:53, protocol: UDP}",
        "  - {from: shop/a, to: 10.0.2.10, protocol: ICMP, packets: 3}",
        "  - {from: shop/a, to: example.com:443}",
      ].join("\n"),
      F,
    );
    expect(wl).toEqual([
      { from: "shop/a", to: "service/shop/backend:8080", protocol: "TCP", packets: 5, count: 2 },
      { from: "shop/a", to: "pod/shop/db-0:5432", protocol: "TCP", packets: 1, count: 1 },
      { from: "shop/a", to: "8.8.8.8:53", protocol: "UDP", packets: 1, count: 1 },
      { from: "shop/a", to: "10.0.2.10", protocol: "ICMP", packets: 3, count: 1 },
      { from: "shop/a", to: "example.com:443", protocol: "TCP", packets: 1, count: 1 },
    ]);
  });

  it.each([
    ["flows: 3", `${F}: flows`, /flows:. list/],
    ["flows:\n  - {from: shop/a, to: x:80, protocol: SCTP}", `${F}: flows[0].protocol`, /"SCTP" not supported \(TCP, UDP, ICMP\)/],
    ["flows:\n  - {from: shop/a, to: x:80, protocol: tcp}", `${F}: flows[0].protocol`, /not supported/],
    ["flows:\n  - {from: shop/a, to: x:80}\n  - {from: shop/a, to: x:80, packets: 0}", `${F}: flows[1].packets`, /positive integer, got 0/],
    ["flows:\n  - {from: shop/a, to: x:80, packets: '3'}", `${F}: flows[0].packets`, /positive integer, got "3"/],
    ["flows:\n  - {from: shop/a, to: x:80, packets: 1.5}", `${F}: flows[0].packets`, /positive integer/],
    ["flows:\n  - {from: shop/a, to: x:80, packets: 100001}", `${F}: flows[0].packets`, /more than 100000/],
    ["flows:\n  - {from: shop/a, to: x:80, count: -1}", `${F}: flows[0].count`, /positive integer/],
    ["flows:\n  - {from: shop/a, to: x:80, packet: 3}", `${F}: flows[0].packet`, /unknown field/],
    ["flows:\n  - {from: a, to: x:80}", `${F}: flows[0].from`, /NS\/POD/],
    ["flows:\n  - {from: shop/a, to: service/shop/backend}", `${F}: flows[0].to`, /has no port/],
    ["flows:\n  - {from: shop/a, to: service/shop/backend:0}", `${F}: flows[0].to`, /not a port number/],
    ["flows:\n  - {from: shop/a, to: 10.0.0.300:80}", `${F}: flows[0].to`, /not an IPv4 address/],
    ["flows:\n  - {from: shop/a, to: 'bad name:80'}", `${F}: flows[0].to`, /is not service/],
    ["flows:\n  - {from: shop/a, to: svc/shop/x:80}", `${F}: flows[0].to`, /is not service/],
    ["flows:\n  - 7", `${F}: flows[0]`, /must be a mapping/],
  ])("%j -> %s", (text, where, msg) => {
    const e = err(text);
    expect(e.where).toBe(where);
    expect(e.message).toMatch(msg);
  });
});

describe("parseDestination", () => {
  it("tells the forms apart", () => {
    expect(parseDestination("service/ns/web:80", "TCP")).toEqual({ kind: "service", namespace: "ns", name: "web", port: 80 });
    expect(parseDestination("pod/ns/web-0:8080", "UDP")).toEqual({ kind: "pod", namespace: "ns", name: "web-0", port: 8080 });
    expect(parseDestination("1.2.3.4:443", "TCP")).toEqual({ kind: "ip", addr: "1.2.3.4", port: 443 });
    expect(parseDestination("1.2.3.4", "ICMP")).toEqual({ kind: "ip", addr: "1.2.3.4", port: 0 });
    expect(parseDestination("Backend.Shop:80", "TCP")).toEqual({ kind: "name", name: "backend.shop", port: 80 });
    expect(parseDestination("example.com.:443", "TCP")).toEqual({ kind: "name", name: "example.com.", port: 443 });
    expect(parseDestination("example.com", "TCP")).toMatch(/has no port/);
  });
});

describe("compare() runs each entry's packets", () => {
  it("packets: 5 evaluates more netfilter rules than packets: 1 on the same connection (every segment walks the chains)", async () => {
    const { compare } = await import("../../src/compare/run.js");
    const { loadDemoCluster } = await import("../../src/k8s/demo-cluster.js");
    const c = loadDemoCluster();
    const from = c.pods.find((p) => p.metadata.name.startsWith("frontend-"))!;
    const base = { from: `${from.metadata.namespace}/${from.metadata.name}`, to: "service/shop/backend:8080", protocol: "TCP" as const, count: 1 };
    const r = await compare(c, [{ ...base, packets: 1 }, { ...base, packets: 5 }, { ...base, to: "example.com:443" }], [2], 1);
    const [one, five, named] = r.flows.map((f) => f.results["2"]!);
    expect([one!.verdict, five!.verdict, named!.verdict]).toEqual(["allowed", "allowed", "allowed"]);
    expect(five!.rules_evaluated).toBeGreaterThan(one!.rules_evaluated);
    expect([named!.dns_queries, named!.dns_nxdomain]).toEqual([4, 3]);
  }, 300_000);
});
