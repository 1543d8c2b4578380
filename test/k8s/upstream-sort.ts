// Port of kube-proxy's test helper sortIPTablesRules (pkg/proxy/iptables/proxier_test.go): upstream iterates a
// Go map, so its golden dumps are normalised: tables by name, KUBE-NODEPORTS then KUBE-SERVICES then other
// KUBE-* chains alphabetically, rules grouped by chain, and the NODEPORTS/SERVICES rules stably sorted by the
// service name in their comment ("must be the last rule" stays last).

interface Chain {
  name: string;
  line: string;
  rules: string[];
}

function commentOf(rule: string): string | null {
  const m = / --comment ("([^"]*)"|(\S+))/.exec(rule);
  return m ? (m[2] ?? m[3] ?? "") : null;
}

function byServiceName(a: string, b: string): number {
  const ca = commentOf(a);
  const cb = commentOf(b);
  if (ca === null || cb === null) return 0;
  const name = (c: string) => {
    const i = c.search(/[ :]/);
    return i === -1 ? c : c.slice(0, i);
  };
  const na = name(ca);
  const nb = name(cb);
  return na < nb ? -1 : na > nb ? 1 : 0;
}

export function sortIPTablesRules(data: string): string {
  const tables: { name: string; chains: Chain[] }[] = [];
  let cur: { name: string; chains: Chain[] } | null = null;
  for (const line of data.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    if (line.startsWith("*")) tables.push((cur = { name: line.slice(1), chains: [] }));
    else if (line === "COMMIT") cur = null;
    else if (line.startsWith(":")) cur!.chains.push({ name: line.slice(1).split(" ")[0]!, line, rules: [] });
    else if (line.startsWith("-A ")) {
      const chain = line.split(" ")[1]!;
      const c = cur!.chains.find((x) => x.name === chain);
      if (!c) throw new Error(`rule for undeclared chain ${chain}: ${line}`);
      c.rules.push(line);
    } else if (line.startsWith("-X ")) continue;
    else throw new Error(`unexpected line ${line}`);
  }
  tables.sort((a, b) => (a.name < b.name ? -1 : 1));
  const rank = (n: string) => (n === "KUBE-NODEPORTS" ? 0 : n === "KUBE-SERVICES" ? 1 : n.startsWith("KUBE-") ? 2 : 3);
  const out: string[] = [];
  for (const t of tables) {
    t.chains.sort((a, b) => rank(a.name) - rank(b.name) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const c of t.chains) {
      if (c.name === "KUBE-NODEPORTS") c.rules.sort(byServiceName);
      if (c.name === "KUBE-SERVICES") {
        const last = (r: string) => (commentOf(r) ?? "").includes("must be the last rule");
        c.rules.sort((a, b) => (last(a) ? 1 : 0) - (last(b) ? 1 : 0) || (last(a) || last(b) ? 0 : byServiceName(a, b)));
      }
    }
    out.push(`*${t.name}`, ...t.chains.map((c) => c.line), ...t.chains.flatMap((c) => c.rules), "COMMIT");
  }
  return out.join("\n") + "\n";
}
