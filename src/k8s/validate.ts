// The checks kube-apiserver applies to names, labels, IPs and ports, with its wording where it has one
// (k8s.io/apimachinery/pkg/util/validation).
import { AddrError, parseCidr, parseIpv4 } from "../packet/addr.js";
import type { Field } from "./manifest-reader.js";
import type { Protocol } from "./types.js";

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const IANA_SVC_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const LABEL_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

export function checkDns1123Label(f: Field, v: string): void {
  if (v.length > 63 || !DNS1123_LABEL.test(v)) {
    throw f.error(`Invalid value: "${v}": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character`);
  }
}

export function checkDns1123Subdomain(f: Field, v: string): void {
  if (v.length > 253 || !DNS1123_SUBDOMAIN.test(v)) {
    throw f.error(`Invalid value: "${v}": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character`);
  }
}

/** Port names (container and service ports): IANA_SVC_NAME, at most 15 characters, at least one letter. */
export function checkPortName(f: Field, v: string): void {
  if (v.length > 15 || !IANA_SVC_NAME.test(v) || !/[a-z]/.test(v) || v.includes("--")) {
    throw f.error(`Invalid value: "${v}": must be no more than 15 characters, contain only lowercase alphanumerics or '-', contain at least one letter, and not start, end or contain '--'`);
  }
}

export function checkLabels(f: Field, labels: Record<string, string>): void {
  for (const [k, v] of Object.entries(labels)) {
    const slash = k.lastIndexOf("/");
    const name = slash >= 0 ? k.slice(slash + 1) : k;
    const prefix = slash >= 0 ? k.slice(0, slash) : "";
    if ((prefix && !DNS1123_SUBDOMAIN.test(prefix)) || name.length > 63 || !LABEL_NAME.test(name)) {
      throw f.get(k).error(`Invalid value: "${k}": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character`);
    }
    if (v.length > 63 || !LABEL_VALUE.test(v)) {
      throw f.get(k).error(`Invalid value: "${v}": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character`);
    }
  }
}

export function checkIpv4(f: Field, v: string): number {
  try {
    return parseIpv4(v);
  } catch (e) {
    if (e instanceof AddrError) throw f.error(`Invalid value: "${v}": must be a valid IPv4 address`);
    throw e;
  }
}

export function checkCidr(f: Field, v: string): string {
  if (!v.includes("/")) throw f.error(`Invalid value: "${v}": must be a valid CIDR value, (e.g. 10.9.8.0/24)`);
  try {
    parseCidr(v);
  } catch (e) {
    if (e instanceof AddrError) throw f.error(`Invalid value: "${v}": must be a valid CIDR value, (e.g. 10.9.8.0/24)`);
    throw e;
  }
  return v;
}

export function readPort(f: Field, required = true): number {
  return f.int({ required, min: 1, max: 65535, range: "1-65535" });
}

export function readProtocol(f: Field): Protocol {
  return f.oneOf(["TCP", "UDP", "SCTP"] as const, "TCP");
}
