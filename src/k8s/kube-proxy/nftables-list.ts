// `nft list ruleset` for kube-proxy's table, in the form nft prints back what the kernel holds (checked against
// the real nft in test/kernel/kube-proxy-nft.test.ts): sets before chains, hook priorities by their standard
// names (dstnat - 10), `mark` expressions as `meta mark ... | 0x00004000`, one-element anonymous sets without
// braces, timeouts in nft's units. Element order inside a set is the kernel's hash order, which nft does not
// sort; tcbox prints insertion order (compare set contents, not order).
import type { NftChain, NftHook, NftSet, NftTable } from "./nftables.js";

// Standard priorities (nft's `-y` names) and the hooks where each name is valid for the ip family.
const PRIORITIES: { name: string; value: number; hooks: string[] | null }[] = [
  { name: "raw", value: -300, hooks: null },
  { name: "mangle", value: -150, hooks: null },
  { name: "dstnat", value: -100, hooks: ["prerouting"] },
  { name: "filter", value: 0, hooks: null },
  { name: "security", value: 50, hooks: null },
  { name: "srcnat", value: 100, hooks: ["postrouting"] },
];

/** nft prints a standard priority by name, or name +/- offset within 10, else the number. */
export function priorityName(hook: NftHook): string {
  for (const p of PRIORITIES) {
    if (p.hooks && !p.hooks.includes(hook.hook)) continue;
    const d = hook.priority - p.value;
    if (d === 0) return p.name;
    if (Math.abs(d) <= 10) return `${p.name} ${d < 0 ? "-" : "+"} ${Math.abs(d)}`;
  }
  return String(hook.priority);
}

function addrKey(item: string): number {
  const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)/.exec(item);
  return m ? ((+m[1]! << 24) >>> 0) + (+m[2]! << 16) + (+m[3]! << 8) + +m[4]! : 0;
}

const hex8 = (v: string) => `0x${Number(v).toString(16).padStart(8, "0")}`;

/** Rewrite a rule as nft lists it. */
export function listRule(rule: string): string {
  return rule
    .replace(/^mark set mark or (0x[0-9a-f]+)$/, (_, m: string) => `meta mark set meta mark | ${hex8(m)}`)
    .replace(/^mark set mark xor (0x[0-9a-f]+)$/, (_, m: string) => `meta mark set meta mark ^ ${hex8(m)}`)
    .replace(/^mark and (0x[0-9a-f]+) == 0 (\w+)$/, (_, m: string, v: string) => `meta mark & ${hex8(m)} == 0x00000000 ${v}`)
    .replace(/((?:saddr|daddr) (?:!= )?)\{ ([^{}:]+?) \}/g, (_, lead: string, body: string) => {
      // Anonymous address sets: one element loses its braces; several are kept in address order (an
      // interval set, which the kernel stores sorted), separated by ", ".
      const items = body.split(" , ").sort((a, b) => addrKey(a) - addrKey(b));
      return lead + (items.length === 1 ? items[0]! : `{ ${items.join(", ")} }`);
    })
    .replace(/ , (\d+ : )/g, ", $1");
}

/** nft's timeout units: the largest of d/h/m/s that divide it, combined (10800s -> 3h, 5400s -> 1h30m). */
export function nftTimeout(seconds: number): string {
  let s = seconds;
  let out = "";
  for (const [unit, n] of [
    ["d", 86400],
    ["h", 3600],
    ["m", 60],
  ] as const) {
    if (s >= n) {
      out += `${Math.floor(s / n)}${unit}`;
      s %= n;
    }
  }
  if (s > 0 || out === "") out += `${s}s`;
  return out;
}

function listSet(s: NftSet): string[] {
  const out = [`\t${s.map ? "map" : "set"} ${s.name} {`, `\t\ttype ${s.type}`];
  // Sets the datapath adds to (`update @set`) get nft's default size.
  if (s.flags?.includes("dynamic")) out.push("\t\tsize 65535");
  if (s.flags) out.push(`\t\tflags ${s.flags.join(",")}`);
  if (s.timeoutSeconds !== undefined) out.push(`\t\ttimeout ${nftTimeout(s.timeoutSeconds)}`);
  if (s.comment) out.push(`\t\tcomment "${s.comment}"`);
  if (s.elements.length) {
    const items = s.elements.map((e) => `${e.key}${e.comment ? ` comment "${e.comment}"` : ""}${e.value ? ` : ${e.value}` : ""}`);
    out.push(`\t\telements = { ${items.join(",\n\t\t\t     ")} }`);
  }
  out.push("\t}");
  return out;
}

function listChain(c: NftChain): string[] {
  const out = [`\tchain ${c.name} {`];
  if (c.hook) out.push(`\t\ttype ${c.hook.type} hook ${c.hook.hook} priority ${priorityName(c.hook)}; policy accept;`);
  if (c.comment) out.push(`\t\tcomment "${c.comment}"`);
  for (const r of c.rules) out.push(`\t\t${listRule(r.rule)}${r.comment ? ` comment "${r.comment}"` : ""}`);
  out.push("\t}");
  return out;
}

/** The table as `nft list ruleset` prints it. */
export function nftListRuleset(t: NftTable): string {
  const blocks = [...t.sets.map(listSet), ...t.chains.map(listChain)];
  const out = ["table ip kube-proxy {", `\tcomment "${t.comment}"`];
  blocks.forEach((b, i) => {
    if (i > 0) out.push("");
    out.push(...b);
  });
  out.push("}");
  return out.join("\n") + "\n";
}
