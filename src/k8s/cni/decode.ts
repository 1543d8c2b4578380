// Decoding a network configuration into the plugin's config struct, as the Go plugins do with json.Unmarshal
// (types.NetConf plus each plugin's own fields): a field of the wrong JSON type is a decode failure naming the
// field, JSON null leaves a field unset, unknown fields are ignored. Then the checks the real plugins (or the
// kernel, through netlink) make on the values the model puts into iproute2 commands: interface names, MTUs,
// route destinations, Calico's block size. Setup only.
import { AddrError, parseCidr, parseIpv4 } from "../../packet/addr.js";
import { CniCode, CniError, type NetConf } from "./types.js";

type Shape = "string" | "bool" | "int" | "mtu" | "object" | Shape[] | { [field: string]: Shape };

const RANGE: Shape = { subnet: "string", rangeStart: "string", rangeEnd: "string", gateway: "string" };
const ROUTE: Shape = { dst: "string", gw: "string" };
const COMMON: Record<string, Shape> = {
  cniVersion: "string",
  name: "string",
  type: "string",
  dns: { nameservers: ["string"], domain: "string", search: ["string"], options: ["string"] },
  runtimeConfig: { ips: ["string"] },
  prevResult: "object",
  ipam: { type: "string", subnet: "string", rangeStart: "string", rangeEnd: "string", gateway: "string", ranges: [[RANGE]], routes: [ROUTE], dataDir: "string", pool: "string", blockSize: "int", hint: "string" },
};
const PLUGIN_FIELDS: Record<string, Record<string, Shape>> = {
  bridge: { bridge: "string", isGateway: "bool", isDefaultGateway: "bool", ipMasq: "bool", hairpinMode: "bool", mtu: "int" },
  calico: { nodename: "string", mtu: "int" },
  // aws-vpc-cni's config takes the MTU as a string ("9001"); a number is accepted too.
  "aws-cni": { instanceType: "string", nodeIP: "string", subnet: "string", vethPrefix: "string", mtu: "mtu", enis: [{ id: "string", deviceNumber: "int", primaryIP: "string", secondaryIPs: ["string"] }] },
};

const jsonType = (v: unknown) => (Array.isArray(v) ? "array" : typeof v === "boolean" ? "bool" : typeof v);
const goType = (s: Shape): string => (typeof s === "string" ? (s === "mtu" ? "string" : s === "object" ? "map[string]interface {}" : s) : Array.isArray(s) ? `[]${goType(s[0]!)}` : "struct");

function fail(where: string, message: string): never {
  throw new CniError(CniCode.DECODE_FAILURE, `failed to load netconf: ${message}`, "", `stdin: ${where}`);
}

/** Check `v` against `shape`; nulls are removed (Go leaves the field unset). */
function decode(v: unknown, shape: Shape, where: string): unknown {
  const wrong = (): never => fail(where, `json: cannot unmarshal ${jsonType(v)} into Go struct field ${where} of type ${goType(shape)}`);
  if (Array.isArray(shape)) {
    if (!Array.isArray(v)) wrong();
    return (v as unknown[]).map((x, i) => decode(x, shape[0]!, `${where}[${i}]`));
  }
  if (typeof shape === "object") {
    if (v === null || typeof v !== "object" || Array.isArray(v)) wrong();
    const o = v as Record<string, unknown>;
    for (const [k, s] of Object.entries(shape)) {
      if (!Object.hasOwn(o, k)) continue;
      if (o[k] === null) delete o[k];
      else o[k] = decode(o[k], s, where === "" ? k : `${where}.${k}`);
    }
    return o;
  }
  switch (shape) {
    case "string":
      if (typeof v !== "string") wrong();
      return v;
    case "bool":
      if (typeof v !== "boolean") wrong();
      return v;
    case "int":
      if (typeof v !== "number" || !Number.isSafeInteger(v)) wrong();
      return v;
    case "mtu": {
      const n = typeof v === "string" && /^\d+$/.test(v) ? Number(v) : v;
      if (typeof n !== "number" || !Number.isSafeInteger(n)) wrong();
      return n;
    }
    case "object":
      if (v === null || typeof v !== "object" || Array.isArray(v)) wrong();
      return v;
  }
}

function invalid(where: string, message: string): never {
  throw new CniError(CniCode.INVALID_NETWORK_CONFIG, message, "", `stdin: ${where}`);
}

/** dev_valid_name: 1-15 bytes, not "." or "..", no '/', ':' or whitespace. */
function checkIfname(name: string, where: string, maxLen = 15): void {
  if (name === "" || name.length > maxLen || name === "." || name === ".." || /[/:\s]/.test(name)) invalid(where, `invalid interface name "${name}"`);
}

function checkAddr(text: string, where: string, cidr: boolean): void {
  try {
    if (cidr) parseCidr(text);
    else parseIpv4(text);
  } catch (e) {
    if (e instanceof AddrError) invalid(where, `invalid ${cidr ? "CIDR" : "IP address"} "${text}"`);
    throw e;
  }
}

/** The typed network configuration for plugin `type` (already known to exist), or a CniError naming the field. */
export function decodeConf(c: NetConf): NetConf {
  decode(c, { ...COMMON, ...PLUGIN_FIELDS[c.type] }, "");
  const conf = c as NetConf & { bridge?: string; vethPrefix?: string; mtu?: number };
  if (conf.bridge !== undefined) checkIfname(conf.bridge, "bridge");
  // The host veth is the prefix and 11 hex digits: 15 bytes at most leaves 4 for the prefix.
  if (conf.vethPrefix !== undefined) checkIfname(conf.vethPrefix + "x".repeat(11), "vethPrefix");
  if (conf.mtu !== undefined && (conf.mtu < 68 || conf.mtu > 65535)) invalid("mtu", `invalid MTU ${conf.mtu} (68..65535)`);
  conf.ipam?.routes?.forEach((r, i) => {
    if (r.dst === undefined) invalid(`ipam.routes[${i}]`, "route without dst");
    checkAddr(r.dst, `ipam.routes[${i}].dst`, true);
    if (r.gw !== undefined) checkAddr(r.gw, `ipam.routes[${i}].gw`, false);
  });
  for (const f of ["pool", "hint"] as const) if (typeof conf.ipam?.[f] === "string") checkAddr(conf.ipam[f] as string, `ipam.${f}`, true);
  const aws = conf as { nodeIP?: string; subnet?: string };
  if (aws.nodeIP !== undefined) checkAddr(aws.nodeIP, "nodeIP", false);
  if (aws.subnet !== undefined && c.type === "aws-cni") checkAddr(aws.subnet, "subnet", true);
  conf.ipam?.ranges?.forEach((set, i) => set.forEach((r, j) => r.subnet === undefined && invalid(`ipam.ranges[${i}][${j}]`, "range without subnet")));
  (conf as { enis?: { primaryIP?: string; secondaryIPs?: string[] }[] }).enis?.forEach((e, i) => {
    if (e.primaryIP !== undefined) checkAddr(e.primaryIP, `enis[${i}].primaryIP`, false);
    e.secondaryIPs?.forEach((a, j) => checkAddr(a, `enis[${i}].secondaryIPs[${j}]`, false));
  });
  const bs = conf.ipam?.blockSize as number | undefined;
  if (bs !== undefined && (bs < 20 || bs > 32)) invalid("ipam.blockSize", `block size /${bs} is not between 20 and 32`);
  return conf;
}
