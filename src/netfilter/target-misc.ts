// CONNMARK, LOG and CT targets, and the registry of every target module by name.
import { parseValMask } from "./match-state.js";
import { TARGET_MODULES_BASE, markTargetModule, type Target, type TargetModule } from "./target.js";
import { hex, parseUint, saveString } from "./tokens.js";

type Of<K extends Target["kind"]> = Extract<Target, { kind: K }>;

// Which CONNMARK targets being parsed have had their action (parse-time bookkeeping only).
const connmarkGiven = new WeakSet<object>();

const connmarkModule: TargetModule<Of<"CONNMARK">> = {
  name: "CONNMARK",
  create: () => ({ kind: "CONNMARK", mode: "set", value: 0, mask: 0xffffffff, nfmask: 0xffffffff, ctmask: 0xffffffff }),
  parse(t, opt, _inv, cur) {
    const action = (mode: Of<"CONNMARK">["mode"]) => {
      if (connmarkGiven.has(t)) cur.fail("CONNMARK target: only one action allowed");
      connmarkGiven.add(t);
      t.mode = mode;
    };
    const one = () => parseUint(cur.value(opt), 0xffffffff, "mark", cur);
    switch (opt) {
      case "--set-xmark": {
        action("set");
        const { value, mask } = parseValMask(cur.value(opt), cur);
        Object.assign(t, { value, mask });
        return true;
      }
      case "--set-mark": {
        action("set");
        const { value, mask } = parseValMask(cur.value(opt), cur);
        Object.assign(t, { value, mask: (mask | value) >>> 0 });
        return true;
      }
      case "--and-mark":
        action("set");
        Object.assign(t, { value: 0, mask: ~one() >>> 0 });
        return true;
      case "--or-mark": {
        action("set");
        const v = one();
        Object.assign(t, { value: v, mask: v });
        return true;
      }
      case "--xor-mark":
        action("set");
        Object.assign(t, { value: one(), mask: 0 });
        return true;
      case "--save-mark":
        action("save");
        return true;
      case "--restore-mark":
        action("restore");
        return true;
      case "--mask": {
        const v = one();
        t.nfmask = v;
        t.ctmask = v;
        return true;
      }
      case "--nfmask":
        t.nfmask = one();
        return true;
      case "--ctmask":
        t.ctmask = one();
        return true;
    }
    return false;
  },
  final(t, cur) {
    if (!connmarkGiven.has(t)) cur.fail("CONNMARK target: No operation specified");
  },
  print(t) {
    if (t.mode === "set") return ` --set-xmark ${hex(t.value)}/${hex(t.mask)}`;
    return ` --${t.mode}-mark --nfmask ${hex(t.nfmask)} --ctmask ${hex(t.ctmask)}`;
  },
};

const LOG_LEVELS: Array<[string, number]> = [
  ["emerg", 0], ["alert", 1], ["crit", 2], ["error", 3], ["warning", 4], ["notice", 5],
  ["info", 6], ["debug", 7],
];
const LOG_FLAGS: Array<[string, number]> = [
  ["--log-tcp-sequence", 0x01], ["--log-tcp-options", 0x02], ["--log-ip-options", 0x04], ["--log-uid", 0x08],
  ["--log-macdecode", 0x20],
];

const logModule: TargetModule<Of<"LOG">> = {
  name: "LOG",
  create: () => ({ kind: "LOG", prefix: "", level: 4, flags: 0 }),
  parse(t, opt, _inv, cur) {
    if (opt === "--log-prefix") {
      t.prefix = cur.value(opt);
      if (t.prefix.length > 29) cur.fail("Maximum prefix length 29 for --log-prefix");
      return true;
    }
    if (opt === "--log-level") {
      const v = cur.value(opt);
      const named = LOG_LEVELS.find(([n]) => n === v.toLowerCase());
      t.level = named ? named[1] : parseUint(v, 7, "log level", cur);
      return true;
    }
    const f = LOG_FLAGS.find(([n]) => n === opt);
    if (!f) return false;
    t.flags |= f[1];
    return true;
  },
  final() {},
  print(t) {
    let s = t.prefix ? ` --log-prefix ${saveString(t.prefix)}` : "";
    if (t.level !== 4) s += ` --log-level ${t.level}`;
    for (const [n, bit] of LOG_FLAGS) if (t.flags & bit) s += ` ${n}`;
    return s;
  },
};

const ctModule: TargetModule<Of<"CT">> = {
  name: "CT",
  table: "raw",
  create: () => ({ kind: "CT", notrack: false }),
  parse(t, opt) {
    if (opt !== "--notrack") return false;
    t.notrack = true;
    return true;
  },
  final(t, cur) {
    // Zones, helpers, timeouts and events are not modelled: refuse rather than ignore them.
    if (!t.notrack) cur.fail("CT: only --notrack is supported by tcbox");
  },
  print: (t) => (t.notrack ? " --notrack" : ""),
};

const { rejectModule, natModule, simple } = TARGET_MODULES_BASE;

export const TARGET_MODULES: Record<string, TargetModule> = {
  ACCEPT: simple("ACCEPT"),
  DROP: simple("DROP"),
  RETURN: simple("RETURN"),
  TRACE: simple("TRACE", "raw"),
  NOTRACK: simple("NOTRACK", "raw"),
  REJECT: rejectModule,
  DNAT: natModule("DNAT"),
  SNAT: natModule("SNAT"),
  MASQUERADE: natModule("MASQUERADE"),
  REDIRECT: natModule("REDIRECT"),
  MARK: markTargetModule,
  CONNMARK: connmarkModule,
  LOG: logModule,
  CT: ctModule,
} as unknown as Record<string, TargetModule>;
