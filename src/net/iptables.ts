// The real netfilter model (src/netfilter: compiled iptables tables walked by NetfilterPath, conntrack and NAT by
// ConntrackPathHook) behind the kernel model's NetfilterHooks interface, one instance per namespace:
//
//   ns.netfilter = new IptablesHooks(ns, iptablesSaveText);
//
// The kernel model calls one hook at a time; this adapter keeps the packet's PacketState and conntrack reference
// from the first hook of the namespace's path (PREROUTING or OUTPUT) to the last (INPUT or POSTROUTING), where the
// connection is confirmed, as __nf_conntrack_confirm runs at the last hook. A DNAT decided by the nat table is
// written to the bytes right away (kernel: nf_nat_ipv4_fn at NF_INET_PRE_ROUTING/LOCAL_OUT) so routing sees the
// new destination; REJECT sends its ICMP error or TCP reset from this namespace.
import { compileRuleset } from "../netfilter/compile.js";
import { Conntrack } from "../netfilter/conntrack.js";
import { ConntrackPathHook } from "../netfilter/conntrack-hook.js";
import { AddrType } from "../netfilter/ctstate.js";
import { NF_ACCEPT as NFM_ACCEPT, NF_REJECT, type EvalEnv } from "../netfilter/eval.js";
import { NetfilterPath, PathResult, type RouteEnv } from "../netfilter/hooks.js";
import { IfaceRegistry } from "../netfilter/iface.js";
import { PacketState, PhysFlag } from "../netfilter/packet-state.js";
import { RecentTables } from "../netfilter/recent.js";
import { parseIptablesRestore } from "../netfilter/restore.js";
import { csumReplace16, csumReplace32, get16, get32, set16, set32 } from "../packet/checksum.js";
import {
  ICMP_DEST_UNREACH,
  IPPROTO_TCP,
  IPPROTO_UDP,
  NF_ACCEPT,
  NF_DROP,
  NF_INET_LOCAL_IN,
  NF_INET_LOCAL_OUT,
  NF_INET_POST_ROUTING,
  NF_INET_PRE_ROUTING,
  NFPROTO_BRIDGE,
  RT_SCOPE_UNIVERSE,
  RTN_BROADCAST,
  RTN_LOCAL,
} from "./constants.js";
import type { NetDevice } from "./device.js";
import type { NfHookState, NetfilterHooks } from "./hooks.js";
import { icmpSend } from "./icmp.js";
import { tcpSendReset } from "./local.js";
import type { NetNamespace } from "./netns.js";
import type { Pkt } from "./pkt.js";

/** REJECT --reject-with (REJECT_CODES order) -> ICMP destination-unreachable code; -1 = tcp-reset. */
const REJECT_ICMP_CODE = [0, 1, 2, 3, 9, 10, -1, 13];

export class IptablesHooks implements NetfilterHooks {
  readonly ifaces = new IfaceRegistry();
  readonly recent = new RecentTables();
  readonly conntrack: Conntrack;
  readonly ctHook: ConntrackPathHook;
  readonly path: NetfilterPath;
  private readonly p = new PacketState();
  private readonly out = new PathResult();
  /** ifindex -> IfaceRegistry index (names registered once per device). */
  private readonly regIndex: number[] = [];
  /** Random source for `statistic --mode random` (seeded, so runs repeat). */
  private rand: () => number;

  constructor(
    readonly ns: NetNamespace,
    rules: string,
    opts: { conntrack?: Conntrack; random?: () => number } = {},
  ) {
    const compiled = compileRuleset(parseIptablesRestore(rules), { ifaces: this.ifaces, recent: this.recent });
    this.rand = opts.random ?? seeded(ns.world.seed * 7919 + ns.id);
    const env: EvalEnv & RouteEnv = {
      randomMatch: (stored) => Math.floor(this.rand() * 0x80000000) < stored,
      addrType: (addr) => addrTypeBit(ns.addrType(addr)),
      now: () => ns.world.now,
      recent: this.recent,
      isLocal: (addr) => ns.isLocalAddr(addr),
      masqueradeAddr: (oif, dst) => {
        const name = this.ifaces.names[oif];
        const dev = name === undefined ? undefined : ns.byName.get(name);
        return ns.selectSrc(dev ?? null, dst, RT_SCOPE_UNIVERSE);
      },
    };
    this.conntrack = opts.conntrack ?? new Conntrack();
    this.ctHook = new ConntrackPathHook(this.conntrack);
    this.path = new NetfilterPath(compiled, env, this.ctHook);
  }

  private idx(dev: NetDevice | null): number {
    if (dev === null) return 0;
    let i = this.regIndex[dev.ifindex];
    if (i === undefined || this.ifaces.names[i] !== dev.name) {
      i = this.ifaces.index(dev.name);
      this.regIndex[dev.ifindex] = i;
    }
    return i;
  }

  run(pkt: Pkt, st: NfHookState): number {
    const p = this.p;
    const out = this.out;
    const buf = pkt.buf;
    const l3 = pkt.off + 14;
    const end = pkt.off + pkt.len;
    const first = st.hook === NF_INET_PRE_ROUTING || st.hook === NF_INET_LOCAL_OUT;
    if (first) {
      this.ctHook.setPacket(buf.subarray(0, end), l3);
      p.reset();
      out.reset();
    }
    const before = get32(buf, l3 + 16);
    const beforePort = portOf(buf, l3);
    p.fromIpv4(buf, l3, end);
    p.mark = pkt.mark;
    p.iif = this.idx(st.in);
    p.oif = this.idx(st.out);
    if (st.pf === NFPROTO_BRIDGE) {
      p.physIn = this.idx(st.physIn);
      p.physOut = this.idx(st.physOut);
      p.physFlags = PhysFlag.BRIDGED | (st.physIn !== null ? PhysFlag.IN : 0) | (st.physOut !== null ? PhysFlag.OUT : 0);
    } else {
      p.physIn = p.physOut = p.physFlags = 0;
    }
    if (this.ctHook.dropped) return NF_DROP;
    const ok = this.path.hook(st.hook, p, out);
    pkt.mark = p.mark;
    if (this.ctHook.dropped) return NF_DROP;
    if (!ok) {
      // The error is sent before returning; it walks this namespace's OUTPUT hooks re-entrantly, so nothing of
      // this packet's state is read after it.
      if (out.verdict === NF_REJECT) this.reject(pkt, st, out.rejectWith);
      return NF_DROP;
    }
    // A DNAT the nat table just decided: into the bytes now, so the routing decision sees it.
    if (first && out.dnat && (get32(buf, l3 + 16) !== out.dnatIp || (beforePort >= 0 && beforePort !== out.dnatPort))) {
      rewriteDst(buf, l3, out.dnatIp, out.dnatPort);
    }
    void before;
    if (st.hook === NF_INET_LOCAL_IN || st.hook === NF_INET_POST_ROUTING) {
      this.ctHook.confirm(p, out);
      if (out.verdict !== NFM_ACCEPT) return NF_DROP;
      pkt.ct = this.ctHook.ref;
    }
    return NF_ACCEPT;
  }

  /** The REJECT target: ipt_REJECT's nf_send_unreach (icmp_send) or nf_send_reset. */
  private reject(pkt: Pkt, st: NfHookState, code: number): void {
    const c = REJECT_ICMP_CODE[code] ?? 3;
    const l3 = pkt.off + 14;
    if (c < 0) {
      if (pkt.buf[l3 + 9] === IPPROTO_TCP) tcpSendReset(this.ns, pkt);
      return;
    }
    icmpSend(this.ns, pkt, ICMP_DEST_UNREACH, c, 0, st.in);
  }
}

function addrTypeBit(rtn: number): number {
  if (rtn === RTN_LOCAL) return AddrType.LOCAL;
  if (rtn === RTN_BROADCAST) return AddrType.BROADCAST;
  if (rtn === 5) return AddrType.MULTICAST;
  return AddrType.UNICAST;
}

function portOf(buf: Uint8Array, l3: number): number {
  const proto = buf[l3 + 9];
  if (proto !== IPPROTO_TCP && proto !== IPPROTO_UDP) return -1;
  return get16(buf, l3 + (buf[l3]! & 15) * 4 + 2);
}

/** Destination address (and port for TCP/UDP) rewritten with incremental checksum fixes (RFC 1624). */
function rewriteDst(buf: Uint8Array, l3: number, ip: number, port: number): void {
  const old = get32(buf, l3 + 16);
  set32(buf, l3 + 16, ip);
  set16(buf, l3 + 10, csumReplace32(get16(buf, l3 + 10), old, ip));
  const proto = buf[l3 + 9];
  if (proto !== IPPROTO_TCP && proto !== IPPROTO_UDP) return;
  const l4 = l3 + (buf[l3]! & 15) * 4;
  const csumOff = proto === IPPROTO_TCP ? l4 + 16 : l4 + 6;
  const oldPort = get16(buf, l4 + 2);
  const newPort = port === 0 ? oldPort : port;
  set16(buf, l4 + 2, newPort);
  if (proto === IPPROTO_UDP && get16(buf, csumOff) === 0) return;
  let c = csumReplace32(get16(buf, csumOff), old, ip);
  c = csumReplace16(c, oldPort, newPort);
  if (proto === IPPROTO_UDP && c === 0) c = 0xffff;
  set16(buf, csumOff, c);
}

/** mulberry32: a small seeded generator for `statistic --mode random`. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
