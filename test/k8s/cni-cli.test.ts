// `tcbox cni` as kubelet's runtime runs a plugin binary: a child process with CNI_* in its environment and the
// config on stdin; the state file carries the node between invocations.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { openSession, parseStateFile } from "../../src/k8s/cni/state.js";

const dir = mkdtempSync(join(tmpdir(), "tcbox-cni-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const CONF = JSON.stringify({ cniVersion: "1.0.0", name: "cbr0", type: "bridge", isDefaultGateway: true, ipam: { type: "host-local", subnet: "10.244.3.0/24" } });

// The child runs the cni command through the same program setup and error path as src/cli/main.ts, but only
// registers `cni`, so the test does not depend on every other command's import time.
const ENTRY = `
import { Command, CommanderError } from "commander";
import { register } from "./src/cli/cni.ts";
import { exitCodeOf, formatError, warn } from "./src/cli/output.ts";
const program = new Command().name("tcbox").exitOverride();
register(program);
try { await program.parseAsync(process.argv.slice(1), { from: "user" }); }
catch (e) { if (e instanceof CommanderError) process.exitCode = e.exitCode === 0 ? 0 : 2; else { warn(formatError(e)); process.exitCode = exitCodeOf(e); } }
`;

function tcbox(env: Record<string, string>, stdin: string, args: string[] = []) {
  const r = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", ENTRY, "cni", ...args], {
    input: stdin,
    env: { PATH: process.env.PATH ?? "", ...env },
    encoding: "utf8",
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const cni = (cmd: string, id: string) => ({ CNI_COMMAND: cmd, CNI_CONTAINERID: id, CNI_NETNS: `/var/run/netns/${id}`, CNI_IFNAME: "eth0", CNI_PATH: "/opt/cni/bin" });

describe("tcbox cni", () => {
  it("ADD, ADD, DEL, ADD through TCBOX_CNI_STATE: consecutive runs see each other", () => {
    const state = join(dir, "state.json");
    const env = (cmd: string, id: string) => ({ ...cni(cmd, id), TCBOX_CNI_STATE: state });
    const a = tcbox(env("ADD", "pod-a"), CONF);
    expect(a.code).toBe(0);
    expect(JSON.parse(a.stdout).ips).toEqual([{ address: "10.244.3.2/24", gateway: "10.244.3.1", interface: 2 }]);
    expect(JSON.parse(tcbox(env("ADD", "pod-b"), CONF).stdout).ips[0].address).toBe("10.244.3.3/24");
    // The file replays in-process to the same node; a DEL and an ADD continue from it.
    const session = openSession(parseStateFile(readFileSync(state, "utf8"), state));
    expect(session.file.journal).toHaveLength(2);
    expect(session.run(cni("DEL", "pod-a"), CONF)).toMatchObject({ exitCode: 0, stdout: "" });
    expect(JSON.parse(session.run(cni("ADD", "pod-c"), CONF).stdout).ips[0].address).toBe("10.244.3.4/24");
    expect(JSON.parse(session.run({ CNI_COMMAND: "VERSION" }, "{}").stdout).supportedVersions).toContain("1.0.0");
    const show = tcbox({ TCBOX_CNI_STATE: state }, "", ["--show", "node"]);
    expect(show.stdout).toContain("inet 10.244.3.1/24 brd 10.244.3.255 scope global cni0");
  }, 30000);

  it("an error is the spec's JSON object on stdout, a one-line message on stderr and exit 1", () => {
    const r = tcbox({ CNI_COMMAND: "ADD" }, CONF);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toEqual({ cniVersion: "1.0.0", code: 4, msg: "required env variables [CNI_CONTAINERID,CNI_NETNS,CNI_IFNAME,CNI_PATH] missing" });
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toMatch(/^tcbox: environment: CNI error 4/);
  }, 30000);

  it("a bad state file is an IO error naming the file (exit 5)", () => {
    const bad = join(dir, "bad.json");
    writeFileSync(bad, '{"kind":"other"}');
    const r = tcbox({ ...cni("ADD", "x"), TCBOX_CNI_STATE: bad }, CONF);
    expect(r.code).toBe(5);
    expect(r.stderr).toContain(`tcbox: ${bad}: not a tcbox CNI state file`);
  }, 30000);
});
