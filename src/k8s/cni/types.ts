// The CNI contract (containernetworking/cni SPEC.md, spec 1.0.0): the network configuration a runtime writes to
// the plugin's stdin, the environment it sets (CNI_COMMAND, CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME, CNI_PATH,
// CNI_ARGS), the success result and the error object printed on stdout. Setup only: nothing here is per packet.

export const CNI_VERSION = "1.0.0";
/** Versions a plugin answers VERSION with (the ones whose result format this module can emit). */
export const SUPPORTED_VERSIONS = ["0.3.0", "0.3.1", "0.4.0", "1.0.0"];

/** Well-known error codes (SPEC.md "Error"): 1-99 reserved by the spec, 100+ plugin specific. */
export const CniCode = {
  INCOMPATIBLE_VERSION: 1,
  UNSUPPORTED_FIELD: 2,
  UNKNOWN_CONTAINER: 3,
  INVALID_ENV: 4,
  IO_FAILURE: 5,
  DECODE_FAILURE: 6,
  INVALID_NETWORK_CONFIG: 7,
  TRY_AGAIN_LATER: 11,
  /** libcni's ErrInternal: what a Go plugin's skel reports for an untyped error (host-local's "no IP addresses available"). */
  INTERNAL: 999,
} as const;

/** A CNI error: printed as `{"cniVersion","code","msg","details"}` on stdout with a non-zero exit. */
export class CniError extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly details = "",
    /** Where in the invocation: `CNI_COMMAND`, `stdin: ipam.ranges[0]`, `node-1/eth0`. */
    readonly where = "",
  ) {
    super(message);
    this.name = "CniError";
  }
  toJSON(cniVersion = CNI_VERSION): CniErrorObject {
    const o: CniErrorObject = { cniVersion, code: this.code, msg: this.message };
    if (this.details !== "") o.details = this.details;
    return o;
  }
}

export interface CniErrorObject {
  cniVersion: string;
  code: number;
  msg: string;
  details?: string;
}

export interface IpamRange {
  subnet: string;
  rangeStart?: string;
  rangeEnd?: string;
  gateway?: string;
}

export interface IpamConfig {
  type: string;
  /** host-local: a list of range sets (each a list of ranges); only IPv4 is modelled. */
  ranges?: IpamRange[][];
  /** host-local's older single-range form. */
  subnet?: string;
  rangeStart?: string;
  rangeEnd?: string;
  gateway?: string;
  routes?: CniRoute[];
  /** host-local: lease directory name (the model keys leases by network name + dataDir). */
  dataDir?: string;
  [k: string]: unknown;
}

/** The network configuration (one plugin of a conflist, as handed to that plugin). */
export interface NetConf {
  cniVersion: string;
  name: string;
  type: string;
  ipam?: IpamConfig;
  /** Runtime-provided values for declared capabilities (`ips` requests specific addresses). */
  runtimeConfig?: { ips?: string[]; [k: string]: unknown };
  prevResult?: CniResult;
  [k: string]: unknown;
}

export interface CniInterface {
  name: string;
  mac: string;
  /** The netns path for interfaces inside the container; absent for host-side ones. */
  sandbox?: string;
}

export interface CniIp {
  /** CIDR notation: `10.244.0.2/24`. */
  address: string;
  gateway?: string;
  /** Index into `interfaces`. */
  interface?: number;
}

export interface CniRoute {
  dst: string;
  gw?: string;
}

export interface CniDns {
  nameservers?: string[];
  domain?: string;
  search?: string[];
  options?: string[];
}

export interface CniResult {
  cniVersion: string;
  interfaces?: CniInterface[];
  ips: CniIp[];
  routes?: CniRoute[];
  dns: CniDns;
}

/** The invocation's environment, validated (SPEC.md "Parameters"). */
export interface CniArgs {
  command: "ADD" | "DEL" | "CHECK" | "VERSION";
  containerId: string;
  /** CNI_NETNS: a path such as /var/run/netns/NAME; the model namespace is its basename. */
  netns: string;
  ifname: string;
  path: string;
  /** CNI_ARGS: `K8S_POD_NAMESPACE=...;K8S_POD_NAME=...`. */
  args: Record<string, string>;
}

/** The model namespace name for a CNI_NETNS path (the runtime created /var/run/netns/NAME). */
export function netnsName(path: string): string {
  const parts = path.split("/").filter((p) => p !== "");
  return parts[parts.length - 1] ?? "";
}
