// The `set` match (xt_set revision 4, libxt_set): `-m set [!] --match-set NAME FLAGS`, FLAGS one `src`/`dst` per
// set dimension (`dst,dst` for hash:ip,port: destination address, destination port). Printed as iptables-save
// prints it: ` --match-set NAME dst,dst` (` ! --match-set ...` when inverted). The set itself lives in the
// namespace's IpSetRegistry (ipset.ts); the kernel refuses a rule naming a set that does not exist, so does
// compile.ts. Counters options (--packets-gt etc.) and --return-nomatch are not modelled.
import type { MatchModule, SetMatch } from "./match.js";

export const setModule: MatchModule<SetMatch> = {
  name: "set",
  create: () => ({ kind: "set", name: "", dirs: [], invert: false }),
  parse(m, opt, invert, cur) {
    if (opt !== "--match-set" && opt !== "--set") return false;
    if (m.name) cur.fail("set: --match-set can be specified only once");
    m.name = cur.value(opt);
    const flags = cur.value(opt);
    const dirs = flags.split(",");
    if (dirs.length > 6 || dirs.some((d) => d !== "src" && d !== "dst")) cur.fail(`set: You must specify (the comma separated list of) 'src' or 'dst'`);
    m.dirs = dirs as ("src" | "dst")[];
    m.invert = invert;
    return true;
  },
  final(m, cur) {
    if (!m.name) cur.fail("set: You must specify `--match-set' with proper arguments");
  },
  print: (m) => `${m.invert ? " !" : ""} --match-set ${m.name} ${m.dirs.join(",")}`,
};
