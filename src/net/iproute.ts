// iproute2 and sysctl commands applied to the model: the same command text a CNI plugin, Flannel, Calico or a
// test runs on a real host (`ip link add veth0 type veth peer name eth0 netns pod1`, `ip route add ... onlink`,
// `bridge fdb append ...`, `sysctl -w net.ipv4.ip_forward=1`). Kernel differential tests run the very same
// strings against real namespaces. Unknown words are errors, never ignored.
import { parseCidr, parseIpv4 } from "../packet/addr.js";
import { NUD_NOARP, NUD_PERMANENT, NUD_REACHABLE, NUD_STALE, RT_SCOPE_HOST, RT_SCOPE_LINK, RT_SCOPE_UNIVERSE, RT_TABLE_DEFAULT, RT_TABLE_LOCAL, RT_TABLE_MAIN, RTN_BLACKHOLE, RTN_BROADCAST, RTN_LOCAL, RTN_PROHIBIT, RTN_UNICAST, RTN_UNREACHABLE, RTPROT_BIRD, RTPROT_BOOT, RTPROT_KERNEL, RTPROT_STATIC, LinkKind, EINVAL } from "./constants.js";
import { createBridge, type BridgeDevice } from "./bridge.js";
import { DummyDevice, type NetDevice } from "./device.js";
import { parseMacNum } from "./emit.js";
import { NetError } from "./error.js";
import { createMacvlan } from "./macvlan.js";
import type { NetNamespace, RouteSpec } from "./netns.js";
import { createVethPair } from "./veth.js";
import { createVxlan, type VxlanDevice } from "./vxlan.js";

class Words {
  i = 0;
  constructor(
    readonly w: string[],
    readonly where: string,
  ) {}
  more(): boolean {
    return this.i < this.w.length;
  }
  peek(): string | undefined {
    return this.w[this.i];
  }
  next(what: string): string {
    const v = this.w[this.i++];
    if (v === undefined) throw new NetError(`missing ${what}`, this.where, EINVAL);
    return v;
  }
  fail(msg: string): never {
    throw new NetError(msg, this.where, EINVAL);
  }
}

const SCOPES: Record<string, number> = { global: RT_SCOPE_UNIVERSE, universe: RT_SCOPE_UNIVERSE, link: RT_SCOPE_LINK, host: RT_SCOPE_HOST };
const PROTOS: Record<string, number> = { kernel: RTPROT_KERNEL, boot: RTPROT_BOOT, static: RTPROT_STATIC, bird: RTPROT_BIRD };
const TYPES: Record<string, number> = { unicast: RTN_UNICAST, local: RTN_LOCAL, broadcast: RTN_BROADCAST, blackhole: RTN_BLACKHOLE, unreachable: RTN_UNREACHABLE, prohibit: RTN_PROHIBIT };
const NUDS: Record<string, number> = { permanent: NUD_PERMANENT, reachable: NUD_REACHABLE, stale: NUD_STALE, noarp: NUD_NOARP };

function tableId(t: string, c: Words): number {
  if (t === "main") return RT_TABLE_MAIN;
  if (t === "local") return RT_TABLE_LOCAL;
  if (t === "default") return RT_TABLE_DEFAULT;
  const n = Number(t);
  if (!Number.isInteger(n) || n <= 0) c.fail(`invalid table "${t}"`);
  return n;
}

/** Run one `ip ...`, `bridge ...` or `sysctl -w K=V` command in `ns`. */
export function exec(ns: NetNamespace, command: string): void {
  const where = `${ns.name}: ${command}`;
  const words = command.trim().split(/\s+/);
  const c = new Words(words, where);
  const prog = c.next("command");
  try {
    if (prog === "ip") ipCommand(ns, c);
    else if (prog === "bridge") bridgeCommand(ns, c);
    else if (prog === "sysctl") {
      let kv = c.next("key=value");
      if (kv === "-w" || kv === "-q") kv = c.next("key=value");
      const eq = kv.indexOf("=");
      if (eq < 0) c.fail(`expected key=value, got "${kv}"`);
      ns.setSysctl(kv.slice(0, eq), Number(kv.slice(eq + 1)));
    } else c.fail(`unknown command "${prog}"`);
  } catch (e) {
    if (e instanceof NetError && e.where !== where) throw new NetError(e.message, where, e.errno);
    if (e instanceof Error && !(e instanceof NetError)) throw new NetError(e.message, where, EINVAL);
    throw e;
  }
}

function ipCommand(ns: NetNamespace, c: Words): void {
  let obj = c.next("object");
  // Global options: `-n NS` / `-netns NS` runs in another namespace (as `ip -n` does); `-4` is the only family.
  while (obj.startsWith("-")) {
    if (obj === "-n" || obj === "-netns") ns = ns.world.ns(c.next("netns"));
    else if (obj !== "-4") c.fail(`unsupported option "${obj}"`);
    obj = c.next("object");
  }
  if (obj === "link" || obj === "l") return linkCommand(ns, c);
  if (obj === "addr" || obj === "address" || obj === "a") return addrCommand(ns, c);
  if (obj === "route" || obj === "r" || obj === "ro") return routeCommand(ns, c);
  if (obj === "rule" || obj === "ru") return ruleCommand(ns, c);
  if (obj === "neigh" || obj === "neighbour" || obj === "n") return neighCommand(ns, c);
  c.fail(`unknown object "${obj}"`);
}

function linkCommand(ns: NetNamespace, c: Words): void {
  const verb = c.next("verb");
  const w = ns.world;
  if (verb === "add") {
    let name = c.next("name");
    if (name === "name" || name === "dev") name = c.next("name");
    let lower: NetDevice | null = null;
    if (c.peek() === "link") {
      c.next("link");
      lower = ns.dev(c.next("lower device"));
    }
    if (c.next("type") !== "type") c.fail("expected type");
    const kind = c.next("kind");
    if (kind === "veth") {
      let peerName = "";
      let peerNs = ns;
      while (c.more()) {
        const k = c.next("option");
        if (k === "peer") continue;
        if (k === "name") peerName = c.next("peer name");
        else if (k === "netns") peerNs = w.ns(c.next("netns"));
        else c.fail(`unknown veth option "${k}"`);
      }
      if (peerName === "") c.fail("veth needs peer name");
      createVethPair(ns, name, peerNs, peerName);
    } else if (kind === "bridge") {
      if (c.more()) c.fail(`unsupported bridge option "${c.peek()}"`);
      createBridge(ns, name);
    } else if (kind === "dummy") {
      const d = new DummyDevice(ns, name, w.allocMac());
      ns.registerDevice(d);
    } else if (kind === "vxlan") {
      let vni = -1;
      let local = 0;
      let dev: NetDevice | null = null;
      let dstport = 4789;
      let learning = true;
      let udpCsum = true;
      while (c.more()) {
        const k = c.next("option");
        if (k === "id" || k === "vni") vni = Number(c.next("vni"));
        else if (k === "local") local = parseIpv4(c.next("local"));
        else if (k === "dev") dev = ns.dev(c.next("dev"));
        else if (k === "dstport") dstport = Number(c.next("dstport"));
        else if (k === "nolearning") learning = false;
        else if (k === "learning") learning = true;
        else if (k === "udpcsum") udpCsum = true;
        else if (k === "noudpcsum") udpCsum = false;
        else c.fail(`unsupported vxlan option "${k}"`);
      }
      if (!Number.isInteger(vni) || vni < 0 || vni > 0xffffff) c.fail("vxlan: id is required (0..16777215)");
      createVxlan(ns, name, { vni, local, dev, dstport, learning, udpCsum });
    } else if (kind === "macvlan") {
      if (lower === null) c.fail("macvlan needs link LOWER");
      while (c.more()) {
        const k = c.next("option");
        if (k === "mode") {
          const m = c.next("mode");
          if (m !== "bridge") c.fail(`macvlan mode ${m} is not modelled (bridge only)`);
        } else c.fail(`unknown macvlan option "${k}"`);
      }
      createMacvlan(ns, name, lower);
    } else c.fail(`unsupported link type "${kind}"`);
    return;
  }
  if (verb === "set") {
    let name = c.next("device");
    if (name === "dev") name = c.next("device");
    let dev = ns.dev(name);
    while (c.more()) {
      const k = c.next("option");
      if (k === "up") dev.ns.setLink(dev, true);
      else if (k === "down") dev.ns.setLink(dev, false);
      else if (k === "master") {
        const br = dev.ns.dev(c.next("master"));
        if (br.kind !== LinkKind.BRIDGE) c.fail(`${br.name} is not a bridge`);
        (br as BridgeDevice).addPort(dev);
      } else if (k === "nomaster") dev.master?.removePort(dev);
      else if (k === "netns") {
        const to = w.ns(c.next("netns"));
        dev.ns.moveDevice(dev, to);
      } else if (k === "address") dev.ns.setMac(dev, parseMacNum(c.next("address")));
      else if (k === "mtu") dev.mtu = Number(c.next("mtu"));
      else if (k === "name") dev.ns.rename(dev, c.next("name"));
      else if (k === "type") {
        if (c.next("type") !== "bridge_slave") c.fail("only bridge_slave options are supported");
      } else if (k === "hairpin") dev.hairpin = c.next("on|off") === "on";
      else if (k === "learning") dev.learning = c.next("on|off") === "on";
      else c.fail(`unknown link option "${k}"`);
      dev = dev.ns.dev(dev.name);
    }
    return;
  }
  if (verb === "del" || verb === "delete") {
    let name = c.next("device");
    if (name === "dev") name = c.next("device");
    const dev = ns.dev(name);
    if (dev.kind === LinkKind.VETH) {
      const peer = (dev as unknown as { peer: NetDevice }).peer;
      peer.ns.unregisterDevice(peer);
    }
    ns.unregisterDevice(dev);
    return;
  }
  c.fail(`unknown link verb "${verb}"`);
}

function addrCommand(ns: NetNamespace, c: Words): void {
  const verb = c.next("verb");
  const cidrText = c.next("address");
  const slash = cidrText.indexOf("/");
  const addr = parseIpv4(slash < 0 ? cidrText : cidrText.slice(0, slash));
  const len = slash < 0 ? 32 : parseCidr(cidrText).len;
  let dev: NetDevice | null = null;
  let brd: number | "+" | undefined;
  let scope: number | undefined;
  while (c.more()) {
    const k = c.next("option");
    if (k === "dev") dev = ns.dev(c.next("dev"));
    else if (k === "brd" || k === "broadcast") {
      const v = c.next("broadcast");
      brd = v === "+" ? "+" : parseIpv4(v);
    } else if (k === "scope") scope = SCOPES[c.next("scope")] ?? c.fail("invalid scope");
    else c.fail(`unknown addr option "${k}"`);
  }
  if (dev === null) c.fail("addr needs dev");
  if (verb === "add") ns.addAddress(dev, addr, len, { brd, scope });
  else if (verb === "del" || verb === "delete") ns.delAddress(dev, addr, len);
  else c.fail(`unknown addr verb "${verb}"`);
}

function routeCommand(ns: NetNamespace, c: Words): void {
  const verb = c.next("verb");
  let dstText = c.next("prefix");
  let type = RTN_UNICAST;
  if (TYPES[dstText] !== undefined) {
    type = TYPES[dstText]!;
    dstText = c.next("prefix");
  }
  const dst = dstText === "default" ? { addr: 0, len: 0 } : parseCidr(dstText);
  const spec: RouteSpec = { dst: dst.addr, len: dst.len, type };
  while (c.more()) {
    const k = c.next("option");
    if (k === "via") spec.gw = parseIpv4(c.next("gateway"));
    else if (k === "dev") spec.dev = ns.dev(c.next("dev"));
    else if (k === "src") spec.prefsrc = parseIpv4(c.next("src"));
    else if (k === "scope") spec.scope = SCOPES[c.next("scope")] ?? c.fail("invalid scope");
    else if (k === "metric" || k === "priority" || k === "preference") spec.metric = Number(c.next("metric"));
    else if (k === "proto" || k === "protocol") spec.proto = PROTOS[c.next("proto")] ?? c.fail("unknown proto");
    else if (k === "onlink") spec.onlink = true;
    else if (k === "table") spec.table = tableId(c.next("table"), c);
    else c.fail(`unknown route option "${k}"`);
  }
  if (verb === "add" || verb === "replace" || verb === "append") ns.addRoute(spec, verb);
  else if (verb === "del" || verb === "delete") ns.delRoute({ dst: spec.dst, len: spec.len, table: spec.table, metric: spec.metric });
  else c.fail(`unknown route verb "${verb}"`);
}

function ruleCommand(ns: NetNamespace, c: Words): void {
  const verb = c.next("verb");
  if (verb !== "add") c.fail(`unsupported rule verb "${verb}"`);
  const rule: { src?: number; srcLen?: number; dst?: number; dstLen?: number; iif?: string; fwmark?: number; fwmask?: number; priority?: number; table: number } = { table: RT_TABLE_MAIN };
  while (c.more()) {
    const k = c.next("option");
    if (k === "from" || k === "to") {
      const v = c.next(k);
      const p = v === "all" ? { addr: 0, len: 0 } : parseCidr(v);
      if (k === "from") [rule.src, rule.srcLen] = [p.addr, p.len];
      else [rule.dst, rule.dstLen] = [p.addr, p.len];
    } else if (k === "iif") rule.iif = c.next("iif");
    else if (k === "fwmark") {
      const [m, mask] = c.next("fwmark").split("/");
      rule.fwmark = Number(m) >>> 0;
      rule.fwmask = mask === undefined ? 0xffffffff : Number(mask) >>> 0;
    } else if (k === "priority" || k === "pref" || k === "preference") rule.priority = Number(c.next("priority"));
    else if (k === "lookup" || k === "table") rule.table = tableId(c.next("table"), c);
    else c.fail(`unknown rule option "${k}"`);
  }
  ns.addRule(rule);
}

function neighCommand(ns: NetNamespace, c: Words): void {
  const verb = c.next("verb");
  const ip = parseIpv4(c.next("address"));
  let mac = -1;
  let dev: NetDevice | null = null;
  let state = NUD_PERMANENT;
  while (c.more()) {
    const k = c.next("option");
    if (k === "lladdr") mac = parseMacNum(c.next("lladdr"));
    else if (k === "dev") dev = ns.dev(c.next("dev"));
    else if (k === "nud") state = NUDS[c.next("nud")] ?? c.fail("unknown nud state");
    else c.fail(`unknown neigh option "${k}"`);
  }
  if (dev === null) c.fail("neigh needs dev");
  if (verb === "del" || verb === "delete") {
    ns.neigh.delete(dev, ip);
    return;
  }
  if (verb !== "add" && verb !== "replace" && verb !== "change") c.fail(`unknown neigh verb "${verb}"`);
  if (mac < 0) c.fail("neigh needs lladdr");
  if (verb === "add" && ns.neigh.get(dev, ip) !== undefined) throw new NetError("File exists", c.where, 17);
  ns.neigh.set(dev, ip, mac, state, ns.world.now);
}

function bridgeCommand(ns: NetNamespace, c: Words): void {
  const obj = c.next("object");
  if (obj === "link") {
    if (c.next("verb") !== "set") c.fail("bridge link: only set");
    if (c.next("dev") !== "dev") c.fail("expected dev");
    const dev = ns.dev(c.next("device"));
    while (c.more()) {
      const k = c.next("option");
      if (k === "hairpin") dev.hairpin = c.next("on|off") === "on";
      else if (k === "learning") dev.learning = c.next("on|off") === "on";
      else c.fail(`unknown bridge link option "${k}"`);
    }
    return;
  }
  if (obj !== "fdb") c.fail(`unknown bridge object "${obj}"`);
  const verb = c.next("verb");
  const mac = parseMacNum(c.next("lladdr"));
  let dev: NetDevice | null = null;
  let dst = 0;
  // iproute2's default state is NUD_PERMANENT, which the bridge treats as a local address; `static` is NUD_NOARP.
  let state = "permanent";
  let master = false;
  while (c.more()) {
    const k = c.next("option");
    if (k === "dev") dev = ns.dev(c.next("dev"));
    else if (k === "dst") dst = parseIpv4(c.next("dst"));
    else if (k === "self") master = false;
    else if (k === "master") master = true;
    else if (k === "static" || k === "permanent" || k === "dynamic") state = k;
    else c.fail(`unknown fdb option "${k}"`);
  }
  if (dev === null) c.fail("fdb needs dev");
  if (dev.kind === LinkKind.VXLAN && !master) {
    const v = dev as VxlanDevice;
    if (verb === "del" || verb === "delete") v.fdbDel(mac, dst === 0 ? undefined : dst);
    else if (verb === "add" || verb === "append" || verb === "replace") {
      if (dst === 0) c.fail("vxlan fdb needs dst");
      if (verb === "add" && v.fdb.has(mac)) throw new NetError("File exists", c.where, 17);
      v.fdbAdd(mac, dst, verb === "append");
    } else c.fail(`unknown fdb verb "${verb}"`);
    return;
  }
  const br = dev.master;
  if (br === null) c.fail(`${dev.name} is not a bridge port`);
  if (verb === "del" || verb === "delete") br.fdb.delete(mac);
  else br.fdb.set(mac, { mac, port: dev, updated: ns.world.now, isLocal: state === "permanent", isStatic: state === "static" });
}
