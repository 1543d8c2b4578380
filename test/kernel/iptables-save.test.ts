// The kernel is the referee for the iptables-save printer and the restore parser: in a scratch namespace,
// iptables-legacy-restore each text, iptables-legacy-save it back, and compare with tcbox's parse → print of
// the same text (normalising only comment lines and counters). Texts tcbox rejects must be rejected by
// iptables-restore too. Legacy is preferred: `iptables` here points at the nft backend, which prints a few
// matches differently (e.g. it merges `-m udp --sport 53 -m udp --dport 5` into one match).
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parseIptablesRestore } from "../../src/netfilter/restore.js";
import { printIptablesSave } from "../../src/netfilter/save.js";
import { randomRuleset } from "../netfilter/ruleset-gen.js";

const NS = `tcbxipt${process.pid}`;
const LEGACY = existsSync("/usr/sbin/iptables-legacy-restore");
const RESTORE = LEGACY ? "iptables-legacy-restore" : "iptables-restore";
const SAVE = LEGACY ? "iptables-legacy-save" : "iptables-save";

function probe(): string | null {
  if (process.getuid?.() !== 0) return "not root";
  const r = spawnSync("ip", ["netns", "add", NS], { encoding: "utf8" });
  if (r.status !== 0) return `ip netns add failed: ${r.stderr.trim()}`;
  return null;
}
const skipReason = probe();
if (skipReason) process.stderr.write(`test/kernel/iptables-save: skipped (${skipReason})\n`);

afterAll(() => {
  if (!skipReason) spawnSync("ip", ["netns", "del", NS]);
});

type Outcome = { ok: true; save: string } | { ok: false; err: string };

/** Restore then save each text in turn inside the namespace, in one `ip netns exec` (it costs ~65 ms a call). */
function kernelBatch(texts: string[]): Outcome[] {
  const dir = mkdtempSync(join(tmpdir(), "tcbx-ipt-"));
  try {
    texts.forEach((t, i) => writeFileSync(join(dir, `${i}.in`), t));
    const script = `cd ${dir}\nfor i in $(seq 0 ${texts.length - 1}); do\n  if ${RESTORE} < $i.in 2> $i.err; then ${SAVE} > $i.out; fi\ndone\n`;
    writeFileSync(join(dir, "run.sh"), script);
    const r = spawnSync("ip", ["netns", "exec", NS, "sh", join(dir, "run.sh")], { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`batch failed: ${r.stderr}`);
    return texts.map((_, i) => {
      const out = join(dir, `${i}.out`);
      if (existsSync(out)) return { ok: true, save: readFileSync(out, "utf8") };
      return { ok: false, err: readFileSync(join(dir, `${i}.err`), "utf8").trim() };
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function kernel(text: string): Outcome {
  return kernelBatch([text])[0]!;
}

function mine(text: string): { ok: true; save: string } | { ok: false; err: string } {
  try {
    return { ok: true, save: printIptablesSave(parseIptablesRestore(text, { file: "gen" })) };
  } catch (e) {
    return { ok: false, err: (e as Error).message };
  }
}

/** Per-table blocks, comment lines dropped and counters zeroed. Only tables the input names are compared. */
function blocks(save: string, only: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  let name = "";
  for (const line of save.split("\n")) {
    if (line.startsWith("#") || line === "") continue;
    if (line.startsWith("*")) name = line.slice(1);
    if (!only.includes(name)) continue;
    out[name] = (out[name] ?? "") + line.replace(/\[\d+:\d+\]/g, "[0:0]") + "\n";
  }
  return out;
}

const tablesOf = (text: string) => [...text.matchAll(/^\*(\w+)/gm)].map((m) => m[1]!);

interface Verdict {
  agree: boolean;
  why: string;
}

function compare(text: string, k: Outcome = kernel(text)): Verdict {
  const m = mine(text);
  if (!k.ok && !m.ok) return { agree: true, why: "both reject" };
  if (k.ok !== m.ok) return { agree: false, why: k.ok ? `tcbox rejects, kernel accepts: ${m.ok ? "" : m.err}` : `kernel rejects (${k.ok ? "" : k.err.split("\n")[0]}), tcbox accepts` };
  const only = tablesOf(text);
  const kb = blocks((k as { save: string }).save, only);
  const mb = blocks((m as { save: string }).save, only);
  for (const t of only) {
    if (kb[t] !== mb[t]) {
      const kl = (kb[t] ?? "").split("\n");
      const ml = (mb[t] ?? "").split("\n");
      const i = kl.findIndex((l, j) => l !== ml[j]);
      return { agree: false, why: `table ${t} differs at line ${i + 1}:\n kernel: ${kl[i]}\n tcbox:  ${ml[i]}` };
    }
  }
  return { agree: true, why: "same" };
}

const fixture = (n: string) => readFileSync(new URL(`../fixtures/iptables/${n}`, import.meta.url), "utf8");

describe.skipIf(skipReason !== null)(`kernel ${RESTORE}/${SAVE} vs tcbox printer`, () => {
  it("fixtures and probabilities print as the kernel's tools print them", () => {
    // Restore inputs without policy lines rely on a fresh namespace (restore keeps undeclared policies), so these run
    // first; 1/n probabilities are written as kube-proxy writes them (%0.10f).
    const names = ["kube-proxy.in", "calico.in", "docker.in", "kube-proxy.save", "matches-targets.save"];
    const rules = [2, 3, 4, 5, 6, 7, 9, 11, 13, 100, 1000].map((n) => `-A X -m statistic --mode random --probability ${(1 / n).toFixed(10)} -j ACCEPT`);
    const texts = [...names.map(fixture), `*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:X - [0:0]\n${rules.join("\n")}\nCOMMIT\n`];
    const k = kernelBatch(texts);
    expect(texts.map((t, i) => `${names[i] ?? "probabilities"}: ${compare(t, k[i]).why}`)).toEqual([...names, "probabilities"].map((n) => `${n}: same`));
  });

  it("200 generated rulesets: same acceptance, same printed text", () => {
    const bad: string[] = [];
    let rejected = 0;
    const N = 200;
    const texts = Array.from({ length: N }, (_, i) => randomRuleset(i + 1));
    const kernelOut = kernelBatch(texts);
    for (let seed = 1; seed <= N; seed++) {
      const text = texts[seed - 1]!;
      const v = compare(text, kernelOut[seed - 1]);
      if (v.why === "both reject") rejected++;
      if (!v.agree) bad.push(`seed ${seed}: ${v.why}`);
      if (!v.agree && process.env.TCBOX_DEBUG) process.stdout.write(`seed ${seed}: ${v.why}\n`);
    }
    process.stdout.write(`iptables-save differential: ${N - bad.length}/${N} agree (${rejected} rejected by both), backend ${RESTORE}\n`);
    expect(bad).toEqual([]);
  }, 120_000);

  it("texts tcbox rejects are rejected by iptables-restore too", () => {
    const texts = [
      "*filter\n-A INPUT -m nosuchmatch -j ACCEPT\nCOMMIT\n",
      "*filter\n-A INPUT -j NOSUCHTARGET\nCOMMIT\n",
      "*filter\n-A INPUT --bogus 1 -j ACCEPT\nCOMMIT\n",
      "*filter\n-A INPUT -m tcp --dport 80 -j ACCEPT\nCOMMIT\n",
      "*filter\n-A INPUT -m statistic --mode nth --every 3 -j ACCEPT\nCOMMIT\n",
      "*filter\n-A INPUT -m statistic ! --mode random --probability 0.5\nCOMMIT\n",
      "*filter\n-A INPUT -p udp -j REJECT --reject-with tcp-reset\nCOMMIT\n",
      "*filter\n-A NOPE -j ACCEPT\nCOMMIT\n",
      "*filter\n:A - [0:0]\n:B - [0:0]\n-A INPUT -j A\n-A A -j B\n-A B -j A\nCOMMIT\n",
      "*filter\n:X - [0:0]\n-A X -j DNAT --to-destination 1.2.3.4\nCOMMIT\n",
      "*nat\n-A PREROUTING -j DROP\nCOMMIT\n",
      "*nat\n-A POSTROUTING -p tcp -j DNAT --to-destination 1.2.3.4\nCOMMIT\n",
      "*filter\n-A OUTPUT -i eth0 -j ACCEPT\nCOMMIT\n",
      "*filter\n-A INPUT -j ACCEPT\n",
      "*filter\n-A INPUT -m mark -j ACCEPT\nCOMMIT\n",
      "*filter\n-A INPUT -p icmp -m icmp -j ACCEPT\nCOMMIT\n",
      "*filter\n-A INPUT -m recent --set --seconds 5\nCOMMIT\n",
      "*filter\n-A OUTPUT -m addrtype --dst-type LOCAL --limit-iface-in\nCOMMIT\n",
      "*filter\n-A INPUT -p tcp -m multiport --dports 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16\nCOMMIT\n",
      "*raw\n-A PREROUTING -j CT --zone 1\nCOMMIT\n",
      "*filter\n-A INPUT -j LOG --log-level err\nCOMMIT\n",
    ];
    const k = kernelBatch(texts);
    const disagreements = texts.map((t, i) => ({ t, v: compare(t, k[i]) })).filter((x) => !x.v.agree || x.v.why !== "both reject");
    // CT --zone is accepted by the kernel but refused by tcbox (zones are not modelled): the one known, deliberate gap.
    expect(disagreements.map((d) => `${JSON.stringify(d.t)}: ${d.v.why}`)).toEqual([
      `${JSON.stringify("*raw\n-A PREROUTING -j CT --zone 1\nCOMMIT\n")}: tcbox rejects, kernel accepts: iptables-restore: line 2 failed: unknown option "--zone"`,
    ]);
  });
});
