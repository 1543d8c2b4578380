// The FIB: routing tables with longest-prefix match and policy rules, as net/ipv4/fib_trie.c and fib_rules.c
// behave for what dataplanes configure. Each table keeps one Map per prefix length (key = masked destination as
// a signed 32-bit number, so V8 keeps it a small integer and a probe allocates nothing) and the prefix lengths in
// use, longest first, so a lookup is at most 33 Map probes.
import type { NetDevice } from "./device.js";
import { RT_SCOPE_UNIVERSE, RT_TABLE_DEFAULT, RT_TABLE_LOCAL, RT_TABLE_MAIN, RTN_UNICAST, RTPROT_BOOT } from "./constants.js";

export interface Route {
  table: number;
  /** RTN_UNICAST, RTN_LOCAL, RTN_BROADCAST, RTN_BLACKHOLE, RTN_UNREACHABLE, RTN_PROHIBIT */
  type: number;
  /** Destination network (masked). */
  dst: number;
  len: number;
  mask: number;
  /** Gateway (`via`), 0 for a directly connected route. */
  gw: number;
  /** Output device (`dev`); null only for blackhole/unreachable/prohibit. */
  dev: NetDevice | null;
  /** Preferred source (`src`), 0 if unset. */
  prefsrc: number;
  /** RT_SCOPE_*: host for local routes, link for connected routes, universe for the rest. */
  scope: number;
  /** RTPROT_*: kernel for routes the kernel adds with addresses, boot for `ip route add`. */
  proto: number;
  metric: number;
  /** `onlink`: the gateway is on the link even though no route says so (Flannel, Calico). */
  onlink: boolean;
}

export function makeRoute(p: Partial<Route> & { dst: number; len: number }): Route {
  const mask = p.len === 0 ? 0 : (0xffffffff << (32 - p.len)) >>> 0;
  return {
    table: p.table ?? RT_TABLE_MAIN,
    type: p.type ?? RTN_UNICAST,
    dst: (p.dst & mask) >>> 0,
    len: p.len,
    mask,
    gw: p.gw ?? 0,
    dev: p.dev ?? null,
    prefsrc: p.prefsrc ?? 0,
    scope: p.scope ?? RT_SCOPE_UNIVERSE,
    proto: p.proto ?? RTPROT_BOOT,
    metric: p.metric ?? 0,
    onlink: p.onlink ?? false,
  };
}

export class FibTable {
  /** buckets[len]: masked destination -> routes, lowest metric first. */
  private readonly buckets: Array<Map<number, Route[]>> = [];
  /** Prefix lengths with at least one route, longest first. */
  private lens: number[] = [];
  constructor(readonly id: number) {
    for (let i = 0; i <= 32; i++) this.buckets.push(new Map());
  }

  /** Longest-prefix match; among equal prefixes the lowest metric wins (fib_table_lookup). */
  lookup(ip: number): Route | null {
    const lens = this.lens;
    for (let i = 0; i < lens.length; i++) {
      const len = lens[i]!;
      const mask = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
      const arr = this.buckets[len]!.get(ip & mask);
      if (arr !== undefined) return arr[0]!;
    }
    return null;
  }

  /** Exact entry (same destination, length and, if given, metric). */
  find(dst: number, len: number, metric?: number): Route | undefined {
    const arr = this.buckets[len]!.get(dst | 0);
    if (arr === undefined) return undefined;
    return metric === undefined ? arr[0] : arr.find((r) => r.metric === metric);
  }

  insert(r: Route): void {
    const b = this.buckets[r.len]!;
    let arr = b.get(r.dst | 0);
    if (arr === undefined) {
      arr = [];
      b.set(r.dst | 0, arr);
      if (!this.lens.includes(r.len)) this.lens = [...this.lens, r.len].sort((x, y) => y - x);
    }
    let i = 0;
    while (i < arr.length && arr[i]!.metric <= r.metric) i++;
    arr.splice(i, 0, r);
  }

  remove(r: Route): boolean {
    const b = this.buckets[r.len]!;
    const arr = b.get(r.dst | 0);
    if (arr === undefined) return false;
    const i = arr.indexOf(r);
    if (i < 0) return false;
    arr.splice(i, 1);
    if (arr.length === 0) {
      b.delete(r.dst | 0);
      if (b.size === 0) this.lens = this.lens.filter((l) => l !== r.len);
    }
    return true;
  }

  /** Remove every route matching `pred` (a device going down, an address removed). */
  removeWhere(pred: (r: Route) => boolean): number {
    const victims = this.routes().filter(pred);
    for (const r of victims) this.remove(r);
    return victims.length;
  }

  /**
   * All routes in the order the kernel dumps them (fib_trie walk): by destination ascending, then longer prefixes
   * first for the same key (the leaf's alias list is sorted by suffix length), then by metric.
   */
  routes(): Route[] {
    const out: Route[] = [];
    for (const b of this.buckets) for (const arr of b.values()) out.push(...arr);
    return out.sort((a, b) => a.dst - b.dst || b.len - a.len || a.metric - b.metric);
  }
}

/** An `ip rule`: selector and the table to look up. */
export interface FibRule {
  priority: number;
  /** Source selector (`from`), len 0 = all. */
  src: number;
  srcLen: number;
  /** Destination selector (`to`). */
  dst: number;
  dstLen: number;
  /** Input interface name (`iif`), "" = any. */
  iif: string;
  /** `fwmark`/mask, mask 0 = any. */
  fwmark: number;
  fwmask: number;
  table: number;
}

export function defaultRules(): FibRule[] {
  const all = { src: 0, srcLen: 0, dst: 0, dstLen: 0, iif: "", fwmark: 0, fwmask: 0 };
  return [
    { priority: 0, table: RT_TABLE_LOCAL, ...all },
    { priority: 32766, table: RT_TABLE_MAIN, ...all },
    { priority: 32767, table: RT_TABLE_DEFAULT, ...all },
  ];
}

function prefixMatch(ip: number, net: number, len: number): boolean {
  if (len === 0) return true;
  const mask = (0xffffffff << (32 - len)) >>> 0;
  return ((ip & mask) >>> 0) === net;
}

/** fib_rules_lookup: rules by priority; a table without a match falls through to the next rule. */
export function fibRulesLookup(
  rules: FibRule[],
  tables: Map<number, FibTable>,
  dst: number,
  src: number,
  iifName: string,
  mark: number,
): Route | null {
  for (let i = 0; i < rules.length; i++) {
    const rule = rules[i]!;
    if (rule.srcLen !== 0 && !prefixMatch(src, rule.src, rule.srcLen)) continue;
    if (rule.dstLen !== 0 && !prefixMatch(dst, rule.dst, rule.dstLen)) continue;
    if (rule.iif !== "" && rule.iif !== iifName) continue;
    if (rule.fwmask !== 0 && ((mark & rule.fwmask) >>> 0) !== rule.fwmark) continue;
    const t = tables.get(rule.table);
    if (t === undefined) continue;
    const r = t.lookup(dst);
    if (r !== null) return r;
  }
  return null;
}
