// The SDK README's worked example compiles and behaves as the README says (kept in programs/examples/count_dns.ts).
import { expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { buildUdp } from "../../src/packet/index.js";
import { BpfKernel } from "../../src/ebpf/kernel.js";
import { TC_ACT_OK, TC_ACT_SHOT } from "../../src/ebpf/abi.js";

it("count_dns.ts (assembly/README.md): counts queries per client, drops the 101st", async () => {
  const readme = readFileSync("assembly/README.md", "utf8");
  const file = readFileSync("programs/examples/count_dns.ts", "utf8");
  expect(readme).toContain(file.trim().split("\n").slice(1).join("\n"));
  const obj = await new BpfKernel().load("programs/examples/count_dns.ts");
  const q = buildUdp({ src: "10.0.0.5", dst: "10.96.0.10", sport: 40000, dport: 53 });
  const other = buildUdp({ src: "10.0.0.5", dst: "10.96.0.10", sport: 40000, dport: 5353 });
  const prog = obj.program();
  obj.map("dns_clients").typed().update({ saddr: "10.0.0.5" }, { queries: 99 });
  expect(prog.run(q).retval).toBe(TC_ACT_OK); // 100th
  expect(prog.run(other).retval).toBe(TC_ACT_OK); // not DNS: not counted
  expect(prog.run(q)).toMatchObject({ retval: TC_ACT_SHOT, dropReason: 1 }); // 101st
  expect(obj.map("dns_clients").typed().lookup({ saddr: "10.0.0.5" })).toEqual({ queries: 101 });
});
