// Seeded random iptables-restore texts in "user form" (what people and kube-proxy write: bare addresses, --syn,
// --set-mark, names), mixing the matches and targets tcbox models. Used by the kernel differential test
// (test/kernel/iptables-save.test.ts) and the parse/print idempotence test.

export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class Gen {
  constructor(readonly rnd: () => number) {}
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.rnd() * (hi - lo + 1));
  }
  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.rnd() * xs.length)]!;
  }
  chance(p: number): boolean {
    return this.rnd() < p;
  }
  not(p = 0.25): string {
    return this.chance(p) ? "! " : "";
  }
  ip(): string {
    return `${this.pick([10, 172, 192, 100, 8])}.${this.int(0, 255)}.${this.int(0, 255)}.${this.int(0, 255)}`;
  }
  cidr(): string {
    return this.chance(0.4) ? this.ip() : `${this.ip()}/${this.int(0, 32)}`;
  }
  port(): string {
    return String(this.int(1, 65535));
  }
  portRange(): string {
    const a = this.int(0, 60000);
    return this.chance(0.6) ? String(a) : `${a}:${a + this.int(0, 5000)}`;
  }
  hex(): string {
    return "0x" + this.int(0, 0xffff).toString(16);
  }
  comment(): string {
    const words = ["ns1/svc1:p80", "cluster IP", 'say "hi"', "a'b", "plain", "x\\y", "kubernetes service portals", "-> 10.0.0.1:80"];
    const w = this.pick(words);
    return /^[A-Za-z0-9_-]+$/.test(w) ? w : `"${w.replace(/["\\]/g, (c) => "\\" + c)}"`;
  }
  iface(): string {
    return this.pick(["eth0", "eth+", "veth1234", "cali+", "lo", "docker0", "+"]);
  }
}

function ipNum(s: string): number {
  return s.split(".").reduce((v, x) => v * 256 + Number(x), 0);
}

type Hook = "PREROUTING" | "INPUT" | "FORWARD" | "OUTPUT" | "POSTROUTING";

/** Protocol part plus its port/type options. */
function proto(g: Gen): { text: string; l4: string | null } {
  const p = g.pick(["tcp", "udp", "icmp", "all", "6", "17", "47", "sctp", "none", "none"]);
  if (p === "none" || p === "all") return { text: p === "all" ? "-p all " : "", l4: null };
  const inv = g.chance(0.1) && p === "47" ? "! " : "";
  let text = `${inv}-p ${p} `;
  const l4 = p === "6" ? "tcp" : p === "17" ? "udp" : p === "47" ? null : p;
  if (!l4) return { text, l4 };
  if (l4 === "icmp") {
    if (g.chance(0.7)) text += `${g.chance(0.5) ? "-m icmp " : ""}${g.not(0.2)}--icmp-type ${g.pick(["echo-request", "8", "3/4", "port-unreachable", "any", "time-exceeded", "0"])} `;
    return { text, l4 };
  }
  if (g.chance(0.3)) text += `-m ${l4} `;
  if (g.chance(0.5)) text += `${g.not(0.2)}--dport ${g.portRange()} `;
  if (g.chance(0.3)) text += `${g.not(0.2)}--sport ${g.portRange()} `;
  if (l4 === "tcp" && g.chance(0.25)) {
    text += g.chance(0.5) ? `${g.not(0.2)}--syn ` : `--tcp-flags ${g.pick(["SYN,ACK", "ALL", "FIN,RST", "SYN"])} ${g.pick(["SYN", "NONE", "ACK", "FIN"])} `;
  }
  if (g.chance(0.2)) text += `-m multiport ${g.not(0.2)}--${g.pick(["dports", "sports", "ports"])} ${Array.from({ length: g.int(1, 5) }, () => g.portRange()).join(",")} `;
  return { text, l4 };
}

function matches(g: Gen, hooks: Hook[]): string {
  let s = "";
  const n = g.int(0, 3);
  for (let i = 0; i < n; i++) {
    switch (g.int(0, 8)) {
      case 0:
        s += `-m comment --comment ${g.comment()} `;
        break;
      case 1:
        s += `-m mark ${g.not()}--mark ${g.hex()}${g.chance(0.5) ? "/" + g.hex() : ""} `;
        break;
      case 2: {
        const states = ["NEW", "ESTABLISHED", "RELATED", "INVALID", "UNTRACKED", "SNAT", "DNAT"].filter(() => g.chance(0.4));
        s += `-m conntrack ${g.not()}--ctstate ${(states.length ? states : ["NEW"]).join(",")} `;
        if (g.chance(0.3)) s += `${g.not()}--ctorigdst ${g.cidr()} `;
        break;
      }
      case 3: {
        const t = () => ["LOCAL", "UNICAST", "BROADCAST", "MULTICAST"].filter(() => g.chance(0.4)).join(",") || "LOCAL";
        s += `-m addrtype ${g.chance(0.6) ? `${g.not()}--dst-type ${t()} ` : `${g.not()}--src-type ${t()} `}`;
        if (hooks.every((h) => h === "PREROUTING" || h === "INPUT" || h === "FORWARD") && g.chance(0.3)) s += "--limit-iface-in ";
        break;
      }
      case 4:
        if (g.chance(0.6)) {
          const n = g.int(2, 9);
          const p = g.pick([`${(1 / n).toFixed(10)}`, `${g.rnd().toFixed(g.int(1, 12))}`, "0.5", "1", "0"]);
          s += `-m statistic --mode random --probability ${p} `;
        } else {
          const every = g.int(1, 10);
          s += `-m statistic --mode nth --every ${every} --packet ${g.int(0, every - 1)} `;
        }
        break;
      case 5: {
        const cmd = g.pick(["--set", "--rcheck", "--update", "--remove"]);
        s += `-m recent ${g.not(0.15)}${cmd} `;
        if ((cmd === "--rcheck" || cmd === "--update") && g.chance(0.6)) {
          s += `--seconds ${g.int(1, 3600)} `;
          if (g.chance(0.4)) s += "--reap ";
          if (g.chance(0.5)) s += `--hitcount ${g.int(1, 20)} `;
        }
        if (g.chance(0.6)) s += `--name ${g.pick(["ssh", "DEFAULT", "web-1"])} `;
        if (g.chance(0.3)) s += g.pick(["--rdest ", "--rsource "]);
        if (g.chance(0.2)) s += `--mask ${g.pick(["255.255.255.0", "255.255.0.0", "255.255.255.255"])} `;
        break;
      }
      case 6:
        s += `-m physdev ${g.chance(0.6) ? `${g.not()}--physdev-in ${g.iface()} ` : ""}${g.chance(0.5) ? `${g.not()}--physdev-is-in ` : ""}--physdev-is-bridged `;
        break;
      case 7:
        s += `-m state ${g.not()}--state ${g.pick(["NEW", "ESTABLISHED,RELATED", "INVALID", "NEW,ESTABLISHED"])} `;
        break;
      default:
        break;
    }
  }
  return s;
}

function ipPart(g: Gen, chain: string): string {
  let s = "";
  if (g.chance(0.4)) s += `${g.not()}-s ${g.cidr()} `;
  if (g.chance(0.4)) s += `${g.not()}-d ${g.cidr()} `;
  if (g.chance(0.25) && !["OUTPUT", "POSTROUTING"].includes(chain)) s += `${g.not()}-i ${g.iface()} `;
  if (g.chance(0.25) && !["PREROUTING", "INPUT"].includes(chain)) s += `${g.not()}-o ${g.iface()} `;
  if (g.chance(0.05)) s += `${g.not(0.5)}-f `;
  return s;
}

function filterTarget(g: Gen, l4: string | null, jumpable: string[]): string {
  const k = g.int(0, 11);
  if (k <= 1 && jumpable.length) return `${g.chance(0.7) ? "-j" : "-g"} ${g.pick(jumpable)}`;
  switch (k) {
    case 2:
      return "-j ACCEPT";
    case 3:
      return "-j DROP";
    case 4:
      return `-j REJECT${g.chance(0.5) ? ` --reject-with ${g.pick(l4 === "tcp" ? ["tcp-reset", "icmp-host-unreachable"] : ["icmp-port-unreachable", "icmp-net-unreachable", "icmp-admin-prohibited", "host-prohib", "icmp-proto-unreachable"])}` : ""}`;
    case 5:
      return "-j RETURN";
    case 6:
      return `-j MARK --${g.pick(["set-mark", "set-xmark", "or-mark", "and-mark", "xor-mark"])} ${g.hex()}`;
    case 7:
      return `-j MARK --set-mark ${g.hex()}/${g.hex()}`;
    case 8:
      return `-j LOG${g.chance(0.5) ? ` --log-prefix ${g.pick(['"IN: "', "drop", '"x y"'])}` : ""}${g.chance(0.4) ? ` --log-level ${g.pick(["debug", "info", "4", "7", "warning"])}` : ""}`;
    case 9:
      return `-j CONNMARK ${g.pick(["--save-mark", "--restore-mark", `--set-mark ${g.hex()}`, `--set-xmark ${g.hex()}/${g.hex()}`, "--save-mark --mask 0xff"])}`;
    case 10:
      return "";
    default:
      return "-j ACCEPT";
  }
}

/** A random filter table (and sometimes nat/mangle/raw) in iptables-restore syntax. */
export function randomRuleset(seed: number): string {
  const g = new Gen(mulberry32(seed));
  const out: string[] = [];
  // filter
  const users = Array.from({ length: g.int(0, 4) }, (_, i) => `U${i}-${g.pick(["FW", "SVC", "x"])}`);
  out.push("*filter");
  // Every built-in policy is declared: iptables-restore keeps an undeclared policy from before (not a reset).
  for (const c of ["INPUT", "FORWARD", "OUTPUT"]) out.push(`:${c} ${g.pick(["ACCEPT", "DROP"])} [${g.int(0, 9)}:${g.int(0, 999)}]`);
  for (const u of users) out.push(`:${u} - [0:0]`);
  const rulesFor = (chain: string, hooks: Hook[], jumpable: string[]) => {
    const n = g.int(0, 6);
    for (let i = 0; i < n; i++) {
      const p = proto(g);
      const t = filterTarget(g, p.l4, jumpable);
      out.push(`${g.chance(0.1) ? "-I" : "-A"} ${chain} ${ipPart(g, chain)}${p.text}${matches(g, hooks)}${t}`.trimEnd());
    }
  };
  // User chains are only jumped to from later-declared ones (no loops) and are reachable from INPUT/FORWARD,
  // so REJECT is valid in them; OUTPUT never jumps to them.
  for (const c of ["INPUT", "FORWARD"] as Hook[]) rulesFor(c, [c], users);
  rulesFor("OUTPUT", ["OUTPUT"], []);
  users.forEach((u, i) => rulesFor(u, ["INPUT", "FORWARD"], users.slice(i + 1)));
  out.push("COMMIT");
  if (g.chance(0.5)) {
    out.push("*nat");
    out.push(":PREROUTING ACCEPT [0:0]", ":INPUT ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]", ":POSTROUTING ACCEPT [0:0]");
    out.push(":SVC - [0:0]", ":POST - [0:0]");
    out.push("-A PREROUTING -j SVC", "-A OUTPUT -j SVC", "-A POSTROUTING -j POST");
    for (let i = g.int(0, 5); i > 0; i--) {
      const p = proto(g);
      const ports = p.l4 === "tcp" || p.l4 === "udp" || p.l4 === "sctp";
      // Mostly ordered ranges; a few reversed ones check that both sides refuse them.
      const a = g.ip();
      const b = g.ip();
      const [lo, hi] = g.chance(0.9) && ipNum(a) > ipNum(b) ? [b, a] : [a, b];
      const to = `${g.chance(0.3) ? lo + "-" + hi : lo}${ports && g.chance(0.6) ? ":" + g.int(1, 3000) + (g.chance(0.3) ? "-" + g.int(3001, 6000) : "") : ""}`;
      out.push(`-A SVC ${ipPart(g, "SVC").replace(/-o \S+ /, "")}${p.text}${matches(g, ["PREROUTING", "OUTPUT"])}-j DNAT --to-destination ${to}${g.chance(0.2) ? " --random" : ""}${g.chance(0.2) ? " --persistent" : ""}`);
    }
    for (let i = g.int(0, 5); i > 0; i--) {
      const p = proto(g);
      const ports = p.l4 === "tcp" || p.l4 === "udp" || p.l4 === "sctp";
      const flags = `${g.chance(0.2) ? " --random" : ""}${g.chance(0.3) ? " --random-fully" : ""}`;
      const t = g.chance(0.5)
        ? `-j MASQUERADE${ports && g.chance(0.4) ? ` --to-ports ${g.int(1024, 2000)}${g.chance(0.5) ? "-" + g.int(2001, 9000) : ""}` : ""}${flags}`
        : `-j SNAT --to-source ${g.ip()}${ports && g.chance(0.5) ? ":" + g.int(1024, 2000) : ""}${flags}`;
      out.push(`-A POST ${ipPart(g, "POSTROUTING")}${p.text}${matches(g, ["POSTROUTING"])}${t}`);
    }
    out.push("COMMIT");
  }
  if (g.chance(0.3)) {
    out.push("*raw", ":PREROUTING ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]");
    for (let i = g.int(1, 3); i > 0; i--) out.push(`-A ${g.pick(["PREROUTING", "OUTPUT"])} ${proto(g).text}${g.pick(["-j CT --notrack", "-j NOTRACK", "-j TRACE", "-j ACCEPT", "-j MARK --set-mark 0x1"])}`);
    out.push("COMMIT");
  }
  if (g.chance(0.3)) {
    out.push("*mangle", ...["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"].map((c) => `:${c} ACCEPT [0:0]`));
    for (let i = g.int(1, 4); i > 0; i--) {
      const chain = g.pick(["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"]);
      out.push(`-A ${chain} ${ipPart(g, chain)}${proto(g).text}${g.pick(["-j MARK --set-xmark 0x10/0xff", "-j CONNMARK --save-mark", "-j ACCEPT", "-j RETURN", ""])}`.trimEnd());
    }
    out.push("COMMIT");
  }
  return out.join("\n") + "\n";
}
