import { describe, expect, it } from "vitest";
import { eniExhaustion } from "../../src/compare/scenarios/eni-exhaustion.js";
import { hostNetworkPort } from "../../src/compare/scenarios/hostnetwork-port.js";

describe("scenario eni-exhaustion", () => {
  it("Gen 3 refuses the 30th pod (OutOfpods) and the 28th pod-network pod gets no address; Gen 1 starts all", async () => {
    const r = await eniExhaustion.run([1, 3]);
    expect(r.counters).toMatchObject({ pods_running_a: 29, pods_failed_a: 1, pods_running_b: 27, pods_failed_b: 1, OutOfpods: 1, FailedCreatePodSandBox: 1 });
    expect(r.gens[0]!.counters).toMatchObject({ pods_failed_a: 0, pods_failed_b: 0 });
    expect(r.gens[1]!.applies).toBe(true);
    expect(r.happened.join("\n")).toContain("failed to assign an IP address to container");
  });
});

describe("scenario hostnetwork-port", () => {
  it("the second hostNetwork bind of :80 on a node is EADDRINUSE in every built generation", async () => {
    const r = await hostNetworkPort.run([1, 2, 3]);
    for (const g of r.gens) expect(g.counters).toEqual({ binds: 1, eaddrinuse: 1, same_namespace: 1 });
    expect(r.happened.join("\n")).toContain("Address already in use");
  });
});
