// The two narrow interfaces other layers plug into the path: netfilter (iptables tables + conntrack, called at
// the five IPv4 hooks and by br_netfilter for bridged frames) and tc clsact (eBPF programs at each device's
// ingress and egress). Defaults accept everything so the model runs on its own.
import { NF_ACCEPT, NFPROTO_IPV4, TC_ACT_OK } from "./constants.js";
import type { NetDevice } from "./device.js";
import type { NetNamespace } from "./netns.js";
import type { Pkt } from "./pkt.js";

/**
 * struct nf_hook_state: which hook, in which namespace, with which devices. One object is reused for every call
 * (read it during the call; do not keep it).
 */
export class NfHookState {
  /** NF_INET_PRE_ROUTING .. NF_INET_POST_ROUTING */
  hook = 0;
  /** NFPROTO_IPV4, or NFPROTO_BRIDGE when br_netfilter runs the IPv4 hooks for a bridged frame. */
  pf = NFPROTO_IPV4;
  ns: NetNamespace | null = null;
  /** `-i`: input device (the bridge itself for bridged frames); null at OUTPUT/POSTROUTING for local packets. */
  in: NetDevice | null = null;
  /** `-o`: output device; null at PREROUTING/INPUT. */
  out: NetDevice | null = null;
  /** `-m physdev --physdev-in/--physdev-out`: bridge ports for bridged frames (br_netfilter). */
  physIn: NetDevice | null = null;
  physOut: NetDevice | null = null;
}

export interface NetfilterHooks {
  /**
   * Run every table registered at `state.hook` (raw, conntrack, mangle, nat, filter in priority order). The packet's
   * IPv4 header starts at `pkt.off + 14`; NAT rewrites bytes in place keeping checksums valid. Returns NF_ACCEPT,
   * NF_DROP or NF_STOLEN (consumed; the caller forgets the packet).
   */
  run(pkt: Pkt, state: NfHookState): number;
}

/** No tables: every hook accepts (a namespace without iptables rules). */
export const ACCEPT_ALL: NetfilterHooks = { run: () => NF_ACCEPT };

export interface TcHook {
  /**
   * A clsact program on `dev` at `dir` (TC_INGRESS / TC_EGRESS). The frame starts at `pkt.off` (Ethernet). Returns
   * TC_ACT_OK (continue), TC_ACT_SHOT (drop) or TC_ACT_REDIRECT with `pkt.redirectIfindex` and `pkt.redirectFlags`
   * (BPF_F_INGRESS, BPF_F_PEER) set, as bpf_redirect()/bpf_redirect_peer() do. Any other value continues (TC_ACT_UNSPEC).
   */
  run(pkt: Pkt, dev: NetDevice, dir: number): number;
}

export const TC_PASS: TcHook = { run: () => TC_ACT_OK };
