// Gen 4's Service load balancer as the scenarios drive it: programs/lb4.ts loaded into a BpfKernel, its pinned
// maps filled by the agent's writer (src/k8s/agent/lb-maps.ts), packets run one at a time as tc ingress would.
import { BpfKernel, type BpfObject } from "../../ebpf/kernel.js";
import type { BpfProgram } from "../../ebpf/program.js";
import { Lb4Maps } from "../../k8s/agent/lb-maps.js";
import { formatIpv4, get16, get32 } from "../../packet/index.js";

export const LB4_FILE = "programs/lb4.ts";
export const TC_ACT_OK = 0;
export const TC_ACT_SHOT = 2;

export interface Lb4Host {
  kernel: BpfKernel;
  obj: BpfObject;
  prog: BpfProgram;
  lb: Lb4Maps;
}

export async function loadLb4(seed = 1): Promise<Lb4Host> {
  const kernel = new BpfKernel({ seed });
  const obj = await kernel.load(LB4_FILE);
  kernel.ktimeNs = 1000n * 1_000_000_000n;
  return { kernel, obj, prog: obj.program("cls_main"), lb: new Lb4Maps(kernel) };
}

/** Destination `addr:port` of an output frame (IPv4 at 14). */
export function dstOf(p: Uint8Array): string {
  const l4 = 14 + ((p[14]! & 15) << 2);
  return `${formatIpv4(get32(p, 30))}:${get16(p, l4 + 2)}`;
}

/** The svc-direction CT key lb4 writes for a flow to a frontend (Cilium's CT_SERVICE entry: flags 4). */
export function svcCtKey(saddr: string, sport: number, daddr: string, dport: number, proto: number) {
  return { saddr, daddr, sport, dport, nexthdr: proto, flags: 4 };
}
