// kube-proxy's per-service chain names (pkg/proxy/iptables/proxier.go: portProtoHash,
// servicePortEndpointChainName): prefix + base32(sha256(servicePortName + protocol [+ endpoint]))[:16].
// iptables chain names are limited to 28 characters, hence the truncated hash.
import { createHash } from "node:crypto";

const BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"; // RFC 4648 standard alphabet (Go's base32.StdEncoding)

// kube-proxy computes these names once, when a Service or endpoint changes (newServiceInfo/newEndpointInfo),
// not on every sync; a bounded memo gives repeated syncs the same cost profile.
const memo = new Map<string, string>();
const MEMO_MAX = 1 << 18;

/** The first 16 base32 characters of sha256(text): 80 bits, i.e. the first 10 bytes of the digest. */
export function hash16(text: string): string {
  const hit = memo.get(text);
  if (hit !== undefined) return hit;
  if (memo.size >= MEMO_MAX) memo.clear();
  const h = computeHash16(text);
  memo.set(text, h);
  return h;
}

function computeHash16(text: string): string {
  const d = createHash("sha256").update(text, "utf8").digest();
  let out = "";
  let acc = 0;
  let bits = 0;
  for (let i = 0; out.length < 16; i++) {
    acc = (acc << 8) | d[i]!;
    bits += 8;
    while (bits >= 5 && out.length < 16) {
      bits -= 5;
      out += BASE32[(acc >>> bits) & 31];
    }
    acc &= (1 << bits) - 1;
  }
  return out;
}

/** ServicePortName.String(): "ns/name:port", or "ns/name" for an unnamed port. */
export function servicePortNameString(namespace: string, name: string, port: string): string {
  return port ? `${namespace}/${name}:${port}` : `${namespace}/${name}`;
}

/** protocol is lower case ("tcp"), as kube-proxy passes strings.ToLower(protocol). */
export const svcChain = (spn: string, protocol: string) => `KUBE-SVC-${hash16(spn + protocol)}`;
export const svlChain = (spn: string, protocol: string) => `KUBE-SVL-${hash16(spn + protocol)}`;
export const extChain = (spn: string, protocol: string) => `KUBE-EXT-${hash16(spn + protocol)}`;
export const fwChain = (spn: string, protocol: string) => `KUBE-FW-${hash16(spn + protocol)}`;
/** endpoint is "ip:port". */
export const sepChain = (spn: string, protocol: string, endpoint: string) => `KUBE-SEP-${hash16(spn + protocol + endpoint)}`;
