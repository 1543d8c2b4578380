// Conntrack throughput: established lookups at 10, 1k and 100k entries (bare tuple lookup and the whole
// nf_conntrack_in with the TCP tracker), lookup + DNAT rewrite with IP and TCP checksum updates, and new entries.
import { buildTcp, buildUdp } from "../src/packet/build.js";
import { Conntrack, ctIndex } from "../src/netfilter/conntrack.js";
import { natSetupInfo, NF_NAT_MANIP_DST, parseNatRange } from "../src/netfilter/nat.js";
import { natPacket } from "../src/netfilter/nat-packet.js";
import { runGroup, type BenchOptions } from "./harness.js";
import { compileRuleset } from "../src/netfilter/compile.js";
import { ConntrackPathHook } from "../src/netfilter/conntrack-hook.js";
import { AddrType } from "../src/netfilter/ctstate.js";
import type { EvalEnv } from "../src/netfilter/eval.js";
import { NetfilterPath, PathResult, type RouteEnv } from "../src/netfilter/hooks.js";
import { IfaceRegistry } from "../src/netfilter/iface.js";
import { PacketState } from "../src/netfilter/packet-state.js";
import { RecentTables } from "../src/netfilter/recent.js";
import { parseIptablesRestore } from "../src/netfilter/restore.js";
import { generateIptables } from "../src/k8s/kube-proxy/iptables.js";
import { iptablesSave } from "../src/k8s/kube-proxy/iptables-save.js";
import { parseIpv4 } from "../src/packet/addr.js";
import { Hook } from "../src/netfilter/tables.js";
import { syntheticCluster } from "./kube-proxy.bench.js";

const BATCH = 1024;
const L3 = 14;
const ACK = 0x10;
const SYN = 0x02;

function clientIp(k: number): number {
  return (0x0af40000 + k) >>> 0; // 10.244.x.y
}

/** A table with `n` established, assured TCP flows client:k → 10.96.0.10:80, DNATed to a pod. */
function populate(n: number): { ct: Conntrack; frames: Uint8Array[]; tuples: Uint32Array } {
  const ct = new Conntrack({ max: Math.max(1024, n * 2), buckets: Math.max(1024, n) });
  const dnat = parseNatRange("10.244.200.7:8080");
  const frames: Uint8Array[] = [];
  const tuples = new Uint32Array(BATCH * 3);
  for (let k = 0; k < n; k++) {
    const src = clientIp(k);
    const sport = 10000 + (k % 50000);
    const syn = buildTcp({ src, dst: "10.96.0.10", sport, dport: 80, flags: SYN, seq: 1 });
    let ref = ct.in(syn, L3, syn.length - L3);
    natSetupInfo(ct, ctIndex(ref), dnat, NF_NAT_MANIP_DST);
    ct.confirm(ref);
    const synack = buildTcp({ src: "10.244.200.7", dst: src, sport: 8080, dport: sport, flags: SYN | ACK, seq: 9, ack: 2 });
    ct.in(synack, L3, synack.length - L3);
    const ack = buildTcp({ src, dst: "10.96.0.10", sport, dport: 80, flags: ACK, seq: 2, ack: 10 });
    ref = ct.in(ack, L3, ack.length - L3);
    if (k < BATCH) frames.push(ack);
  }
  // The batch cycles over up to BATCH flows spread across the table.
  const stride = Math.max(1, Math.floor(n / BATCH));
  frames.length = 0;
  for (let b = 0; b < BATCH; b++) {
    const k = (b * stride) % n;
    const sport = 10000 + (k % 50000);
    frames.push(buildTcp({ src: clientIp(k), dst: "10.96.0.10", sport, dport: 80, flags: ACK, seq: 2, ack: 10 }));
    tuples[b * 3] = clientIp(k);
    tuples[b * 3 + 1] = 0x0a60000a;
    tuples[b * 3 + 2] = ((sport << 16) | 80) >>> 0;
  }
  return { ct, frames, tuples };
}

/**
 * The working copies of a batch of frames, restored from their templates before each send (NAT rewrites them):
 * every frame in a 64-byte slot of one buffer, restored as 16 32-bit words (TypedArray.set per 54-byte frame costs
 * a builtin call, ~15-30 ns, which is the bench's overhead, not the path's).
 */
class FrameCopies {
  static readonly SLOT = 64;
  private readonly tmpl: Int32Array;
  private readonly mem: Int32Array;
  /** Frame b's working copy (a view of its slot, the frame's length). */
  readonly work: Uint8Array[] = [];
  constructor(frames: Uint8Array[]) {
    const slot = FrameCopies.SLOT;
    this.tmpl = new Int32Array((frames.length * slot) / 4);
    this.mem = new Int32Array((frames.length * slot) / 4);
    frames.forEach((f, b) => {
      if (f.length > slot) throw new Error(`bench: a ${f.length}-byte frame does not fit a ${slot}-byte slot`);
      new Uint8Array(this.tmpl.buffer, b * slot, f.length).set(f);
      this.work.push(new Uint8Array(this.mem.buffer, b * slot, f.length));
    });
  }
  /** Frame b's working copy, restored from its template. */
  restore(b: number): Uint8Array {
    const m = this.mem;
    const t = this.tmpl;
    const o = b * 16; // SLOT / 4, written out (a loop costs a bounds check and a branch per word)
    m[o] = t[o]!; m[o + 1] = t[o + 1]!; m[o + 2] = t[o + 2]!; m[o + 3] = t[o + 3]!;
    m[o + 4] = t[o + 4]!; m[o + 5] = t[o + 5]!; m[o + 6] = t[o + 6]!; m[o + 7] = t[o + 7]!;
    m[o + 8] = t[o + 8]!; m[o + 9] = t[o + 9]!; m[o + 10] = t[o + 10]!; m[o + 11] = t[o + 11]!;
    m[o + 12] = t[o + 12]!; m[o + 13] = t[o + 13]!; m[o + 14] = t[o + 14]!; m[o + 15] = t[o + 15]!;
    return this.work[b]!;
  }
}

export default async function (opts: BenchOptions): Promise<void> {
  let sink = 0;
  for (const n of [10, 1000, 100_000]) {
    const { ct, frames, tuples } = populate(n);
    const work = frames.map((f) => new Uint8Array(f.length));
    await runGroup(
      `conntrack: established packets, ${n} entries`,
      [
        {
          name: "tuple lookup (hash + chain walk)",
          items: BATCH,
          fn: () => {
            for (let b = 0; b < BATCH; b++) sink ^= ct.lookup(tuples[b * 3]!, tuples[b * 3 + 1]!, tuples[b * 3 + 2]!, 6);
          },
        },
        {
          name: "nf_conntrack_in (parse, lookup, TCP tracker)",
          items: BATCH,
          fn: () => {
            for (let b = 0; b < BATCH; b++) {
              const f = frames[b]!;
              sink ^= ct.in(f, L3, f.length - L3);
            }
          },
        },
        {
          name: "frame copy only (baseline for the next)",
          items: BATCH,
          fn: () => {
            for (let b = 0; b < BATCH; b++) work[b]!.set(frames[b]!);
            sink ^= work[0]![20]!;
          },
        },
        {
          name: "copy + in + DNAT rewrite (IP + TCP csum)",
          items: BATCH,
          fn: () => {
            for (let b = 0; b < BATCH; b++) {
              const w = work[b]!;
              w.set(frames[b]!);
              const ref = ct.in(w, L3, w.length - L3);
              natPacket(ct, ref, NF_NAT_MANIP_DST, w, L3);
              sink ^= ref;
            }
          },
        },
      ],
      opts,
    );
  }

  // New connections: in + confirm of a fresh UDP flow, then deletion so the table stays at a steady size.
  const ct = new Conntrack({ max: 1 << 20, buckets: 1 << 16 });
  const news: Uint8Array[] = [];
  for (let b = 0; b < BATCH; b++) news.push(buildUdp({ src: clientIp(b), dst: "10.96.0.10", sport: 20000 + b, dport: 53, payload: new Uint8Array(8) }));
  // A steady background of 10k entries.
  for (let k = 0; k < 10_000; k++) {
    const f = buildUdp({ src: clientIp(100_000 + k), dst: "10.96.0.10", sport: 30000, dport: 53, payload: new Uint8Array(8) });
    ct.confirm(ct.in(f, L3, f.length - L3));
  }
  await runGroup(
    "conntrack: new entries (10k in table)",
    [
      {
        name: "in + confirm + delete (UDP)",
        items: BATCH,
        fn: () => {
          for (let b = 0; b < BATCH; b++) {
            const f = news[b]!;
            const ref = ct.confirm(ct.in(f, L3, f.length - L3));
            ct.kill(ctIndex(ref));
            sink ^= ref;
          }
        },
      },
    ],
    opts,
  );
  sink ^= await pathGroup(opts);
  sink ^= await kubeProxyGroup(opts);
  if (sink === 0.5) console.log(sink);
}

/** Established packets through NetfilterPath (DNAT, MASQUERADE, stateful FORWARD) with ConntrackPathHook. */
async function pathGroup(opts: BenchOptions): Promise<number> {
  const rules = [
    "*nat", ":PREROUTING ACCEPT [0:0]", ":INPUT ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]", ":POSTROUTING ACCEPT [0:0]",
    "-A PREROUTING -d 10.96.0.10/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.244.200.7:8080",
    "-A POSTROUTING -s 10.244.0.0/16 -o eth0 -j MASQUERADE", "COMMIT",
    "*filter", ":INPUT ACCEPT [0:0]", ":FORWARD DROP [0:0]", ":OUTPUT ACCEPT [0:0]",
    "-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
    "-A FORWARD -m conntrack --ctstate NEW -j ACCEPT", "COMMIT", "",
  ].join("\n");
  const ifaces = new IfaceRegistry();
  const recent = new RecentTables();
  const compiled = compileRuleset(parseIptablesRestore(rules), { ifaces, recent });
  const node = 0xc0a8010a;
  const env: EvalEnv & RouteEnv = {
    randomMatch: () => false,
    addrType: (a) => (a === node ? AddrType.LOCAL : AddrType.UNICAST),
    now: () => 0,
    recent,
    isLocal: (a) => a === node,
    masqueradeAddr: () => node,
  };
  const ct = new Conntrack({ max: 1 << 16, buckets: 1 << 14 });
  const hook = new ConntrackPathHook(ct);
  const path = new NetfilterPath(compiled, env, hook);
  const eth0 = ifaces.index("eth0");
  const p = new PacketState();
  const out = new PathResult();
  const send = (f: Uint8Array) => {
    hook.load(f, L3, p);
    p.iif = eth0;
    p.oif = eth0;
    return path.receive(p, out);
  };
  const tmpl: Uint8Array[] = [];
  for (let k = 0; k < BATCH; k++) {
    const src = clientIp(k);
    send(buildTcp({ src, dst: "10.96.0.10", sport: 20000 + k, dport: 80, flags: SYN, seq: 1 }));
    send(buildTcp({ src: "10.244.200.7", dst: node, sport: 8080, dport: 20000 + k, flags: SYN | ACK, seq: 9, ack: 2 }));
    tmpl.push(buildTcp({ src, dst: "10.96.0.10", sport: 20000 + k, dport: 80, flags: ACK, seq: 2, ack: 10 }));
  }
  const copies = new FrameCopies(tmpl);
  let sink = 0;
  await runGroup(
    `path: established packets through NetfilterPath + ConntrackPathHook (${BATCH} connections)`,
    [
      {
        name: "copy + PREROUTING/FORWARD/POSTROUTING + conntrack + DNAT/SNAT rewrite",
        items: BATCH,
        fn: () => {
          for (let b = 0; b < BATCH; b++) sink ^= send(copies.restore(b));
        },
      },
    ],
    opts,
  );
  return sink;
}

/**
 * The issue's figure: established packets through a whole kube-proxy ruleset (generateIptables for 10 .. 10k
 * Services, 3 endpoints each) on node-1: NetfilterPath + ConntrackPathHook, conntrack hit, filter chains, DNAT (and
 * for outside clients MASQUERADE) rewrite with checksums. 1024 connections to random Services, side by side.
 * Then the same packets' filter walk alone (FORWARD hook, ns per rule evaluated).
 */
export async function kubeProxyGroup(opts: BenchOptions): Promise<number> {
  const setups = [10, 100, 1000, 10_000].map(kubeProxySetup);
  // Let V8 optimise the shared path code on every setup before any clock starts (tinybench's warm-up is per task:
  // the group's first task otherwise pays the tier-up and deoptimisations the later setups trigger).
  for (let w = 0; w < 30; w++) for (const s of setups) { s.task.fn(); s.walk.fn(); }
  await runGroup("path: established packets through kube-proxy's ruleset (generateIptables), NetfilterPath + ConntrackPathHook", setups.map((s) => s.task), opts);
  const walks = await runGroup("path: the same packets' FORWARD walk alone (ns per rule evaluated)", setups.map((s) => s.walk), opts);
  process.stdout.write(`  FORWARD rules evaluated per established packet: ${setups.map((s, i) => `${s.services}: ${s.rulesPerPacket} (${walks[i]!.medianNs.toFixed(2)} ns/rule)`).join(", ")}\n`);
  return 0;
}

/** One Service count's established-packet task (exported for profiling). */
export function kubeProxyTask(services: number): { name: string; items: number; fn: () => void } {
  return kubeProxySetup(services).task;
}

/** One Service count's FORWARD-walk-only task (exported for profiling). */
export function kubeProxyWalk(services: number): { name: string; items: number; fn: () => void } {
  return kubeProxySetup(services).walk;
}

interface KubeProxySetup {
  services: number;
  task: { name: string; items: number; fn: () => void };
  /** The FORWARD hook for each packet's state as conntrack left it (items: rules evaluated). */
  walk: { name: string; items: number; fn: () => void };
  /** Rules evaluated per established packet at FORWARD. */
  rulesPerPacket: number;
}

function kubeProxySetup(services: number): KubeProxySetup {
  const nodeIp = parseIpv4("192.168.0.1");
  const cluster = syntheticCluster(services);
  const text = iptablesSave(generateIptables(cluster, { nodeName: "node-1", nodeIPs: ["192.168.0.1"], clusterCIDR: "10.244.0.0/16" }));
  const ifaces = new IfaceRegistry();
  const recent = new RecentTables();
  const compiled = compileRuleset(parseIptablesRestore(text), { ifaces, recent });
  const env: EvalEnv & RouteEnv = {
    randomMatch: () => false,
    addrType: (a) => (a === nodeIp ? AddrType.LOCAL : AddrType.UNICAST),
    now: () => 0,
    recent,
    isLocal: (a) => a === nodeIp,
    masqueradeAddr: () => nodeIp,
  };
  const ct = new Conntrack({ max: 1 << 16, buckets: 1 << 14 });
  const hook = new ConntrackPathHook(ct);
  const path = new NetfilterPath(compiled, env, hook);
  const eth0 = ifaces.index("eth0");
  const veth = ifaces.index("veth0");
  const p = new PacketState();
  const out = new PathResult();
  const send = (f: Uint8Array, iif: number, oif: number) => {
    hook.load(f, L3, p);
    p.iif = iif;
    p.oif = oif;
    return path.receive(p, out);
  };
  const tmpl: Uint8Array[] = [];
  const iifs = new Int32Array(BATCH);
  let x = 11;
  for (let k = 0; k < BATCH; k++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    const s = x % services;
    const vip = `10.96.${(s >> 8) & 255}.${s & 255}`;
    // Every 4th client is outside the cluster CIDR: KUBE-MARK-MASQ, then MASQUERADE in POSTROUTING.
    const outside = k % 4 === 0;
    const src = outside ? `192.168.7.${1 + (k & 127)}` : `10.244.1.${2 + (k & 127)}`;
    const sport = 20000 + k;
    iifs[k] = outside ? eth0 : veth;
    const syn = buildTcp({ src, dst: vip, sport, dport: 80, flags: SYN, seq: 1 });
    if (send(syn, iifs[k]!, eth0) !== 1) throw new Error("bench: SYN dropped");
    const l = L3;
    const back = buildTcp({ src: `${syn[l + 16]}.${syn[l + 17]}.${syn[l + 18]}.${syn[l + 19]}`, dst: `${syn[l + 12]}.${syn[l + 13]}.${syn[l + 14]}.${syn[l + 15]}`,
      sport: (syn[l + 22]! << 8) | syn[l + 23]!, dport: (syn[l + 20]! << 8) | syn[l + 21]!, flags: SYN | ACK, seq: 9, ack: 2 });
    send(back, eth0, iifs[k]!);
    tmpl.push(buildTcp({ src, dst: vip, sport, dport: 80, flags: ACK, seq: 2, ack: 10 }));
  }
  const copies = new FrameCopies(tmpl);
  // Each established packet's state at the FORWARD hook (after conntrack and its DNAT), for the walk-only task.
  const st = new Float64Array(BATCH * 8);
  let fwdRules = 0;
  for (let b = 0; b < BATCH; b++) {
    const w = copies.restore(b);
    hook.load(w, L3, p);
    p.iif = iifs[b]!;
    p.oif = eth0;
    if (!path.hook(Hook.PREROUTING, p, out)) throw new Error("bench: established packet dropped in PREROUTING");
    const o = b * 8;
    st.set([p.src, p.dst, p.sport, p.dport, p.ctState, p.iif, p.oif, p.len], o);
    const r0 = path.result.rulesEvaluated;
    if (!path.hook(Hook.FORWARD, p, out)) throw new Error("bench: established packet dropped in FORWARD");
    fwdRules += path.result.rulesEvaluated - r0;
    hook.setPacket(w, L3); // not confirmed: the entry is confirmed already, nothing to free
  }
  const filterRules = fwdRules / BATCH;
  const name = `${services} Services (${compiled.tables.reduce((a, t) => a + t.nRules, 0)} rules)`;
  return {
    services,
    rulesPerPacket: filterRules,
    task: {
      name,
      items: BATCH,
      fn: () => {
        for (let b = 0; b < BATCH; b++) {
          if (send(copies.restore(b), iifs[b]!, eth0) !== 1) throw new Error("bench: established packet dropped");
        }
      },
    },
    walk: {
      name: `${name}, ${filterRules} rules per packet`,
      items: BATCH * filterRules,
      fn: () => {
        for (let b = 0; b < BATCH; b++) {
          const o = b * 8;
          // As integers, as the path writes them: a Float64Array element stored as is would turn these fields of
          // PacketState (shared by every instance) into boxed doubles, which the established-packet task above
          // then pays for.
          p.src = st[o]! >>> 0;
          p.dst = st[o + 1]! >>> 0;
          p.sport = st[o + 2]! | 0;
          p.dport = st[o + 3]! | 0;
          p.ctState = st[o + 4]! | 0;
          p.iif = st[o + 5]! | 0;
          p.oif = st[o + 6]! | 0;
          p.len = st[o + 7]! | 0;
          p.mark = 0;
          if (!path.hook(Hook.FORWARD, p, out)) throw new Error("bench: established packet dropped");
        }
      },
    },
  };
}
