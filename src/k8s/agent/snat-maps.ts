// The SNAT configuration the agent gives programs/snat.ts (Cilium compiles it into node_config.h:
// IPV4_SNAT_EXCLUSION_DST_CIDR = the cluster CIDR, IPV4_MASQUERADE = the node IP, the NAT port range).
import type { BpfKernel } from "../../ebpf/kernel.js";
import { MapError } from "../../ebpf/errors.js";
import { parseCidr, parseIpv4, prefixMask } from "../../packet/addr.js";

export interface SnatConfig {
  clusterCidr: string;
  nodeIp: string;
  /** Cilium's NODEPORT_PORT_MIN_NAT / MAX_NAT: 32768..65535 by default. */
  minPort?: number;
  maxPort?: number;
}

export function configureSnat(kernel: BpfKernel, c: SnatConfig): void {
  const map = kernel.pinned.get("tcbox_snat_config");
  if (!map) throw new MapError("not pinned: load programs/snat.ts first", "map tcbox_snat_config", 2);
  const cidr = parseCidr(c.clusterCidr);
  const min = c.minPort ?? 32768;
  const max = c.maxPort ?? 65535;
  if (!(min >= 1 && min <= max && max <= 65535)) throw new MapError(`port range ${min}-${max} is invalid`, "map tcbox_snat_config", 22);
  const v = new Uint8Array(16);
  const d = new DataView(v.buffer);
  d.setUint32(0, cidr.addr >>> 0, false);
  d.setUint32(4, prefixMask(cidr.len) >>> 0, false);
  d.setUint32(8, parseIpv4(c.nodeIp), false);
  d.setUint16(12, min, true);
  d.setUint16(14, max, true);
  map.update(new Uint8Array(4), v);
}
