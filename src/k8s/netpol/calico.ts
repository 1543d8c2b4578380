// NetworkPolicy as Calico's Felix renders it in iptables (filter table), for one node:
//   FORWARD -> cali-FORWARD: conntrack RELATED,ESTABLISHED accepted first (replies and open connections pass);
//   cali-from-wl-dispatch -> cali-fw-<hostIf> (egress of the sending workload), then
//   cali-to-wl-dispatch   -> cali-tw-<hostIf> (ingress of the receiving workload);
//   each per-endpoint chain clears the accept mark, jumps to the policy chains of every policy that selects the pod
//   (cali-pi-* ingress, cali-po-* egress), RETURNs when one set the mark 0x10000 and DROPs otherwise.
// Selector sets (Calico's ipsets of member pod IPs) are expanded into one rule per member /32, and ipBlock.except
// into the remaining CIDRs (no set match in our iptables), so the rules a packet walks grow with pods and policies.
// Dispatch: Calico matches the host-side interface (-i/-o cali...). On a bridge (Gen 1, flannel's cni0) the
// routed-to-bridge path has no physdev-out in FORWARD (br_netfilter only knows it for bridged frames), so there
// dispatch is by pod address, as kube-router does on bridges.
import { fnv32a } from "../rand.js";
import { selectorMatches } from "../parse-core.js";
import type { Cluster, NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort, Pod } from "../types.js";
import { cidrMinus } from "./cidr.js";
import { ipBlockContains, peerMatchesPod, policySelects, resolveNamedPort } from "./semantics.js";
import { parseIpv4 } from "../../packet/addr.js";

/** Felix's mark bits: accept (a policy allowed) and pass. */
export const MARK_ACCEPT = 0x10000;
export const MARK_PASS = 0x20000;

export interface PolicyEndpoint {
  pod: Pod;
  /** Host-side interface of the pod's veth. */
  hostIf: string;
}

export interface CalicoOptions {
  /** "interface": -i/-o hostIf (routed veths, Gen 2/3); "address": -s/-d pod IP (bridged veths, Gen 1). */
  dispatch: "interface" | "address";
}

const hex = (n: number) => n.toString(16).padStart(8, "0");
/** Calico names policy chains by a hash of the policy name (chain names are at most 28 characters). */
export function policyChain(dir: "i" | "o", pol: NetworkPolicy): string {
  const id = `${pol.metadata.namespace}/${pol.metadata.name}`;
  return `cali-p${dir}-_${hex(fnv32a(id))}${hex(fnv32a(`${id}#${dir}`)).slice(0, 8)}`;
}

interface Match {
  src: string | null;
  dst: string | null;
  proto: string | null;
  dport: string | null;
}

function matchText(m: Match): string {
  const parts: string[] = [];
  if (m.src !== null) parts.push(`-s ${m.src}`);
  if (m.dst !== null) parts.push(`-d ${m.dst}`);
  if (m.proto !== null) {
    parts.push(`-p ${m.proto}`);
    if (m.dport !== null) parts.push(`-m ${m.proto} --dport ${m.dport}`);
  }
  return parts.join(" ");
}

const podsOf = (c: Cluster) => c.pods.filter((p) => !p.hostNetwork && p.podIP !== "" && p.phase !== "Succeeded" && p.phase !== "Failed");

/** Addresses a peer stands for: member pod /32s for selectors, the ipBlock minus its excepts. */
function peerCidrs(c: Cluster, peer: NetworkPolicyPeer, ns: string): string[] {
  if (peer.ipBlock !== null) return cidrMinus(peer.ipBlock.cidr, peer.ipBlock.except);
  return podsOf(c).filter((p) => peerMatchesPod(c, peer, ns, p)).map((p) => `${p.podIP}/32`);
}

/** Pods a peer stands for (named ports are resolved on each destination pod). */
function peerPods(c: Cluster, peer: NetworkPolicyPeer | null, ns: string): Pod[] {
  if (peer === null) return podsOf(c);
  if (peer.ipBlock !== null) return podsOf(c).filter((p) => ipBlockContains(peer.ipBlock!, parseIpv4(p.podIP)));
  return podsOf(c).filter((p) => peerMatchesPod(c, peer, ns, p));
}

function portSpec(pp: NetworkPolicyPort, port: number | null): { proto: string; dport: string | null } {
  const proto = pp.protocol.toLowerCase();
  if (port === null) return { proto, dport: null };
  return { proto, dport: pp.endPort !== null && pp.endPort !== port ? `${port}:${pp.endPort}` : String(port) };
}

/** The rules of one policy chain (direction i = ingress, o = egress), `targets` = the pods the policy selects. */
export function policyRules(c: Cluster, pol: NetworkPolicy, dir: "i" | "o", targets: Pod[]): string[] {
  const chain = policyChain(dir, pol);
  const ns = pol.metadata.namespace;
  const out: string[] = [];
  const accept = `-j MARK --set-xmark 0x${MARK_ACCEPT.toString(16)}/0x${MARK_ACCEPT.toString(16)}`;
  for (const rule of dir === "i" ? pol.ingress : pol.egress) {
    const peers: (NetworkPolicyPeer | null)[] = rule.peers.length === 0 ? [null] : rule.peers;
    const ports: (NetworkPolicyPort | null)[] = rule.ports.length === 0 ? [null] : rule.ports;
    const matches: Match[] = [];
    for (const peer of peers) {
      const cidrs = peer === null ? [null] : peerCidrs(c, peer, ns);
      for (const pp of ports) {
        if (pp === null) {
          for (const a of cidrs) matches.push({ src: dir === "i" ? a : null, dst: dir === "o" ? a : null, proto: null, dport: null });
        } else if (typeof pp.port === "string") {
          // Named port: resolved on each destination pod (the selected pods for ingress, the peers for egress).
          if (dir === "i") {
            for (const t of targets) {
              const port = resolveNamedPort(t, pp.port, pp.protocol);
              if (port === null) continue;
              for (const a of cidrs) matches.push({ src: a, dst: `${t.podIP}/32`, ...portSpec({ ...pp, endPort: null }, port) });
            }
          } else {
            for (const d of peerPods(c, peer, ns)) {
              const port = resolveNamedPort(d, pp.port, pp.protocol);
              if (port !== null) matches.push({ src: null, dst: `${d.podIP}/32`, ...portSpec({ ...pp, endPort: null }, port) });
            }
          }
        } else {
          for (const a of cidrs) matches.push({ src: dir === "i" ? a : null, dst: dir === "o" ? a : null, ...portSpec(pp, pp.port) });
        }
      }
    }
    for (const m of matches) out.push(`-A ${chain} ${matchText(m)} ${accept}`.replace(/  +/g, " "));
    if (matches.length > 0) out.push(`-A ${chain} -m mark --mark 0x${MARK_ACCEPT.toString(16)}/0x${MARK_ACCEPT.toString(16)} -j RETURN`);
  }
  return out;
}

function endpointChain(name: string, pols: NetworkPolicy[], dir: "i" | "o"): string[] {
  const m = `0x${MARK_ACCEPT.toString(16)}/0x${MARK_ACCEPT.toString(16)}`;
  if (pols.length === 0) return [`-A ${name} -m comment --comment "no policy selects this pod" -j RETURN`];
  return [
    `-A ${name} -j MARK --set-xmark 0x0/0x${(MARK_ACCEPT | MARK_PASS).toString(16)}`,
    ...pols.flatMap((p) => [`-A ${name} -j ${policyChain(dir, p)}`, `-A ${name} -m mark --mark ${m} -j RETURN`]),
    `-A ${name} -m comment --comment "Drop if no policies passed packet" -j DROP`,
  ];
}

/** The filter-table payload (iptables-save text) one node carries for its local endpoints. */
export function calicoPolicySave(c: Cluster, endpoints: PolicyEndpoint[], opts: CalicoOptions): string {
  const chains = ["cali-FORWARD", "cali-from-wl-dispatch", "cali-to-wl-dispatch"];
  const rules: string[] = [
    `-A FORWARD -m comment --comment "cali:wUHhoiAYhphO9Mso" -j cali-FORWARD`,
    `-A cali-FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`,
    `-A cali-FORWARD -j cali-from-wl-dispatch`,
    `-A cali-FORWARD -j cali-to-wl-dispatch`,
  ];
  const used = new Map<string, { pol: NetworkPolicy; dir: "i" | "o"; targets: Pod[] }>();
  const body: string[] = [];
  for (const ep of endpoints) {
    const fw = `cali-fw-${ep.hostIf}`;
    const tw = `cali-tw-${ep.hostIf}`;
    chains.push(fw, tw);
    const ip = `${ep.pod.podIP}/32`;
    rules.push(opts.dispatch === "interface" ? `-A cali-from-wl-dispatch -i ${ep.hostIf} -g ${fw}` : `-A cali-from-wl-dispatch -s ${ip} -g ${fw}`);
    rules.push(opts.dispatch === "interface" ? `-A cali-to-wl-dispatch -o ${ep.hostIf} -g ${tw}` : `-A cali-to-wl-dispatch -d ${ip} -g ${tw}`);
    for (const [dir, type, name] of [["o", "Egress", fw], ["i", "Ingress", tw]] as const) {
      const pols = c.networkPolicies.filter((p) => p.policyTypes.includes(type) && policySelects(p, ep.pod));
      for (const p of pols) {
        const ch = policyChain(dir, p);
        const u = used.get(ch) ?? { pol: p, dir, targets: [] };
        u.targets.push(ep.pod);
        used.set(ch, u);
      }
      body.push(...endpointChain(name, pols, dir));
    }
  }
  for (const [ch, u] of used) {
    chains.push(ch);
    body.push(...policyRules(c, u.pol, u.dir, u.targets));
  }
  return ["*filter", ...chains.map((ch) => `:${ch} - [0:0]`), ...rules, ...body, "COMMIT", ""].join("\n");
}

/** Does a selector-free reading of the cluster say which pods any policy selects? (for tests and printing) */
export function selectedPods(c: Cluster): Pod[] {
  return podsOf(c).filter((p) => c.networkPolicies.some((pol) => pol.metadata.namespace === p.metadata.namespace && selectorMatches(pol.podSelector, p.metadata.labels)));
}
