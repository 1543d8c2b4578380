// Gen 1-3's Service hop: kube-proxy (iptables mode) on the node where the Service decision is taken.
// The first packet of a connection misses conntrack, walks PREROUTING nat (KUBE-SERVICES is one rule per Service
// port, linear), is DNATed, passes filter and POSTROUTING, and is confirmed; later packets hit conntrack, skip
// the nat table (the binding is conntrack's) and are rewritten. Same rules text kube-proxy restores
// (generateIptables -> iptables-save), compiled once to numbers and masks.
import { generateIptables } from "../k8s/kube-proxy/iptables.js";
import { iptablesSave } from "../k8s/kube-proxy/iptables-save.js";
import { compileRuleset } from "../netfilter/compile.js";
import { Conntrack } from "../netfilter/conntrack.js";
import { ConntrackPathHook } from "../netfilter/conntrack-hook.js";
import { AddrType } from "../netfilter/ctstate.js";
import type { EvalEnv } from "../netfilter/eval.js";
import { NetfilterPath, PathResult, type RouteEnv } from "../netfilter/hooks.js";
import { IfaceRegistry } from "../netfilter/iface.js";
import { PacketState } from "../netfilter/packet-state.js";
import { RecentTables } from "../netfilter/recent.js";
import { parseIptablesRestore } from "../netfilter/restore.js";
import { buildTcp } from "../packet/build.js";
import type { Cluster } from "../k8s/types.js";
import { serviceIp } from "./cluster.js";

export const BATCH = 1024;
const L3 = 14;
const SYN = 0x02;
const ACK = 0x10;
const NODE_IP = 0xc0a80001;
export const PROXY_OPTS = { nodeName: "node-1", nodeIPs: ["192.168.0.1"], clusterCIDR: "10.244.0.0/16" };

export interface PathTask {
  fn: () => void;
  items: number;
}

export interface IptablesSetup {
  rules: number;
  rulesetBytes: number;
  newConn: PathTask;
  established: PathTask;
  /** Rules evaluated per first packet (EvalResult.rulesEvaluated over one batch / BATCH). */
  rulesPerNew: number;
  /** Rules evaluated per established packet. */
  rulesPerEstablished: number;
  /** Bytes of the conntrack table's arrays per entry slot. */
  bytesPerCtEntry: number;
}

function pick(services: number): Uint32Array {
  const out = new Uint32Array(BATCH);
  let x = 11;
  for (let k = 0; k < BATCH; k++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    out[k] = x % services;
  }
  return out;
}

/** Bytes held per entry slot by a conntrack table (every typed array it owns, summed, / its slot capacity). */
export function conntrackEntryBytes(ct: Conntrack): number {
  let bytes = 0;
  for (const v of Object.values(ct)) if (ArrayBuffer.isView(v)) bytes += v.byteLength;
  return bytes / ct.status.length;
}

export function setupIptables(cluster: Cluster): IptablesSetup {
  const services = cluster.services.length;
  const text = iptablesSave(generateIptables(cluster, PROXY_OPTS));
  const ifaces = new IfaceRegistry();
  const recent = new RecentTables();
  const compiled = compileRuleset(parseIptablesRestore(text), { ifaces, recent });
  let seed = 1;
  const env: EvalEnv & RouteEnv = {
    // -m statistic --mode random: a cheap LCG, as the kernel's prandom is cheap.
    randomMatch: (stored) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return (seed & 0x7fffffff) < stored;
    },
    addrType: (a) => (a === NODE_IP ? AddrType.LOCAL : AddrType.UNICAST),
    now: () => 0,
    recent,
    isLocal: (a) => a === NODE_IP,
    masqueradeAddr: () => NODE_IP,
  };
  const ct = new Conntrack({ max: 1 << 16, buckets: 1 << 14 });
  const hook = new ConntrackPathHook(ct);
  const path = new NetfilterPath(compiled, env, hook);
  const eth0 = ifaces.index("eth0");
  const veth = ifaces.index("veth0");
  const p = new PacketState();
  const out = new PathResult();
  const send = (f: Uint8Array, iif: number): number => {
    hook.setPacket(f, L3);
    p.reset();
    p.fromIpv4(f, L3);
    p.iif = iif;
    p.oif = eth0;
    return path.receive(p, out);
  };
  const svc = pick(services);
  // New connections: SYNs from pods on this node to random ClusterIPs; each call uses fresh source addresses
  // (bytes 2..3 of the source), then destroys the entries it made so the table stays the same size.
  const synT: Uint8Array[] = [];
  for (let k = 0; k < BATCH; k++) synT.push(buildTcp({ src: (0x0af40102 + (k & 127)) >>> 0, dst: serviceIp(svc[k]!), sport: 20000 + k, dport: 80, flags: SYN, seq: 1 }));
  const synW = synT.map((f) => new Uint8Array(f.length));
  let gen = 0;
  const newConn = (): void => {
    gen = (gen + 1) & 0x3fff;
    for (let k = 0; k < BATCH; k++) {
      const w = synW[k]!;
      w.set(synT[k]!);
      w[L3 + 13] = gen >> 6; // 10.244.(gen>>6).(gen<<2 | k&3..): a tuple not yet in the table
      w[L3 + 14] = ((gen & 63) << 2) | (k & 3);
      if (send(w, veth) !== 1) throw new Error("bench: SYN dropped");
    }
    for (const i of ct.entries()) ct.kill(i);
    ct.flushDying();
  };
  const r0 = path.result.rulesEvaluated;
  newConn();
  const rulesPerNew = (path.result.rulesEvaluated - r0) / BATCH;

  // Established: BATCH connections set up (SYN, SYN-ACK), then their ACKs, copied fresh each call.
  const ackT: Uint8Array[] = [];
  for (let k = 0; k < BATCH; k++) {
    const src = (0x0af40202 + k) >>> 0;
    const syn = buildTcp({ src, dst: serviceIp(svc[k]!), sport: 30000 + k, dport: 80, flags: SYN, seq: 1 });
    if (send(syn, veth) !== 1) throw new Error("bench: SYN dropped");
    const dv = new DataView(syn.buffer, syn.byteOffset);
    const back = buildTcp({ src: dv.getUint32(L3 + 16), dst: dv.getUint32(L3 + 12), sport: dv.getUint16(L3 + 22), dport: dv.getUint16(L3 + 20), flags: SYN | ACK, seq: 9, ack: 2 });
    send(back, eth0);
    ackT.push(buildTcp({ src, dst: serviceIp(svc[k]!), sport: 30000 + k, dport: 80, flags: ACK, seq: 2, ack: 10 }));
  }
  const ackW = ackT.map((f) => new Uint8Array(f.length));
  const established = (): void => {
    for (let k = 0; k < BATCH; k++) {
      const w = ackW[k]!;
      w.set(ackT[k]!);
      if (send(w, veth) !== 1) throw new Error("bench: established packet dropped");
    }
  };
  const r1 = path.result.rulesEvaluated;
  established();
  const rulesPerEstablished = (path.result.rulesEvaluated - r1) / BATCH;
  return {
    rules: compiled.tables.reduce((a, t) => a + t.nRules, 0),
    rulesetBytes: text.length,
    newConn: { fn: newConn, items: BATCH },
    established: { fn: established, items: BATCH },
    rulesPerNew,
    rulesPerEstablished,
    bytesPerCtEntry: conntrackEntryBytes(ct),
  };
}

/**
 * kube-proxy's cost for one Service change: it regenerates the whole ruleset and iptables-restore replaces the
 * table (the kernel parses and translates the full blob). Modelled as generate + print + parse + compile.
 */
export function iptablesSync(cluster: Cluster): void {
  const text = iptablesSave(generateIptables(cluster, PROXY_OPTS));
  compileRuleset(parseIptablesRestore(text), { ifaces: new IfaceRegistry(), recent: new RecentTables() });
}
