// One CNI invocation as the runtime (kubelet via containerd/CRI-O) makes it: environment + network config on
// stdin in, result or error object on stdout, exit status 0 or 1 (SPEC.md "Execution protocol"). The checks are
// the ones libcni's skel makes before a plugin runs: required variables, container id and interface name
// syntax, config decoding, version compatibility, CHECK only from 0.4.0 on.
import { awsVpcPlugin } from "./aws-vpc.js";
import { bridgePlugin } from "./bridge.js";
import { calicoPlugin } from "./calico.js";
import { decodeConf } from "./decode.js";
import type { CniPlugin, PluginContext } from "./plugin.js";
import { CNI_VERSION, CniCode, CniError, SUPPORTED_VERSIONS, type CniArgs, type CniResult, type NetConf } from "./types.js";

/** Plugin binaries by `type`, as CNI_PATH would hold them. */
export const PLUGINS: Record<string, CniPlugin> = {
  bridge: bridgePlugin,
  calico: calicoPlugin,
  "aws-cni": awsVpcPlugin,
};

export interface CniOutcome {
  /** What the plugin printed on stdout ("" for a successful DEL or CHECK). */
  stdout: string;
  /** Process exit status: 0 on success, 1 with an error object. */
  exitCode: number;
  /** The parsed result or error, for callers in-process. */
  result?: CniResult;
  error?: CniError;
}

const CONTAINER_ID_RE = /^[a-z0-9][a-z0-9_.-]*$/i;

function need(env: Record<string, string | undefined>, names: string[]): void {
  const missing = names.filter((n) => env[n] === undefined || env[n] === "");
  if (missing.length > 0) throw new CniError(CniCode.INVALID_ENV, `required env variables [${missing.join(",")}] missing`, "", "environment");
}

/** skel.getCmdArgsFromEnv: validate the environment for `command`. */
export function parseEnv(env: Record<string, string | undefined>): CniArgs {
  need(env, ["CNI_COMMAND"]);
  const command = env.CNI_COMMAND!;
  if (command !== "ADD" && command !== "DEL" && command !== "CHECK" && command !== "VERSION") {
    throw new CniError(CniCode.INVALID_ENV, `unknown CNI_COMMAND: ${command}`, "", "CNI_COMMAND");
  }
  if (command !== "VERSION") need(env, command === "DEL" ? ["CNI_CONTAINERID", "CNI_IFNAME", "CNI_PATH"] : ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"]);
  const containerId = env.CNI_CONTAINERID ?? "";
  const ifname = env.CNI_IFNAME ?? "";
  if (command !== "VERSION") {
    if (!CONTAINER_ID_RE.test(containerId)) throw new CniError(CniCode.INVALID_ENV, "invalid characters in containerID", containerId, "CNI_CONTAINERID");
    if (ifname.length > 15 || /[/:\s]/.test(ifname) || ifname === "." || ifname === "..") {
      throw new CniError(CniCode.INVALID_ENV, `interface name is invalid: ${ifname}`, "", "CNI_IFNAME");
    }
  }
  const args: Record<string, string> = {};
  for (const kv of (env.CNI_ARGS ?? "").split(";")) {
    if (kv === "") continue;
    const i = kv.indexOf("=");
    if (i <= 0) throw new CniError(CniCode.INVALID_ENV, `invalid CNI_ARGS pair "${kv}"`, "", "CNI_ARGS");
    args[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return { command, containerId, netns: env.CNI_NETNS ?? "", ifname, path: env.CNI_PATH ?? "", args };
}

function vnum(v: string): number {
  const [a, b, c] = v.split(".").map(Number);
  return (a ?? 0) * 10000 + (b ?? 0) * 100 + (c ?? 0);
}

/** Decode the network configuration and check the version, name and type. */
export function parseConf(stdin: string, command: string): NetConf {
  let conf: unknown;
  try {
    conf = JSON.parse(stdin);
  } catch (e) {
    throw new CniError(CniCode.DECODE_FAILURE, `decoding version from network config: ${(e as Error).message}`, "", "stdin");
  }
  if (conf === null || typeof conf !== "object" || Array.isArray(conf)) throw new CniError(CniCode.DECODE_FAILURE, "network config is not a JSON object", "", "stdin");
  const c = conf as NetConf;
  // libcni: a config without cniVersion is version 0.1.0.
  const version = typeof c.cniVersion === "string" ? c.cniVersion : "0.1.0";
  // VERSION answers whatever the caller's version; it is how a runtime finds out what the plugin supports.
  if (command === "VERSION") return c;
  if (!SUPPORTED_VERSIONS.includes(version)) {
    throw new CniError(CniCode.INCOMPATIBLE_VERSION, `incompatible CNI versions; config is "${version}", plugin supports [${SUPPORTED_VERSIONS.map((v) => `"${v}"`).join(" ")}]`, "", "stdin: cniVersion");
  }
  if (command === "CHECK" && vnum(version) < vnum("0.4.0")) throw new CniError(CniCode.INCOMPATIBLE_VERSION, `config version "${version}" does not allow CHECK`, "", "stdin: cniVersion");
  if (typeof c.name !== "string" || c.name === "") throw new CniError(CniCode.INVALID_NETWORK_CONFIG, "missing network name", "", "stdin: name");
  if (typeof c.type !== "string" || c.type === "") throw new CniError(CniCode.INVALID_NETWORK_CONFIG, `missing plugin type (got ${JSON.stringify(c.type) ?? "nothing"})`, "", "stdin: type");
  if (!Object.hasOwn(PLUGINS, c.type)) {
    throw new CniError(CniCode.INVALID_NETWORK_CONFIG, `failed to find plugin "${c.type}" in path [${Object.keys(PLUGINS).join(" ")}]`, "", "stdin: type");
  }
  decodeConf(c);
  if (c.ipam?.ranges?.some((set) => set.some((r) => typeof r.subnet === "string" && r.subnet.includes(":")))) {
    throw new CniError(CniCode.UNSUPPORTED_FIELD, "IPv6 ranges are not modelled", "", "stdin: ipam.ranges");
  }
  return c;
}

/** Results for configs older than 1.0.0 carry `"version": "4"` on each IP (SPEC 0.3.x/0.4.0). */
function forVersion(r: CniResult, version: string): CniResult {
  if (vnum(version) >= vnum("1.0.0")) return r;
  return { ...r, ips: r.ips.map((ip) => ({ version: "4", ...ip })) } as CniResult;
}

/** Run one invocation against the model; never throws for CNI-level failures (they become the error object). */
export function invoke(ctx: PluginContext, env: Record<string, string | undefined>, stdin: string): CniOutcome {
  let version = CNI_VERSION;
  try {
    const args = parseEnv(env);
    const conf = parseConf(stdin.trim() === "" && args.command === "VERSION" ? "{}" : stdin, args.command);
    if (typeof conf.cniVersion === "string") version = conf.cniVersion;
    if (args.command === "VERSION") {
      const out = { cniVersion: version, supportedVersions: SUPPORTED_VERSIONS };
      return { stdout: JSON.stringify(out) + "\n", exitCode: 0 };
    }
    const plugin = PLUGINS[conf.type]!;
    if (args.command === "ADD") {
      // A failed ADD leaves the node's plugin state (leases, ipamd) as it was: nothing half-applied.
      const before = JSON.stringify(ctx.state);
      try {
        const result = forVersion(plugin.add(ctx, args, conf), version);
        return { stdout: JSON.stringify(result, null, 2) + "\n", exitCode: 0, result };
      } catch (e) {
        const st = ctx.state as unknown as Record<string, unknown>;
        for (const k of Object.keys(st)) delete st[k];
        Object.assign(st, JSON.parse(before));
        throw e;
      }
    }
    if (args.command === "DEL") {
      plugin.del(ctx, args, conf);
      return { stdout: "", exitCode: 0 };
    }
    if (!ctx.world.namespaces.some((n) => n.name === args.netns.split("/").filter(Boolean).pop())) {
      throw new CniError(CniCode.UNKNOWN_CONTAINER, `container ${args.containerId} has no network namespace ${args.netns}`, "", "CNI_NETNS");
    }
    plugin.check(ctx, args, conf);
    return { stdout: "", exitCode: 0 };
  } catch (e) {
    if (!(e instanceof CniError)) throw e;
    return { stdout: JSON.stringify(e.toJSON(version), null, 2) + "\n", exitCode: 1, error: e };
  }
}
