// Gen 1-3's Service hop: kube-proxy on the node where the Service decision is taken, in iptables or IPVS mode.
//  - iptables: the first packet of a connection misses conntrack, walks PREROUTING nat (KUBE-SERVICES is one rule
//    per Service port, linear), is DNATed, passes filter and POSTROUTING, and is confirmed; later packets hit
//    conntrack, skip the nat table (the binding is conntrack's) and are rewritten. Same rules text kube-proxy
//    restores (generateIptables -> iptables-save), compiled once to numbers and masks.
//  - ipvs: the IPVS proxier's iptables rules (ipset matches: a constant number of rules) in PREROUTING and INPUT
//    (ClusterIPs are local: bound to kube-ipvs0), then IPVS at LOCAL_IN (ip_vs_in: connection lookup, else the
//    virtual service's hash lookup, scheduling and a new connection), DNAT of the bytes, POSTROUTING, confirm.
//    IPVS's conntrack reply-tuple update (ip_vs_update_conntrack) is not modelled, so no replies are sent here.
//  - nftables: the `ip kube-proxy` table (generateNftables) through k8s/kube-proxy/nftables-eval.ts: the first
//    packet walks the filter and nat base chains, one `service-ips` verdict-map lookup picks the Service (not a
//    linear walk), numgen the endpoint; conntrack and NAT as for iptables. Later packets skip the nat chains and
//    only pass the base chains' `ct state new` checks.
// Conntrack sized as kube-proxy sizes it on this 2-core node: nf_conntrack_max = max(32768 x cores, 131072),
// hashsize = max / 4.
import { generateIptables } from "../k8s/kube-proxy/iptables.js";
import { iptablesSave } from "../k8s/kube-proxy/iptables-save.js";
import { generateIpvs } from "../k8s/kube-proxy/ipvs.js";
import { generateNftables, nftTransaction } from "../k8s/kube-proxy/nftables.js";
import { compileNft, NftPath } from "../k8s/kube-proxy/nftables-eval.js";
import { ipvsRestorePayload } from "../k8s/kube-proxy/ipvs-rules.js";
import { compileRuleset } from "../netfilter/compile.js";
import { Conntrack } from "../netfilter/conntrack.js";
import { ConntrackPathHook } from "../netfilter/conntrack-hook.js";
import { AddrType } from "../netfilter/ctstate.js";
import { NF_ACCEPT, type EvalEnv } from "../netfilter/eval.js";
import { NetfilterPath, PathResult, type RouteEnv } from "../netfilter/hooks.js";
import { IfaceRegistry } from "../netfilter/iface.js";
import { KeyIndex } from "../netfilter/ipset.js";
import { IPVS_STOLEN, IpvsPath } from "../netfilter/ipvs-conn.js";
import { ipvsadmList } from "../netfilter/ipvs-format.js";
import { PacketState } from "../netfilter/packet-state.js";
import { RecentTables } from "../netfilter/recent.js";
import { parseIptablesRestore } from "../netfilter/restore.js";
import { Hook } from "../netfilter/tables.js";
import { parseIpv4 } from "../packet/addr.js";
import { buildTcp } from "../packet/build.js";
import { get16, get32 } from "../packet/checksum.js";
import type { Cluster } from "../k8s/types.js";
import { serviceIp } from "./cluster.js";
import { median, medianMs } from "./measure.js";
import {
  ACK, BACKGROUND, BATCH, clientIp, clientPort, CONN_FRAME, L3, newBase, SERVER_ISN, SERVICE_PORT, svcOf, SYN, timedTask,
  writeConn, type PathTask,
} from "./workload.js";

export { BATCH, type PathTask } from "./workload.js";

const NODE_IP = 0xc0a80001;
export const PROXY_OPTS = { nodeName: "node-1", nodeIPs: ["192.168.0.1"], clusterCIDR: "10.244.0.0/16" };
/** kube-proxy --conntrack-max-per-core 32768 x 2 cores, --conntrack-min 131072; hashsize = max / 4. */
export const KP_CT_MAX = 131072;
export const KP_CT_BUCKETS = KP_CT_MAX / 4;

export type KubeProxyMode = "iptables" | "ipvs" | "nftables";

export interface IptablesSetup {
  mode: KubeProxyMode;
  rules: number;
  /** Bytes of the state kube-proxy writes (iptables-save text; IPVS mode adds ipsets and virtual servers). */
  rulesetBytes: number;
  newConn: PathTask;
  established: PathTask;
  /** Rules evaluated per first packet (EvalResult.rulesEvaluated over one batch / BATCH). */
  rulesPerNew: number;
  /** Rules evaluated per established packet. */
  rulesPerEstablished: number;
  /** Bytes of the connection tables' arrays per entry slot (conntrack, plus IPVS's connection table). */
  bytesPerCtEntry: number;
  /** Wall time of this setup's generate + print + parse + compile (one kube-proxy full sync). */
  syncMs: number;
  /** Hash lookups per packet outside the rules: conntrack, plus IPVS's connection (and on a miss service) table. */
  lookupsPerNew: number;
  lookupsPerEstablished: number;
}

/** Bytes held per entry slot by a table (every typed array it owns, summed, / its slot capacity). */
export function tableEntryBytes(t: object, slots: number): number {
  let bytes = 0;
  for (const v of Object.values(t)) if (ArrayBuffer.isView(v)) bytes += v.byteLength;
  return bytes / slots;
}
export function conntrackEntryBytes(ct: Conntrack): number {
  return tableEntryBytes(ct, ct.status.length);
}

interface Built {
  text: string;
  extraBytes: number;
  path: NetfilterPath;
  /** nftables mode: the table's evaluator (`path` is then an empty iptables ruleset, unused). */
  nft: NftPath | null;
  env: EvalEnv & RouteEnv;
  ipvs: IpvsPath | null;
  ifaces: IfaceRegistry;
}

function build(cluster: Cluster, mode: KubeProxyMode, ifaces: IfaceRegistry, hook: ConntrackPathHook | null): Built {
  const recent = new RecentTables();
  let seed = 1;
  const base = {
    // -m statistic --mode random: a cheap LCG, as the kernel's prandom is cheap.
    randomMatch: (stored: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return (seed & 0x7fffffff) < stored;
    },
    now: () => 0,
    recent,
    masqueradeAddr: () => NODE_IP,
  };
  if (mode === "iptables") {
    const text = iptablesSave(generateIptables(cluster, PROXY_OPTS));
    const env = { ...base, addrType: (a: number) => (a === NODE_IP ? AddrType.LOCAL : AddrType.UNICAST), isLocal: (a: number) => a === NODE_IP };
    const path = new NetfilterPath(compileRuleset(parseIptablesRestore(text), { ifaces, recent }), env, hook);
    return { text, extraBytes: 0, path, nft: null, env, ipvs: null, ifaces };
  }
  if (mode === "nftables") {
    const table = generateNftables(cluster, PROXY_OPTS);
    const text = nftTransaction(table);
    const env = { ...base, addrType: (a: number) => (a === NODE_IP ? AddrType.LOCAL : AddrType.UNICAST), isLocal: (a: number) => a === NODE_IP };
    const nft = new NftPath(compileNft(table), {
      isLocal: env.isLocal,
      masqueradeAddr: () => NODE_IP,
      numgen: (mod: number) => {
        seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
        return (seed >>> 1) % mod;
      },
      now: () => 0,
    }, hook);
    const path = new NetfilterPath(compileRuleset(parseIptablesRestore(""), { ifaces, recent }), env, null);
    return { text, extraBytes: 0, path, nft, env, ipvs: null, ifaces };
  }
  const st = generateIpvs(cluster, PROXY_OPTS);
  const text = ipvsRestorePayload(st);
  // ClusterIPs are bound to kube-ipvs0: local addresses (an open-addressing index of int32 words: no string keys,
  // no Set lookup per packet).
  const vips = new KeyIndex();
  for (const a of st.kubeIpvs0) vips.add(parseIpv4(a) | 0, 0, 0, 0);
  const local = (a: number) => a === NODE_IP || vips.get(a | 0, 0, 0) >= 0;
  const env = { ...base, addrType: (a: number) => (local(a) ? AddrType.LOCAL : AddrType.UNICAST), isLocal: local };
  const path = new NetfilterPath(compileRuleset(parseIptablesRestore(text), { ifaces, recent, ipsets: st.ipsets }), env, hook);
  const extraBytes = st.ipsets.save().length + ipvsadmList(st.ipvs).length;
  return { text, extraBytes, path, nft: null, env, ipvs: new IpvsPath(st.ipvs), ifaces };
}

/** kube-proxy's cost for one Service change: regenerate everything and restore it (generate + print + parse + compile). */
export function iptablesSync(cluster: Cluster, mode: KubeProxyMode = "iptables"): void {
  build(cluster, mode, new IfaceRegistry(), null);
}

export function setupIptables(cluster: Cluster, mode: KubeProxyMode = "iptables"): IptablesSetup {
  const n = cluster.services.length;
  const ifaces = new IfaceRegistry();
  const ct = new Conntrack({ max: KP_CT_MAX, buckets: KP_CT_BUCKETS });
  const hook = new ConntrackPathHook(ct);
  const t0 = performance.now();
  const b = build(cluster, mode, ifaces, hook);
  const syncMs = performance.now() - t0;
  const { path, env, ipvs, nft } = b;
  const eth0 = ifaces.index("eth0");
  const veth = ifaces.index("veth0");
  const p = new PacketState();
  const out = new PathResult();
  const lastConn = new Int32Array(BATCH);
  let k0 = 0;

  const sendIptables = (f: Uint8Array, iif: number): number => {
    hook.load(f, L3, p);
    p.iif = iif;
    p.oif = eth0;
    return (nft ?? path).receive(p, out);
  };
  // IPVS mode: PREROUTING, INPUT (the ClusterIP is local), IPVS at LOCAL_IN (NF_IP_PRI_NAT_SRC - 2), then the
  // DNATed packet leaves through POSTROUTING and the entry is confirmed.
  const sendIpvs = (f: Uint8Array, iif: number): number => {
    hook.load(f, L3, p);
    p.iif = iif;
    out.reset();
    if (!path.hook(Hook.PREROUTING, p, out)) return out.verdict;
    if (!env.isLocal(p.dst)) throw new Error("bench: IPVS mode: the ClusterIP is not local");
    out.local = true;
    p.oif = 0;
    if (!path.hook(Hook.INPUT, p, out)) return out.verdict;
    // The conntrack hook parsed the headers (a whole TCP segment: the bench sends nothing else) into p.
    const l4 = L3 + (f[L3]! & 15) * 4;
    if (ipvs!.inboundParsed(f, L3, l4, p.proto, p.src, p.sport, p.dst, p.dport, p.tcpFlags, 0) !== IPVS_STOLEN) return -1;
    const c = ipvs!.lastConn;
    lastConn[k0] = c;
    p.dst = ipvs!.conns.daddr[c]!;
    p.dport = ipvs!.conns.dport[c]!;
    p.oif = eth0;
    out.local = false;
    if (!path.hook(Hook.POSTROUTING, p, out)) return out.verdict;
    hook.confirm(p, out);
    return NF_ACCEPT;
  };
  const send = ipvs ? sendIpvs : sendIptables;
  const evaluated = (): number => (nft ? nft.rules : path.result.rulesEvaluated);

  // Every table starts with BACKGROUND live connections: SYN, then (iptables) the backend's SYN-ACK.
  const f = new Uint8Array(CONN_FRAME);
  for (let c = 0; c < BACKGROUND; c++) {
    writeConn(f, 0, c, n, SYN);
    if (send(f, veth) !== NF_ACCEPT) throw new Error(`bench: ${mode}: background SYN ${c} dropped`);
    if (ipvs) continue;
    const back = buildTcp({ src: get32(f, L3 + 16), dst: clientIp(c), sport: get16(f, L3 + 22), dport: clientPort(c), flags: SYN | ACK, seq: SERVER_ISN, ack: 2 });
    if (send(back, eth0) !== NF_ACCEPT) throw new Error(`bench: ${mode}: background SYN-ACK ${c} dropped`);
  }

  // New connections: SYNs of fresh connection numbers; afterwards (untimed) their entries are destroyed, as
  // conntrack GC would, so the tables keep BACKGROUND connections.
  const synW = Array.from({ length: BATCH }, () => new Uint8Array(CONN_FRAME));
  let g = 0;
  const prepareNew = (): void => {
    const base = newBase(g);
    for (let k = 0; k < BATCH; k++) writeConn(synW[k]!, 0, base + k, n, SYN);
  };
  const runNew = (): void => {
    for (let k = 0; k < BATCH; k++) {
      k0 = k;
      if (send(synW[k]!, veth) !== NF_ACCEPT) throw new Error(`bench: ${mode}: SYN dropped`);
    }
  };
  const cleanupNew = (): void => {
    hook.setPacket(synW[0]!, L3); // the last packet is finished
    const base = newBase(g);
    for (let k = 0; k < BATCH; k++) {
      const c = base + k;
      const node = ct.lookup(clientIp(c), serviceIp(svcOf(c, n)), ((clientPort(c) << 16) | SERVICE_PORT) >>> 0, 6);
      if (node < 0) throw new Error(`bench: ${mode}: connection ${c} not in conntrack`);
      ct.kill(node >> 1);
      if (ipvs) ipvs.conns.expire(lastConn[k]!);
    }
    ct.flushDying();
    g++;
  };
  const r0 = evaluated();
  const l0 = nft ? nft.lookups : 0;
  prepareNew();
  runNew();
  const rulesPerNew = (evaluated() - r0) / BATCH;
  const nftLookupsPerNew = nft ? (nft.lookups - l0) / BATCH : 0;
  cleanupNew();
  if (ct.count !== BACKGROUND) throw new Error(`bench: ${mode}: conntrack holds ${ct.count} entries, expected ${BACKGROUND}`);

  // Established: the handshake's ACKs of the first BATCH background connections, written fresh each call.
  const ackT = Array.from({ length: BATCH }, (_, c) => {
    const w = new Uint8Array(CONN_FRAME);
    writeConn(w, 0, c, n, ACK);
    return w;
  });
  const ackW = ackT.map((t) => new Uint8Array(t.length));
  const prepareEst = (): void => {
    for (let k = 0; k < BATCH; k++) ackW[k]!.set(ackT[k]!);
  };
  const runEst = (): void => {
    for (let k = 0; k < BATCH; k++) if (send(ackW[k]!, veth) !== NF_ACCEPT) throw new Error(`bench: ${mode}: established packet dropped`);
  };
  prepareEst();
  const r1 = evaluated();
  const l1 = nft ? nft.lookups : 0;
  runEst();
  const rulesPerEstablished = (evaluated() - r1) / BATCH;
  const nftLookupsPerEst = nft ? (nft.lookups - l1) / BATCH : 0;
  return {
    mode,
    rules: nft ? nft.c.nRules : path.rules.tables.reduce((a, t) => a + t.nRules, 0),
    rulesetBytes: b.text.length + b.extraBytes,
    newConn: timedTask(runNew, prepareNew, cleanupNew),
    established: timedTask(runEst, prepareEst),
    rulesPerNew,
    rulesPerEstablished,
    bytesPerCtEntry: conntrackEntryBytes(ct) + (ipvs ? tableEntryBytes(ipvs.conns, ipvs.conns.cap) : 0),
    syncMs,
    // nf_conntrack_in's lookup; IPVS adds its connection table (ip_vs_conn_in_get) and, for a new one, the service
    // hash; nftables adds the set and map lookups its rules made (nftables-eval.ts NftPath.lookups).
    lookupsPerNew: ipvs ? 3 : 1 + nftLookupsPerNew,
    lookupsPerEstablished: ipvs ? 2 : 1 + nftLookupsPerEst,
  };
}

/** One kube-proxy full sync (ms): the median of the setup's own build and a few more (none at >= 10k Services). */
export function syncMedianMs(cluster: Cluster, mode: KubeProxyMode, quick: boolean, first: number): number {
  if (quick || cluster.services.length >= 10_000) return first;
  const t = [first];
  for (let i = 0; i < 4; i++) t.push(medianMs(() => iptablesSync(cluster, mode), 1));
  return median(t);
}
