// The state `tcbox cni` keeps between invocations so that consecutive runs see each other, as consecutive runs of
// a real plugin see the node's kernel and /var/lib/cni. The file holds the journal of every invocation that
// changed something (successful ADD and DEL), with its environment and stdin; loading replays the journal into a
// fresh kernel model (same seed, so the same MACs and names), which rebuilds the namespaces, links, routes and
// the plugins' own state (host-local leases, calico blocks, ipamd ENIs) exactly. JSON, versioned:
//   {"kind":"tcbox-cni-state","version":1,"seed":1,"host":"node","journal":[{"env":{...},"stdin":"..."}]}
import { World, type NetNamespace } from "../../net/index.js";
import { invoke, type CniOutcome } from "./exec.js";
import { emptyPluginState, type PluginContext } from "./plugin.js";
import { CniCode, CniError, netnsName } from "./types.js";

export interface JournalEntry {
  env: Record<string, string>;
  stdin: string;
}

export interface CniStateFile {
  kind: "tcbox-cni-state";
  version: 1;
  seed: number;
  /** Namespace the plugins run in (the node). */
  host: string;
  journal: JournalEntry[];
}

export function emptyStateFile(host = "node", seed = 1): CniStateFile {
  return { kind: "tcbox-cni-state", version: 1, seed, host, journal: [] };
}

/** Parse a state file's text; a wrong kind or version is an IO error (code 5) naming the file. */
export function parseStateFile(text: string, file: string): CniStateFile {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new CniError(CniCode.IO_FAILURE, `state file is not JSON: ${(e as Error).message}`, "", file);
  }
  const s = v as CniStateFile;
  if (s === null || typeof s !== "object" || s.kind !== "tcbox-cni-state" || s.version !== 1 || !Array.isArray(s.journal)) {
    throw new CniError(CniCode.IO_FAILURE, `not a tcbox CNI state file (kind "tcbox-cni-state", version 1)`, "", file);
  }
  if (!Number.isSafeInteger(s.seed) || s.seed < 0) throw new CniError(CniCode.IO_FAILURE, `seed: want a non-negative integer, got ${JSON.stringify(s.seed) ?? "nothing"}`, "", file);
  if (typeof s.host !== "string" || !MODEL_NS_NAME.test(s.host)) throw new CniError(CniCode.IO_FAILURE, `host: want a namespace name, got ${JSON.stringify(s.host) ?? "nothing"}`, "", file);
  s.journal.forEach((j: unknown, i) => {
    const e = j as JournalEntry | null;
    const ok =
      e !== null && typeof e === "object" && typeof e.stdin === "string" && e.env !== null && typeof e.env === "object" && !Array.isArray(e.env) &&
      Object.values(e.env).every((v) => typeof v === "string");
    if (!ok) throw new CniError(CniCode.IO_FAILURE, `journal[${i}]: want {"env": {NAME: "value", ...}, "stdin": "..."}`, "", file);
  });
  return s;
}

/** The node as the runtime prepares it: the host namespace with lo up and forwarding on. */
function hostNamespace(world: World, name: string): NetNamespace {
  const ns = world.addNamespace(name);
  ns.setLink(ns.lo, true);
  return ns;
}

/** Namespace names the model's iproute2 commands can address (one word). */
const MODEL_NS_NAME = /^[^\s/]+$/;

/**
 * The runtime creates the sandbox's netns (pause container) before ADD; replay does the same. A name the model
 * cannot address is not created, so the plugin's open of CNI_NETNS fails as for a missing namespace.
 */
export function ensureSandbox(world: World, netnsPath: string): void {
  const name = netnsName(netnsPath);
  if (MODEL_NS_NAME.test(name) && !world.namespaces.some((n) => n.name === name)) {
    const ns = world.addNamespace(name);
    ns.setLink(ns.lo, true);
  }
}

export interface CniSession {
  ctx: PluginContext;
  file: CniStateFile;
  /** Run one invocation; successful ADD/DEL are appended to the journal. */
  run(env: Record<string, string | undefined>, stdin: string): CniOutcome;
}

/** Replay a state file into a fresh model and return a session that continues from it. */
export function openSession(file: CniStateFile): CniSession {
  const world = new World(file.seed);
  const ctx: PluginContext = { world, host: hostNamespace(world, file.host), state: emptyPluginState() };
  const exec = (env: Record<string, string | undefined>, stdin: string): CniOutcome => {
    if (env.CNI_COMMAND === "ADD" && env.CNI_NETNS !== undefined) ensureSandbox(world, env.CNI_NETNS);
    return invoke(ctx, env, stdin);
  };
  file.journal.forEach((j, i) => {
    const out = exec(j.env, j.stdin);
    if (out.exitCode !== 0) throw new CniError(CniCode.IO_FAILURE, `journal entry ${i} no longer replays: ${out.error?.message ?? "error"}`, "", "state");
  });
  return {
    ctx,
    file,
    run(env, stdin) {
      const out = exec(env, stdin);
      if (out.exitCode === 0 && (env.CNI_COMMAND === "ADD" || env.CNI_COMMAND === "DEL")) {
        const kept: Record<string, string> = {};
        for (const [k, v] of Object.entries(env)) if (k.startsWith("CNI_") && v !== undefined) kept[k] = v;
        file.journal.push({ env: kept, stdin });
      }
      return out;
    },
  };
}
