// The Flannel-style two-node topology of the kernel differential tests, as iproute2 command lines: the same
// strings are run with `ip netns exec` against real namespaces and with exec() against the model.
export interface Names {
  n1: string;
  n2: string;
  a: string;
  b: string;
}

export const FLANNEL_MAC = (i: number) => `0e:00:00:00:00:0${i}`;
export const CNI0_MAC = (i: number) => `0a:58:0a:f4:0${i - 1}:01`;

/** [namespace, command] in order. */
export function flannelCommands(n: Names): Array<[string, string]> {
  const cmds: Array<[string, string]> = [];
  const nodes = [n.n1, n.n2];
  const pods = [n.a, n.b];
  for (const ns of [...nodes, ...pods]) cmds.push([ns, "ip link set lo up"]);
  cmds.push([n.n1, `ip link add eth0 type veth peer name eth0 netns ${n.n2}`]);
  for (let i = 1; i <= 2; i++) {
    const node = nodes[i - 1]!;
    const pod = pods[i - 1]!;
    cmds.push(
      [node, "ip link set eth0 up"],
      [node, `ip addr add 192.168.50.1${i}/24 brd + dev eth0`],
      [node, "ip link add cni0 type bridge"],
      [node, `ip link set cni0 address ${CNI0_MAC(i)}`],
      [node, "ip link set cni0 up"],
      [node, `ip addr add 10.244.${i - 1}.1/24 brd + dev cni0`],
      [node, "sysctl -w net.ipv4.ip_forward=1"],
      [node, `ip link add veth1 type veth peer name eth0 netns ${pod}`],
      [node, "ip link set veth1 master cni0"],
      [node, "ip link set veth1 up"],
      [pod, "ip link set eth0 up"],
      [pod, `ip addr add 10.244.${i - 1}.2/24 dev eth0`],
      [pod, `ip route add default via 10.244.${i - 1}.1 dev eth0`],
      [node, `ip link add flannel.1 type vxlan id 1 local 192.168.50.1${i} dev eth0 dstport 4789 nolearning`],
      [node, `ip link set flannel.1 address ${FLANNEL_MAC(i)}`],
      [node, "ip link set flannel.1 up"],
      [node, `ip addr add 10.244.${i - 1}.0/32 dev flannel.1`],
    );
  }
  for (const [i, j] of [
    [1, 2],
    [2, 1],
  ] as const) {
    const node = nodes[i - 1]!;
    cmds.push(
      [node, `ip route add 10.244.${j - 1}.0/24 via 10.244.${j - 1}.0 dev flannel.1 onlink`],
      [node, `ip neigh add 10.244.${j - 1}.0 lladdr ${FLANNEL_MAC(j)} dev flannel.1 nud permanent`],
      [node, `bridge fdb append ${FLANNEL_MAC(j)} dev flannel.1 dst 192.168.50.1${j}`],
    );
  }
  cmds.push([n.n1, "ip route add blackhole 198.51.100.0/24"], [n.n1, "ip route add 203.0.113.0/24 via 192.168.50.12 metric 100"]);
  return cmds;
}

/** Replace every MAC with the `ns/dev` owning it (or "mac?"), and drop what only the kernel has. */
export function labelMacs(text: string, macs: Map<string, string>): string {
  return text.replace(/\b([0-9a-f]{2}(:[0-9a-f]{2}){5})\b/g, (m) => macs.get(m) ?? "mac?");
}

/** `bridge fdb` lines comparable across kernel and model: no multicast entries, no VLAN duplicates, sorted. */
export function normFdb(text: string, macs: Map<string, string>): string[] {
  return text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !/ vlan \d+/.test(l) && !/^(33:33|01:00:5e|01:80:c2)/.test(l))
    .map((l) => labelMacs(l, macs))
    .sort();
}

/** `ip addr` reduced to what both sides define: per device name, flags, mtu, master, state and inet lines. */
export function normAddr(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split("\n")) {
    const m = /^\d+: ([^:@]+)(@[^:]+)?: <([^>]*)> mtu (\d+)(.*)$/.exec(line);
    if (m) {
      const master = /master (\S+)/.exec(m[5]!)?.[1];
      const state = /state (\S+)/.exec(m[5]!)?.[1];
      out.push(`${m[1]} <${m[3]}> mtu ${m[4]}${master ? ` master ${master}` : ""} state ${state}`);
      continue;
    }
    const inet = /^\s+inet (\S+)( brd \S+)? scope (\S+)( secondary)?.* (\S+)$/.exec(line);
    if (inet) out.push(`  inet ${inet[1]}${inet[2] ?? ""} scope ${inet[3]}${inet[4] ?? ""}`);
  }
  return out;
}

/** `ip neigh` as (ip dev label state-class), sorted; transient states are one class. */
export function normNeigh(text: string, macs: Map<string, string>): string[] {
  return text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.includes("fe80"))
    .map((l) => labelMacs(l, macs).replace(/\b(REACHABLE|STALE|DELAY|PROBE)\b/, "VALID"))
    .sort();
}

/** The `vxlan ...` detail line's fields both sides print. */
export function vxlanFields(text: string): string {
  const line = text.split("\n").find((l) => l.trim().startsWith("vxlan ")) ?? "";
  const get = (k: string) => new RegExp(`\\b${k} (\\S+)`).exec(line)?.[1] ?? "-";
  return `id ${get("id")} local ${get("local")} dev ${get("dev")} dstport ${get("dstport")} ${/\bnolearning\b/.test(line) ? "nolearning" : "learning"} ${/\bnoudpcsum\b/.test(line) ? "noudpcsum" : /\budpcsum\b/.test(line) ? "udpcsum" : "-"}`;
}

import { spawn, type ChildProcess } from "node:child_process";

/**
 * Start `tcpdump -U -w FILE -i DEV` in a namespace and resolve once it says it is listening (a fixed sleep is not
 * enough on a loaded machine). Rejects after `timeoutMs`.
 */
export function startCapture(ns: string, dev: string, file: string, timeoutMs = 15000, extra: string[] = []): Promise<ChildProcess> {
  const p = spawn("ip", ["netns", "exec", ns, "tcpdump", "-U", "-n", "-i", dev, ...extra, "-w", file], { stdio: ["ignore", "ignore", "pipe"] });
  return new Promise((resolve, reject) => {
    let err = "";
    const timer = setTimeout(() => {
      p.kill("SIGKILL");
      reject(new Error(`tcpdump on ${ns}/${dev} did not start: ${err}`));
    }, timeoutMs);
    p.stderr!.on("data", (d: Buffer) => {
      err += d.toString();
      if (err.includes("listening on")) {
        clearTimeout(timer);
        // Give the kernel a moment to attach the socket's filter after the message.
        setTimeout(() => resolve(p), 200);
      }
    });
    p.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`tcpdump on ${ns}/${dev} exited (${code}): ${err}`));
    });
  });
}

/** Stop a capture and wait for it to flush and exit. */
export async function stopCapture(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null) return;
  const done = new Promise((res) => p.once("exit", res));
  p.kill("SIGINT");
  await done;
}
