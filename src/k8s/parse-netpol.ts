// NetworkPolicy (networking.k8s.io/v1), validated and typed. Enforcement belongs to the policy issue; this only
// guarantees the object is what kube-apiserver would have stored (defaults applied: policyTypes, protocol).
import type { Field } from "./manifest-reader.js";
import type { NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort, NetworkPolicyRule } from "./types.js";
import { readLabelSelector, readMeta } from "./parse-core.js";
import { checkCidr, checkPortName, readPort, readProtocol } from "./validate.js";
import { cidrContains, parseCidr } from "../packet/addr.js";

function readPeer(f: Field): NetworkPolicyPeer {
  const ps = f.get("podSelector");
  const ns = f.get("namespaceSelector");
  const ib = f.get("ipBlock");
  let ipBlock: NetworkPolicyPeer["ipBlock"] = null;
  if (ib.present) {
    if (ps.present || ns.present) throw f.error("Forbidden: may not specify more than 1 peer type when ipBlock is set");
    const cidr = checkCidr(ib.get("cidr"), ib.get("cidr").str({ required: true }));
    const outer = parseCidr(cidr);
    const except = ib.get("except").list().map((e) => {
      const c = checkCidr(e, e.str({ required: true }));
      const inner = parseCidr(c);
      if (inner.len <= outer.len || !cidrContains(outer, inner.addr)) throw e.error(`Invalid value: "${c}": must be a strict subset of \`cidr\``);
      return c;
    });
    ipBlock = { cidr, except };
  } else if (!ps.present && !ns.present) {
    throw f.error("Required value: must specify a peer");
  }
  return {
    podSelector: ps.present ? readLabelSelector(ps) : null,
    namespaceSelector: ns.present ? readLabelSelector(ns) : null,
    ipBlock,
  };
}

function readPolicyPort(f: Field): NetworkPolicyPort {
  const protocol = readProtocol(f.get("protocol"));
  const pf = f.get("port");
  let port: number | string | null = null;
  if (pf.present) {
    if (typeof pf.value === "number") port = readPort(pf);
    else {
      port = pf.str();
      checkPortName(pf, port);
    }
  }
  const ef = f.get("endPort");
  let endPort: number | null = null;
  if (ef.present) {
    endPort = readPort(ef);
    if (typeof port !== "number") throw ef.error("Required value: may not be specified when `port` is not a number");
    if (endPort < port) throw ef.error("Invalid value: must be greater than or equal to `port`");
  }
  return { protocol, port, endPort };
}

function readRules(list: Field, peerKey: "from" | "to"): NetworkPolicyRule[] {
  return list.list().map((r) => ({
    ports: r.get("ports").list().map(readPolicyPort),
    peers: r.get(peerKey).list().map(readPeer),
  }));
}

export function readNetworkPolicy(root: Field): NetworkPolicy {
  const metadata = readMeta(root, "NetworkPolicy", true);
  const spec = root.get("spec");
  const psField = spec.get("podSelector");
  if (!psField.present) throw psField.error("Required value");
  const podSelector = readLabelSelector(psField);
  const ingress = readRules(spec.get("ingress"), "from");
  const egress = readRules(spec.get("egress"), "to");
  const ptField = spec.get("policyTypes");
  let policyTypes: ("Ingress" | "Egress")[];
  if (ptField.present) {
    policyTypes = ptField.list().map((f) => f.oneOf(["Ingress", "Egress"] as const, "Ingress"));
  } else {
    // Defaulting: Ingress always; Egress when egress rules are present.
    policyTypes = egress.length > 0 ? ["Ingress", "Egress"] : ["Ingress"];
  }
  return { kind: "NetworkPolicy", metadata, podSelector, policyTypes, ingress, egress };
}
