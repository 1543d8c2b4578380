// comment, statistic, recent, physdev and nfacct matches.
import { formatIpv4, parseIpv4 } from "../packet/addr.js";
import type { CommentMatch, MatchModule, NfacctMatch, PhysdevMatch, RecentMatch, StatisticMatch } from "./match.js";
import { type ArgCursor, parseUint, saveString } from "./tokens.js";

export const commentModule: MatchModule<CommentMatch> = {
  name: "comment",
  create: () => ({ kind: "comment", comment: "" }),
  parse(m, opt, invert, cur) {
    if (opt !== "--comment") return false;
    if (invert) cur.fail("comment: unexpected `!'");
    m.comment = cur.value(opt);
    // XT_MAX_COMMENT_LEN 256 including the NUL.
    if (m.comment.length > 255) cur.fail("comment may not exceed 255 characters");
    return true;
  },
  final() {},
  print: (m) => ` --comment ${saveString(m.comment)}`,
};

/** libxt_statistic: lround(0x80000000 * p). */
export function probabilityToKernel(p: number): number {
  return Math.round(0x80000000 * p) >>> 0;
}

/** printf("%.11f", stored / 2^31), exactly (round half to even on the exact binary value, as glibc does). */
export function formatProbability(stored: number): string {
  const q = BigInt(stored) * 10n ** 11n;
  const div = 1n << 31n;
  let n = q / div;
  const r = q % div;
  if (2n * r > div || (2n * r === div && n % 2n === 1n)) n++;
  const s = n.toString().padStart(12, "0");
  return `${s.slice(0, -11)}.${s.slice(-11)}`;
}

export const statisticModule: MatchModule<StatisticMatch> = {
  name: "statistic",
  create: () => ({ kind: "statistic", mode: "random", probability: -1, every: 0, packet: -1, invert: false }),
  parse(m, opt, invert, cur) {
    switch (opt) {
      case "--mode": {
        const v = cur.value(opt);
        if (v !== "random" && v !== "nth") cur.fail(`Bad mode "${v}"`);
        m.mode = v as "random" | "nth";
        if (invert) m.invert = true;
        return true;
      }
      case "--probability": {
        const text = cur.value(opt);
        const p = Number(text);
        if (!/^[0-9.eE+-]+$/.test(text) || !(p >= 0 && p <= 1)) cur.fail(`invalid --probability "${text}"`);
        m.probability = probabilityToKernel(p);
        if (invert) m.invert = true;
        return true;
      }
      case "--every":
        m.every = parseUint(cur.value(opt), 0xffffffff, "--every", cur);
        if (m.every === 0) cur.fail("--every cannot be 0");
        if (invert) m.invert = true;
        return true;
      case "--packet":
        m.packet = parseUint(cur.value(opt), 0xffffffff, "--packet", cur);
        if (invert) m.invert = true;
        return true;
    }
    return false;
  },
  final(m, cur) {
    if (m.mode === "random") {
      if (m.probability < 0) cur.fail("statistic: option \"--mode random\" requires \"--probability\"");
      if (m.every || m.packet >= 0) cur.fail("statistic: --every/--packet require --mode nth");
    } else {
      if (m.probability >= 0) cur.fail("statistic: --probability requires --mode random");
      if (!m.every) cur.fail("statistic: option \"--mode nth\" requires \"--every\"");
      if (m.packet < 0) cur.fail('statistic: option "--every" also requires "--packet".');
      if (m.packet > m.every - 1) cur.fail("the --packet p must be 0 <= p <= n-1");
    }
  },
  print(m) {
    const inv = m.invert ? " !" : "";
    if (m.mode === "random") return `${inv} --mode random --probability ${formatProbability(m.probability)}`;
    return `${inv} --mode nth --every ${m.every} --packet ${m.packet}`;
  },
};

/** XT_RECENT_MAX_NSTAMPS: the kernel refuses --hitcount at or above it (tested: 21 is accepted). */
export const RECENT_MAX_NSTAMPS = 256;

// Which matches being parsed have had their command option (parse-time bookkeeping, not part of the model).
const recentCommandGiven = new WeakSet<RecentMatch>();

export const recentModule: MatchModule<RecentMatch> = {
  name: "recent",
  create: () => ({ kind: "recent", command: "set", invert: false, seconds: 0, reap: false, hitcount: 0, name: "", mask: 0xffffffff, source: true }),
  parse(m, opt, invert, cur) {
    switch (opt) {
      case "--set":
      case "--rcheck":
      case "--update":
      case "--remove":
        if (recentCommandGiven.has(m)) cur.fail("recent: only one of `--set', `--rcheck' `--update' or `--remove' may be set");
        m.command = opt.slice(2) as RecentMatch["command"];
        m.invert = invert;
        recentCommandGiven.add(m);
        return true;
      case "--seconds":
        m.seconds = parseUint(cur.value(opt), 0xffffffff, "--seconds", cur);
        return true;
      case "--reap":
        m.reap = true;
        return true;
      case "--hitcount":
        m.hitcount = parseUint(cur.value(opt), 0xffffffff, "--hitcount", cur);
        return true;
      case "--name":
        m.name = cur.value(opt);
        return true;
      case "--rsource":
        m.source = true;
        return true;
      case "--rdest":
        m.source = false;
        return true;
      case "--mask":
        m.mask = parseMaskAddr(cur.value(opt), cur);
        return true;
    }
    return false;
  },
  final(m, cur) {
    if (!recentCommandGiven.has(m)) cur.fail("recent: you must specify one of `--set', `--rcheck' `--update' or `--remove'");
    if (!m.name) m.name = "DEFAULT";
    if (m.reap && !m.seconds) cur.fail("recent: --reap requires --seconds");
    if ((m.command === "set" || m.command === "remove") && (m.seconds || m.hitcount || m.reap)) {
      cur.fail("recent: --seconds/--hitcount/--reap only with --rcheck or --update");
    }
    if (m.hitcount >= RECENT_MAX_NSTAMPS) cur.fail(`recent: hitcount (${m.hitcount}) is larger than allowed maximum (${RECENT_MAX_NSTAMPS - 1})`);
  },
  print(m) {
    let s = `${m.invert ? " !" : ""} --${m.command}`;
    if (m.seconds) s += ` --seconds ${m.seconds}`;
    if (m.reap) s += " --reap";
    if (m.hitcount) s += ` --hitcount ${m.hitcount}`;
    return s + ` --name ${m.name} --mask ${formatIpv4(m.mask)} ${m.source ? "--rsource" : "--rdest"}`;
  },
};

function parseMaskAddr(text: string, cur: ArgCursor): number {
  try {
    return parseIpv4(text);
  } catch {
    return cur.fail(`recent: bad --mask "${text}"`);
  }
}

export const physdevModule: MatchModule<PhysdevMatch> = {
  name: "physdev",
  create: () => ({ kind: "physdev" }),
  parse(m, opt, invert, cur) {
    switch (opt) {
      case "--physdev-in":
        m.physIn = { name: cur.value(opt), invert };
        return true;
      case "--physdev-out":
        m.physOut = { name: cur.value(opt), invert };
        return true;
      case "--physdev-is-in":
        m.isIn = { invert };
        return true;
      case "--physdev-is-out":
        m.isOut = { invert };
        return true;
      case "--physdev-is-bridged":
        m.isBridged = { invert };
        return true;
    }
    return false;
  },
  final(m, cur) {
    if (!m.physIn && !m.physOut && !m.isIn && !m.isOut && !m.isBridged) cur.fail("PHYSDEV: no physdev option specified");
  },
  print(m) {
    const inv = (x: { invert: boolean }) => (x.invert ? " !" : "");
    // libxt_physdev save order: is-in, in, is-out, out, is-bridged.
    let s = "";
    if (m.isIn) s += `${inv(m.isIn)} --physdev-is-in`;
    if (m.physIn) s += `${inv(m.physIn)} --physdev-in ${m.physIn.name}`;
    if (m.isOut) s += `${inv(m.isOut)} --physdev-is-out`;
    if (m.physOut) s += `${inv(m.physOut)} --physdev-out ${m.physOut.name}`;
    if (m.isBridged) s += `${inv(m.isBridged)} --physdev-is-bridged`;
    return s;
  },
};

export const nfacctModule: MatchModule<NfacctMatch> = {
  name: "nfacct",
  create: () => ({ kind: "nfacct", name: "" }),
  parse(m, opt, _invert, cur) {
    if (opt !== "--nfacct-name") return false;
    m.name = cur.value(opt);
    return true;
  },
  final(m, cur) {
    if (!m.name) cur.fail("nfacct: you have to specify `--nfacct-name'");
  },
  print: (m) => ` --nfacct-name ${m.name}`,
};
