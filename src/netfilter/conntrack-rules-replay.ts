// Replaying captured frames through an iptables ruleset (NetfilterPath from hooks.ts) with the conntrack + NAT model
// behind it (ConntrackPathHook): the same box as conntrack-replay.ts, but NAT and filtering come from real
// `iptables-save` rules, e.g. kube-proxy's. Packets from a local address take the OUTPUT path, others PREROUTING;
// a local destination goes to INPUT, any other to FORWARD (the `tcbox trace` conventions).
import { get16 } from "../packet/checksum.js";
import { compileRuleset } from "./compile.js";
import { Conntrack } from "./conntrack.js";
import { ConntrackPathHook } from "./conntrack-hook.js";
import { AddrType } from "./ctstate.js";
import { NF_ACCEPT, type EvalEnv } from "./eval.js";
import { NetfilterPath, PathResult, type RouteEnv } from "./hooks.js";
import { IfaceRegistry } from "./iface.js";
import { PacketState } from "./packet-state.js";
import { RecentTables } from "./recent.js";
import type { Ruleset } from "./rule.js";

export interface RulesReplayOptions {
  /** This box's addresses (127.0.0.0/8 is always local); the first non-loopback one is MASQUERADE's. */
  localIps: number[];
  /** Input device of received packets (default eth0) and output device of forwarded ones (default eth0). */
  iif?: string;
  oif?: string;
  /** Seed for `-m statistic --mode random` draws. */
  seed?: number;
}

export interface RulesReplayStats {
  frames: number;
  ipv4: number;
  accepted: number;
  dropped: number;
}

export class ConntrackRulesReplay {
  readonly stats: RulesReplayStats = { frames: 0, ipv4: 0, accepted: 0, dropped: 0 };
  private readonly path: NetfilterPath;
  private readonly hook: ConntrackPathHook;
  private readonly p = new PacketState();
  private readonly out = new PathResult();
  private readonly locals: Set<number>;
  private readonly iif: number;
  private readonly oif: number;
  private readonly lo: number;
  private t0 = -1;

  constructor(
    readonly ct: Conntrack,
    rs: Ruleset,
    opts: RulesReplayOptions,
  ) {
    const ifaces = new IfaceRegistry();
    const recent = new RecentTables();
    const compiled = compileRuleset(rs, { ifaces, recent });
    this.locals = new Set(opts.localIps);
    const masq = opts.localIps.find((a) => a >>> 24 !== 127) ?? 0x7f000001;
    let seed = (opts.seed ?? 1) >>> 0 || 1;
    const isLocal = (a: number) => a >>> 24 === 127 || this.locals.has(a);
    const env: EvalEnv & RouteEnv = {
      // kernel xt_statistic: (get_random_u32() & 0x7fffffff) < probability (a seeded xorshift here)
      randomMatch: (stored) => {
        seed ^= seed << 13;
        seed >>>= 0;
        seed ^= seed >>> 17;
        seed ^= seed << 5;
        seed >>>= 0;
        return (seed & 0x7fffffff) < stored;
      },
      addrType: (a) => (isLocal(a) ? AddrType.LOCAL : a === 0xffffffff ? AddrType.BROADCAST : a >>> 28 === 14 ? AddrType.MULTICAST : AddrType.UNICAST),
      now: () => this.ct.now,
      recent,
      isLocal,
      masqueradeAddr: () => masq,
    };
    this.hook = new ConntrackPathHook(ct);
    this.path = new NetfilterPath(compiled, env, this.hook);
    this.iif = ifaces.index(opts.iif ?? "eth0");
    this.oif = ifaces.index(opts.oif ?? "eth0");
    this.lo = ifaces.index("lo");
  }

  /** One Ethernet frame captured at `tsSeconds`. NAT rewrites it in place. */
  frame(f: Uint8Array, tsSeconds: number): void {
    this.stats.frames++;
    if (f.length < 14) return;
    let l3 = 14;
    let type = get16(f, 12);
    if (type === 0x8100 && f.length >= 18) {
      type = get16(f, 16);
      l3 = 18;
    }
    if (type !== 0x0800) return;
    const p = this.p;
    p.reset();
    if (!p.fromIpv4(f, l3)) return;
    this.stats.ipv4++;
    if (this.t0 < 0) this.t0 = tsSeconds;
    this.ct.setTime(tsSeconds - this.t0);
    this.hook.setPacket(f, l3);
    const local = (a: number) => a >>> 24 === 127 || this.locals.has(a);
    p.oif = local(p.dst) ? this.lo : this.oif;
    let v: number;
    if (local(p.src)) v = this.path.output(p, this.out);
    else {
      p.iif = this.iif;
      v = this.path.receive(p, this.out);
    }
    if (v === NF_ACCEPT && !this.hook.dropped) this.stats.accepted++;
    else this.stats.dropped++;
  }

  /** The last packet is done: free its entry if it was dropped before confirmation. */
  finish(): void {
    this.hook.setPacket(new Uint8Array(0), 0);
  }

  /** Seconds since the first frame (the model's clock). */
  elapsed(tsSeconds: number): number {
    return this.t0 < 0 ? 0 : tsSeconds - this.t0;
  }
}
