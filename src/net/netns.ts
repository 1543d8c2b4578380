// struct net: one network namespace with its devices (ifindex unique per namespace, lo = 1), IPv4 addresses,
// routing tables and rules, neighbour table, sysctls, port space and netfilter hooks. Setup methods validate
// as the kernel does and throw NetError; the per-packet code lives in ipv4.ts, arp.ts, icmp.ts.
import { formatCidr, formatIpv4 } from "../packet/addr.js";
import {
  EINVAL,
  LinkKind,
  ENETUNREACH,
  RT_SCOPE_HOST,
  RT_SCOPE_LINK,
  RT_SCOPE_UNIVERSE,
  RT_TABLE_LOCAL,
  RT_TABLE_MAIN,
  RTN_BROADCAST,
  RTN_LOCAL,
  RTN_UNICAST,
  RTPROT_KERNEL,
} from "./constants.js";
import { LoopbackDevice, type NetDevice } from "./device.js";
import type { BridgeDevice } from "./bridge.js";
import { NetError } from "./error.js";
import { ACCEPT_ALL, NfHookState, type NetfilterHooks } from "./hooks.js";
import { NeighTable } from "./neigh.js";
import { FibTable, defaultRules, fibRulesLookup, makeRoute, type FibRule, type Route } from "./route.js";
import { SocketTable, type Socket } from "./sockets.js";
import type { World } from "./world.js";

export interface InetAddr {
  dev: NetDevice;
  addr: number;
  len: number;
  /** Broadcast address, 0 if none was given (`brd +` computes it). */
  brd: number;
  scope: number;
  /** Not the first address of its subnet on the device (IFA_F_SECONDARY). */
  secondary: boolean;
}

export interface Sysctls {
  /** net.ipv4.ip_forward (0 in a new namespace). */
  ipForward: boolean;
  /** net.ipv4.conf.all.route_localnet: accept 127/8 from the wire (kube-proxy sets it for NodePort on localhost). */
  routeLocalnet: boolean;
  /** net.bridge.bridge-nf-call-iptables: bridged IPv4 traverses iptables (br_netfilter; Kubernetes requires 1). */
  bridgeNfCallIptables: boolean;
  /** net.ipv4.conf.all.rp_filter: 0 off, 1 strict, 2 loose (max of all and the device applies). */
  rpFilter: number;
}

export interface RouteSpec {
  dst: number;
  len: number;
  type?: number;
  gw?: number;
  dev?: NetDevice | null;
  prefsrc?: number;
  scope?: number;
  proto?: number;
  metric?: number;
  onlink?: boolean;
  table?: number;
}

export class NetNamespace {
  readonly devices: Array<NetDevice | undefined> = [];
  readonly byName = new Map<string, NetDevice>();
  private nextIfindex = 1;
  readonly addrs: InetAddr[] = [];
  readonly tables = new Map<number, FibTable>();
  rules: FibRule[] = defaultRules();
  readonly neigh = new NeighTable();
  readonly sysctl: Sysctls = { ipForward: false, routeLocalnet: false, bridgeNfCallIptables: false, rpFilter: 0 };
  readonly sockets = new SocketTable();
  /** iptables tables and conntrack of this namespace (helper modules install theirs). */
  netfilter: NetfilterHooks = ACCEPT_ALL;
  /** Reused for every hook call. */
  readonly nfState = new NfHookState();
  readonly lo: LoopbackDevice;
  /** IPv4 id counter for locally generated packets. */
  ipId = 1;

  constructor(
    readonly world: World,
    readonly id: number,
    readonly name: string,
  ) {
    this.tables.set(RT_TABLE_LOCAL, new FibTable(RT_TABLE_LOCAL));
    this.tables.set(RT_TABLE_MAIN, new FibTable(RT_TABLE_MAIN));
    this.lo = new LoopbackDevice(this);
    this.registerDevice(this.lo);
  }

  // ---- devices ----

  /** Give a device an ifindex in this namespace (keeping `wanted` when free, as dev_change_net_namespace does). */
  registerDevice(dev: NetDevice, wanted = 0): void {
    if (this.byName.has(dev.name)) throw new NetError(`device ${dev.name} already exists`, `${this.name}/${dev.name}`, 17);
    let idx = wanted > 0 && this.devices[wanted] === undefined ? wanted : 0;
    if (idx === 0) {
      while (this.devices[this.nextIfindex] !== undefined) this.nextIfindex++;
      idx = this.nextIfindex++;
    }
    dev.ns = this;
    dev.ifindex = idx;
    this.devices[idx] = dev;
    this.byName.set(dev.name, dev);
  }

  unregisterDevice(dev: NetDevice): void {
    this.setLink(dev, false);
    for (let i = this.addrs.length - 1; i >= 0; i--) if (this.addrs[i]!.dev === dev) this.delAddress(dev, this.addrs[i]!.addr, this.addrs[i]!.len);
    for (const t of this.tables.values()) t.removeWhere((r) => r.dev === dev);
    this.devices[dev.ifindex] = undefined;
    this.byName.delete(dev.name);
  }

  /** ip link set DEV netns OTHER: addresses and routes are flushed, the ifindex kept if free there. */
  moveDevice(dev: NetDevice, to: NetNamespace): void {
    const wasUp = dev.up;
    if (dev.master !== null) dev.master.removePort(dev);
    this.unregisterDevice(dev);
    to.registerDevice(dev, dev.ifindex);
    dev.up = false;
    void wasUp; // the kernel brings a moved device down
  }

  rename(dev: NetDevice, name: string): void {
    if (this.byName.has(name)) throw new NetError(`device ${name} already exists`, `${this.name}/${dev.name}`, 17);
    this.byName.delete(dev.name);
    dev.name = name;
    this.byName.set(name, dev);
  }

  /** ip link set DEV address MAC: the bridge's local FDB entries follow (br_fdb_change_mac_address). */
  setMac(dev: NetDevice, mac: number): void {
    const br = dev.kind === LinkKind.BRIDGE ? (dev as BridgeDevice) : dev.master;
    if (br !== null) {
      const e = br.fdb.get(dev.mac);
      if (e !== undefined && e.isLocal && e.port === dev) {
        br.fdb.delete(dev.mac);
        br.fdb.set(mac, { ...e, mac });
      }
    }
    dev.mac = mac;
  }

  dev(name: string): NetDevice {
    const d = this.byName.get(name);
    if (d === undefined) throw new NetError(`Cannot find device "${name}"`, this.name, 19);
    return d;
  }

  devByIndex(ifindex: number): NetDevice | undefined {
    return this.devices[ifindex];
  }

  deviceList(): NetDevice[] {
    return this.devices.filter((d): d is NetDevice => d !== undefined);
  }

  /** ip link set DEV up|down: routes follow (fib_add_ifaddr on up; fib_disable_ip flushes the device's routes on down). */
  setLink(dev: NetDevice, up: boolean): void {
    if (dev.up === up) return;
    dev.up = up;
    // inetdev_event(NETDEV_UP): the loopback device gets 127.0.0.1/8 the first time it comes up.
    if (up && dev === this.lo && !this.addrs.some((a) => a.dev === dev)) {
      this.addAddress(dev, 0x7f000001, 8, { scope: RT_SCOPE_HOST });
      return;
    }
    if (up) {
      for (const a of this.addrs) if (a.dev === dev) this.addAddrRoutes(a);
    } else {
      this.mainLike((t) => t.removeWhere((r) => r.dev === dev && r.type !== RTN_LOCAL));
      for (const p of this.neigh.flushDev(dev)) this.world.free(p);
    }
  }

  private mainLike(fn: (t: FibTable) => void): void {
    for (const t of this.tables.values()) fn(t);
  }

  /** bind(2) in this namespace; throws NetError EADDRINUSE on a conflict. */
  bind(proto: number, addr: number, port: number, owner = ""): Socket {
    return this.sockets.bind(this, proto, addr, port, owner);
  }

  // ---- addresses ----

  /** ip addr add ADDR/LEN dev DEV [brd +|ADDR] [scope S]: adds the kernel's local, broadcast and prefix routes. */
  addAddress(dev: NetDevice, addr: number, len: number, opts: { brd?: number | "+"; scope?: number } = {}): InetAddr {
    if (this.addrs.some((a) => a.dev === dev && a.addr === addr && a.len === len)) {
      throw new NetError(`address ${formatIpv4(addr)}/${len} already assigned`, dev.where, 17);
    }
    const mask = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
    const brd = opts.brd === "+" ? (len < 31 ? (addr | ~mask) >>> 0 : 0) : (opts.brd ?? 0);
    // iproute2 gives 127/8 addresses host scope by default.
    const scope = opts.scope ?? ((addr >>> 24) === 127 ? RT_SCOPE_HOST : RT_SCOPE_UNIVERSE);
    const secondary = this.addrs.some((a) => a.dev === dev && a.len === len && ((a.addr & mask) >>> 0) === ((addr & mask) >>> 0));
    const ia: InetAddr = { dev, addr, len, brd, scope, secondary };
    this.addrs.push(ia);
    // fib_add_ifaddr: the local route always; the rest only when the device is up.
    this.localTable().insert(
      makeRoute({ table: RT_TABLE_LOCAL, type: RTN_LOCAL, dst: addr, len: 32, dev, prefsrc: addr, scope: RT_SCOPE_HOST, proto: RTPROT_KERNEL }),
    );
    if (dev.up) this.addAddrRoutes(ia);
    return ia;
  }

  private addAddrRoutes(a: InetAddr): void {
    if (a.secondary) return;
    const mask = a.len === 0 ? 0 : (0xffffffff << (32 - a.len)) >>> 0;
    const prefix = (a.addr & mask) >>> 0;
    const isLo = a.dev === this.lo;
    const local = this.localTable();
    if (local.find(a.addr, 32) === undefined) {
      local.insert(makeRoute({ table: RT_TABLE_LOCAL, type: RTN_LOCAL, dst: a.addr, len: 32, dev: a.dev, prefsrc: a.addr, scope: RT_SCOPE_HOST, proto: RTPROT_KERNEL }));
    }
    if (a.brd !== 0 && a.brd !== 0xffffffff && local.find(a.brd, 32) === undefined) {
      local.insert(makeRoute({ table: RT_TABLE_LOCAL, type: RTN_BROADCAST, dst: a.brd, len: 32, dev: a.dev, prefsrc: a.addr, scope: RT_SCOPE_LINK, proto: RTPROT_KERNEL }));
    }
    if (prefix !== a.addr || a.len < 32) {
      if (isLo) {
        if (local.find(prefix, a.len) === undefined)
          local.insert(makeRoute({ table: RT_TABLE_LOCAL, type: RTN_LOCAL, dst: prefix, len: a.len, dev: a.dev, prefsrc: a.addr, scope: RT_SCOPE_HOST, proto: RTPROT_KERNEL }));
      } else {
        this.mainTable().insert(makeRoute({ type: RTN_UNICAST, dst: prefix, len: a.len, dev: a.dev, prefsrc: a.addr, scope: RT_SCOPE_LINK, proto: RTPROT_KERNEL }));
      }
      // fib_add_ifaddr: the subnet broadcast route when the prefix leaves room for one.
      if (a.len < 31) {
        const bcast = (prefix | ~mask) >>> 0;
        if (local.find(bcast, 32) === undefined)
          local.insert(makeRoute({ table: RT_TABLE_LOCAL, type: RTN_BROADCAST, dst: bcast, len: 32, dev: a.dev, prefsrc: a.addr, scope: RT_SCOPE_LINK, proto: RTPROT_KERNEL }));
      }
    }
  }

  delAddress(dev: NetDevice, addr: number, len: number): void {
    const i = this.addrs.findIndex((a) => a.dev === dev && a.addr === addr && a.len === len);
    if (i < 0) throw new NetError(`address ${formatIpv4(addr)}/${len} not assigned`, dev.where, 99);
    this.addrs.splice(i, 1);
    for (const t of this.tables.values()) t.removeWhere((r) => r.dev === dev && r.proto === RTPROT_KERNEL && r.prefsrc === addr);
    // Re-add routes still owed to the remaining addresses on the device.
    if (dev.up) for (const a of this.addrs) if (a.dev === dev) this.addAddrRoutes(a);
    else for (const a of this.addrs) if (a.dev === dev) this.localTable().find(a.addr, 32) ?? this.localTable().insert(makeRoute({ table: RT_TABLE_LOCAL, type: RTN_LOCAL, dst: a.addr, len: 32, dev, prefsrc: a.addr, scope: RT_SCOPE_HOST, proto: RTPROT_KERNEL }));
  }

  addrsOf(dev: NetDevice): InetAddr[] {
    return this.addrs.filter((a) => a.dev === dev);
  }

  // ---- routes ----

  table(id: number): FibTable {
    let t = this.tables.get(id);
    if (t === undefined) {
      t = new FibTable(id);
      this.tables.set(id, t);
    }
    return t;
  }
  mainTable(): FibTable {
    return this.tables.get(RT_TABLE_MAIN)!;
  }
  localTable(): FibTable {
    return this.tables.get(RT_TABLE_LOCAL)!;
  }

  /**
   * ip route add|replace|append: checks the kernel makes (fib_check_nh): the device is up, and a gateway without
   * `onlink` is reachable through a link-scope route (on the given device if one is given).
   */
  addRoute(spec: RouteSpec, mode: "add" | "replace" | "append" = "add"): Route {
    const where = `${this.name}: ip route ${mode} ${formatCidr({ addr: spec.dst, len: spec.len })}`;
    const type = spec.type ?? RTN_UNICAST;
    let dev = spec.dev ?? null;
    const gw = spec.gw ?? 0;
    if (type === RTN_UNICAST || type === RTN_LOCAL) {
      if (gw !== 0 && !spec.onlink) {
        const r = this.mainTable().lookup(gw) ?? this.localTable().lookup(gw);
        if (r === null || r.gw !== 0 || r.dev === null || (dev !== null && r.dev !== dev) || (r.type !== RTN_UNICAST && r.type !== RTN_LOCAL)) {
          throw new NetError("Nexthop has invalid gateway.", where, ENETUNREACH);
        }
        dev = r.dev;
      }
      if (dev === null) throw new NetError("Device for nexthop is not up.", where, EINVAL);
      if (!dev.up) throw new NetError("Nexthop device is not up.", where, 100);
      if (spec.onlink && gw !== 0 && !dev.up) throw new NetError("Nexthop device is not up.", where, 100);
    }
    const scope = spec.scope ?? (type === RTN_LOCAL ? RT_SCOPE_HOST : gw === 0 && type === RTN_UNICAST ? RT_SCOPE_LINK : RT_SCOPE_UNIVERSE);
    const r = makeRoute({ ...spec, type, gw, dev, scope, table: spec.table ?? (type === RTN_LOCAL ? RT_TABLE_LOCAL : RT_TABLE_MAIN) });
    const t = this.table(r.table);
    const existing = t.find(r.dst, r.len, r.metric);
    if (existing !== undefined) {
      if (mode === "add") throw new NetError("File exists", where, 17);
      if (mode === "replace") t.remove(existing);
    }
    t.insert(r);
    return r;
  }

  delRoute(spec: { dst: number; len: number; table?: number; metric?: number }): void {
    const t = this.table(spec.table ?? RT_TABLE_MAIN);
    const r = t.find(((spec.dst & (spec.len === 0 ? 0 : (0xffffffff << (32 - spec.len)) >>> 0)) >>> 0), spec.len, spec.metric);
    if (r === undefined) throw new NetError("No such process", `${this.name}: ip route del ${formatCidr({ addr: spec.dst, len: spec.len })}`, 3);
    t.remove(r);
  }

  addRule(rule: Partial<FibRule> & { table: number; priority?: number }): FibRule {
    // fib_default_rule_pref: one below the lowest non-zero priority in use (32765 for the first rule added).
    const priority = rule.priority ?? Math.min(...this.rules.filter((r) => r.priority > 0).map((r) => r.priority)) - 1;
    const full: FibRule = { src: 0, srcLen: 0, dst: 0, dstLen: 0, iif: "", fwmark: 0, fwmask: 0, ...rule, priority };
    this.rules = [...this.rules, full].sort((a, b) => a.priority - b.priority);
    return full;
  }

  /** Input route lookup (ip_route_input): rules, then tables. */
  routeLookup(daddr: number, saddr: number, iif: NetDevice | null, mark: number): Route | null {
    return fibRulesLookup(this.rules, this.tables, daddr, saddr, iif === null ? "" : iif.name, mark);
  }

  /** inet_addr_type(): RTN_LOCAL, RTN_BROADCAST or RTN_UNICAST (used by addrtype matches and ARP). */
  addrType(ip: number): number {
    if (ip === 0xffffffff || ip === 0) return RTN_BROADCAST;
    if ((ip >>> 28) === 0xe) return 5; // RTN_MULTICAST
    const r = this.localTable().lookup(ip);
    return r !== null ? r.type : RTN_UNICAST;
  }

  isLocalAddr(ip: number): boolean {
    const r = this.localTable().lookup(ip);
    return r !== null && r.type === RTN_LOCAL;
  }

  /**
   * inet_select_addr(dev, dst, scope): a primary address on `dev` with scope no wider than `scope`, preferring one
   * in dst's subnet; else any such address in the namespace (never host-scope ones for non-host scopes).
   */
  selectSrc(dev: NetDevice | null, dst: number, scope: number): number {
    let first = 0;
    for (const a of this.addrs) {
      if (a.dev !== dev || a.secondary || a.scope > scope) continue;
      const mask = a.len === 0 ? 0 : (0xffffffff << (32 - a.len)) >>> 0;
      if (((a.addr & mask) >>> 0) === ((dst & mask) >>> 0)) return a.addr;
      if (first === 0) first = a.addr;
    }
    if (first !== 0) return first;
    for (const a of this.addrs) {
      if (a.secondary || a.scope > scope || a.scope >= RT_SCOPE_LINK) continue;
      if (a.dev !== this.lo || a.scope < RT_SCOPE_HOST) return a.addr;
    }
    return 0;
  }

  /** Source address for a locally generated packet on route `r` (fib_result_prefsrc). */
  routeSrc(r: Route, dst: number): number {
    if (r.prefsrc !== 0) return r.prefsrc;
    return this.selectSrc(r.dev, r.gw !== 0 ? r.gw : dst, r.scope === RT_SCOPE_HOST ? RT_SCOPE_HOST : r.gw !== 0 ? RT_SCOPE_LINK : r.scope);
  }

  /** Apply a sysctl by its kernel name (net.ipv4.ip_forward, net.ipv4.conf.DEV.proxy_arp, ...). */
  setSysctl(key: string, value: number): void {
    const m = /^net\.ipv4\.conf\.([^.]+)\.(proxy_arp|rp_filter|route_localnet)$/.exec(key);
    if (key === "net.ipv4.ip_forward") this.sysctl.ipForward = value !== 0;
    else if (key === "net.bridge.bridge-nf-call-iptables") this.sysctl.bridgeNfCallIptables = value !== 0;
    else if (m !== null) {
      const [, ifname, knob] = m;
      if (ifname === "all" || ifname === "default") {
        if (knob === "rp_filter") this.sysctl.rpFilter = value;
        else if (knob === "route_localnet") this.sysctl.routeLocalnet = value !== 0;
        else if (knob === "proxy_arp") for (const d of this.deviceList()) d.proxyArp = value !== 0;
      } else {
        const d = this.dev(ifname!);
        if (knob === "proxy_arp") d.proxyArp = value !== 0;
        else if (knob === "rp_filter") d.rpFilter = value;
        else this.sysctl.routeLocalnet = value !== 0;
      }
    } else throw new NetError(`unknown sysctl ${key}`, `${this.name}: sysctl`, EINVAL);
  }
}
