// The iptables-save canonical form of kube-proxy rules (each row was checked against the real iptables-save; the
// kernel test re-checks whole rulesets), and the stored statistic probabilities.
import { describe, expect, it } from "vitest";
import { probability } from "../../src/k8s/kube-proxy/iptables.js";
import { jumpRules, savedProbability, saveRule, saveString } from "../../src/k8s/kube-proxy/iptables-save.js";

describe("probabilities 1/n: kube-proxy writes %0.10f, the kernel stores round(p*2^31), iptables-save prints %.11f", () => {
  const cases: [number, string, string][] = [
    [2, "0.5000000000", "0.50000000000"],
    [3, "0.3333333333", "0.33333333349"],
    [4, "0.2500000000", "0.25000000000"],
    [5, "0.2000000000", "0.20000000019"],
    [6, "0.1666666667", "0.16666666651"],
    [7, "0.1428571429", "0.14285714272"],
    [10, "0.1000000000", "0.10000000009"],
    [100, "0.0100000000", "0.00999999978"],
    [1000, "0.0010000000", "0.00100000016"],
  ];
  it("upstream TestComputeProbability vectors", () => {
    const upstream: [number, string][] = [
      [1, "1.0000000000"],
      [2, "0.5000000000"],
      [10, "0.1000000000"],
      [100, "0.0100000000"],
      [1000, "0.0010000000"],
      [10000, "0.0001000000"],
      [100000, "0.0000100000"],
      [100001, "0.0000099999"],
    ];
    for (const [n, p] of upstream) expect(probability(n)).toBe(p);
    // Strictly increasing as n falls, so no two consecutive endpoints share a probability string.
    let prev = 0;
    for (let i = 100000; i > 1; i--) {
      const cur = Number(probability(i));
      expect(cur > prev).toBe(true);
      prev = cur;
    }
  });
  for (const [n, written, saved] of cases) {
    it(`1/${n}`, () => {
      expect(probability(n)).toBe(written);
      expect(savedProbability(written)).toBe(saved);
    });
  }
});

describe("rules in iptables-save form", () => {
  const r = (chain: string, ...args: string[]) => saveRule({ chain, args: args.join(" ") });
  const cases: [string, string][] = [
    [
      r("KUBE-SERVICES", "-m", "comment", "--comment", '"ns1/svc1:p80 cluster IP"', "-m", "tcp", "-p", "tcp", "-d", "172.30.0.41", "--dport", "80", "-j", "KUBE-SVC-XPGD46QRK7WJZT7O"),
      '-A KUBE-SERVICES -d 172.30.0.41/32 -p tcp -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp --dport 80 -j KUBE-SVC-XPGD46QRK7WJZT7O',
    ],
    [
      r("KUBE-SVC-X", "-m", "comment", "--comment", '"c"', "-m", "tcp", "-p", "tcp", "-d", "10.0.0.1", "--dport", "80", "!", "-s", "10.0.0.0/8", "-j", "KUBE-MARK-MASQ"),
      "-A KUBE-SVC-X ! -s 10.0.0.0/8 -d 10.0.0.1/32 -p tcp -m comment --comment c -m tcp --dport 80 -j KUBE-MARK-MASQ",
    ],
    [r("KUBE-MARK-MASQ", "-j", "MARK", "--or-mark", "0x4000"), "-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000"],
    [r("KUBE-POSTROUTING", "-j", "MARK", "--xor-mark", "0x4000"), "-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0"],
    [r("KUBE-POSTROUTING", "-m", "mark", "!", "--mark", "0x4000/0x4000", "-j", "RETURN"), "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN"],
    [r("KUBE-SERVICES", "-m", "udp", "-p", "udp", "-d", "10.0.0.1", "--dport", "53", "-j", "REJECT"), "-A KUBE-SERVICES -d 10.0.0.1/32 -p udp -m udp --dport 53 -j REJECT --reject-with icmp-port-unreachable"],
    [
      r("KUBE-SEP-X", "-m", "comment", "--comment", "ns/s:p", "-m", "recent", "--name", "KUBE-SEP-X", "--set", "-m", "tcp", "-p", "tcp", "-j", "DNAT", "--to-destination", "10.1.1.1:80"),
      '-A KUBE-SEP-X -p tcp -m comment --comment "ns/s:p" -m recent --set --name KUBE-SEP-X --mask 255.255.255.255 --rsource -m tcp -j DNAT --to-destination 10.1.1.1:80',
    ],
    [
      r("KUBE-SVC-X", "-m", "recent", "--name", "KUBE-SEP-X", "--rcheck", "--seconds", "10800", "--reap", "-j", "KUBE-SEP-X"),
      "-A KUBE-SVC-X -m recent --rcheck --seconds 10800 --reap --name KUBE-SEP-X --mask 255.255.255.255 --rsource -j KUBE-SEP-X",
    ],
    [r("KUBE-FW-X", "-m", "comment", "--comment", '"other traffic"'), '-A KUBE-FW-X -m comment --comment "other traffic"'],
  ];
  cases.forEach(([got, want], i) => it(`rule ${i}`, () => expect(got).toBe(want)));

  it("quotes comments as xtables_save_string does", () => {
    expect(saveString("abc_DEF-9")).toBe("abc_DEF-9");
    expect(saveString("ns/svc:p")).toBe('"ns/svc:p"');
    expect(saveString('say "hi"')).toBe('"say \\"hi\\""');
  });

  it("prepends the jump rules, so the last EnsureRule comes first", () => {
    expect(jumpRules("filter").filter((x) => x.chain === "INPUT").map((x) => x.args.split(" ").at(-1))).toEqual(["KUBE-FIREWALL", "KUBE-PROXY-FIREWALL", "KUBE-NODEPORTS", "KUBE-EXTERNAL-SERVICES"]);
    expect(jumpRules("nat").map((x) => `${x.chain}>${x.args.split(" ").at(-1)}`)).toEqual(["POSTROUTING>KUBE-POSTROUTING", "PREROUTING>KUBE-SERVICES", "OUTPUT>KUBE-SERVICES"]);
  });
});
