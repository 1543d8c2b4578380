import { describe, expect, it } from "vitest";
import { main } from "../../src/cli/main.js";

describe("tcbox CLI", () => {
  it("exits 0 on --help", async () => {
    expect(await main(["--help"])).toBe(0);
  });
  it("exits 2 on an unknown command", async () => {
    expect(await main(["no-such-command"])).toBe(2);
  });
});

describe("tcbox CLI as a process", () => {
  it("stops quietly when its reader goes away (tcbox ... | head)", async () => {
    const { spawn } = await import("node:child_process");
    // `tcbox build` prints its one line after compiling (~2 s): the reader has closed by then.
    const child = spawn(process.execPath, ["--import", "tsx", "src/cli/main.ts", "build", "programs/pass.ts", "-o", "/dev/null"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    child.stdout.destroy();
    let err = "";
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on("close", (c) => resolve(c)));
    expect(err).not.toMatch(/EPIPE|Unhandled|at /);
    expect(code).toBe(0);
  }, 30_000);
});
