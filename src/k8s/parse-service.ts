// Service and EndpointSlice, with the validation kube-apiserver applies (pkg/apis/core/validation,
// pkg/apis/discovery/validation). ClusterIPs and node ports left unset here are allocated in cluster.ts.
import type { Field } from "./manifest-reader.js";
import type { Endpoint, EndpointPort, EndpointSlice, Service, ServicePort, ServiceType } from "./types.js";
import { LABEL_SERVICE_NAME } from "./types.js";
import { readMeta } from "./parse-core.js";
import { checkCidr, checkDns1123Subdomain, checkIpv4, checkLabels, checkPortName, readPort, readProtocol } from "./validate.js";

function readServicePort(p: Field, type: ServiceType, multi: boolean): ServicePort {
  const nameField = p.get("name");
  const name = nameField.str();
  if (multi && name === "") throw nameField.error("Required value");
  if (name !== "") checkPortName(nameField, name);
  const port = readPort(p.get("port"));
  const tp = p.get("targetPort");
  let targetPort: number | string = port;
  if (tp.present) {
    if (typeof tp.value === "number") targetPort = readPort(tp);
    else {
      const s = tp.str();
      checkPortName(tp, s);
      targetPort = s;
    }
  }
  const np = p.get("nodePort");
  let nodePort = 0;
  if (np.present) {
    nodePort = readPort(np);
    if (type === "ClusterIP" || type === "ExternalName") throw np.error(`Forbidden: may not be used when \`type\` is '${type}'`);
  }
  return { name, protocol: readProtocol(p.get("protocol")), port, targetPort, nodePort, appProtocol: p.get("appProtocol").optStr() };
}

export function readService(root: Field): Service {
  const metadata = readMeta(root, "Service", true);
  const spec = root.get("spec");
  const type = spec.get("type").oneOf(["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"] as const, "ClusterIP");

  const sel = spec.get("selector");
  let selector: Record<string, string> | null = null;
  if (sel.present) {
    if (typeof sel.value === "object" && !Array.isArray(sel.value) && ("matchLabels" in (sel.value as object) || "matchExpressions" in (sel.value as object))) {
      throw sel.error("Invalid value: a Service selector is a plain map of labels (matchLabels/matchExpressions belong to workloads)");
    }
    selector = sel.stringMap();
    checkLabels(sel, selector);
  }

  const portsField = spec.get("ports");
  const portFields = portsField.list();
  const clusterIPField = spec.get("clusterIP");
  const clusterIP = clusterIPField.str();
  if (clusterIP !== "" && clusterIP !== "None") checkIpv4(clusterIPField, clusterIP);
  const headless = clusterIP === "None";
  if (portFields.length === 0 && type !== "ExternalName" && !headless) throw portsField.error("Required value");
  const ports = portFields.map((p) => readServicePort(p, type, portFields.length > 1));
  const seenNames = new Map<string, number>();
  const seenPorts = new Set<string>();
  ports.forEach((p, i) => {
    if (p.name !== "" && seenNames.has(p.name)) throw portFields[i]!.get("name").error(`Duplicate value: "${p.name}"`);
    seenNames.set(p.name, i);
    const key = `${p.port}/${p.protocol}`;
    if (seenPorts.has(key)) throw portFields[i]!.error(`Duplicate value: {"port":${p.port},"protocol":"${p.protocol}"}`);
    seenPorts.add(key);
  });

  const clusterIPs = spec.get("clusterIPs").strList();
  spec.get("clusterIPs").list().forEach((f, i) => {
    if (clusterIPs[i] !== "None") checkIpv4(f, clusterIPs[i]!);
  });
  if (clusterIPs.length > 0 && clusterIP !== "" && clusterIPs[0] !== clusterIP) {
    throw spec.get("clusterIPs").list()[0]!.error(`Invalid value: "${clusterIPs[0]}": must match \`clusterIP\``);
  }

  let externalName: string | null = null;
  if (type === "ExternalName") {
    const f = spec.get("externalName");
    externalName = f.str({ required: true });
    checkDns1123Subdomain(f, externalName.replace(/\.$/, ""));
    if (clusterIP !== "" && !headless) throw clusterIPField.error("Forbidden: may not be set for ExternalName services");
  }

  const externalIPs = spec.get("externalIPs").strList();
  spec.get("externalIPs").list().forEach((f, i) => checkIpv4(f, externalIPs[i]!));

  const ingress: string[] = [];
  const proxyIngress: string[] = [];
  for (const ing of root.get("status").get("loadBalancer").get("ingress").list()) {
    const ipField = ing.get("ip");
    if (!ipField.present) continue; // hostname-only ingress: kube-proxy has no IP to capture
    checkIpv4(ipField, ipField.str());
    const mode = ing.get("ipMode").oneOf(["VIP", "Proxy"] as const, "VIP");
    (mode === "VIP" ? ingress : proxyIngress).push(ipField.str());
  }

  const srField = spec.get("loadBalancerSourceRanges");
  const loadBalancerSourceRanges = srField.list().map((f) => {
    // kube-proxy trims whitespace before parsing (upstream keeps " 203.0.113.0/25" working for back-compat).
    const v = f.str({ required: true }).trim();
    return checkCidr(f, v);
  });
  if (loadBalancerSourceRanges.length > 0 && type !== "LoadBalancer") {
    throw srField.error("Forbidden: may only be used when `type` is 'LoadBalancer'");
  }

  const externallyAccessible = type === "NodePort" || type === "LoadBalancer";
  const etpField = spec.get("externalTrafficPolicy");
  const externalTrafficPolicy = etpField.oneOf(["Cluster", "Local"] as const, "Cluster");
  if (etpField.present && !externallyAccessible && externalIPs.length === 0) {
    throw etpField.error("Invalid value: may only be set for externally-accessible services");
  }
  const internalTrafficPolicy = spec.get("internalTrafficPolicy").oneOf(["Cluster", "Local"] as const, "Cluster");

  const hcField = spec.get("healthCheckNodePort");
  let healthCheckNodePort = 0;
  if (hcField.present) {
    healthCheckNodePort = readPort(hcField);
    if (!(type === "LoadBalancer" && externalTrafficPolicy === "Local")) {
      throw hcField.error("Invalid value: may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'");
    }
  }

  const sessionAffinity = spec.get("sessionAffinity").oneOf(["None", "ClientIP"] as const, "None");
  const timeoutField = spec.get("sessionAffinityConfig").get("clientIP").get("timeoutSeconds");
  const sessionAffinityTimeoutSeconds = timeoutField.int({ def: 10800, min: 1, max: 86400, range: "1-86400" });
  if (timeoutField.present && sessionAffinity !== "ClientIP") {
    throw timeoutField.error("Forbidden: must not be set when `sessionAffinity` is None");
  }

  return {
    kind: "Service",
    metadata,
    type,
    selector: type === "ExternalName" ? null : selector,
    ports,
    clusterIP: type === "ExternalName" ? "" : clusterIP,
    clusterIPs: clusterIPs.length > 0 ? clusterIPs : clusterIP ? [clusterIP] : [],
    externalIPs,
    externalName,
    loadBalancerIngress: type === "LoadBalancer" ? ingress : [],
    loadBalancerSourceRanges,
    externalTrafficPolicy: externallyAccessible || externalIPs.length > 0 ? externalTrafficPolicy : "Cluster",
    internalTrafficPolicy,
    healthCheckNodePort,
    sessionAffinity,
    sessionAffinityTimeoutSeconds,
    publishNotReadyAddresses: spec.get("publishNotReadyAddresses").bool(),
    trafficDistribution: spec.get("trafficDistribution").optStr(),
    loadBalancerProxyIPs: type === "LoadBalancer" ? proxyIngress : [],
  };
}

export function readEndpointSlice(root: Field): EndpointSlice {
  const meta = root.get("metadata");
  const generateName = meta.get("generateName").str();
  const metadata = readMeta(root, "EndpointSlice", true, generateName === "");
  if (metadata.name === "") metadata.name = generateName; // completed with a suffix in cluster.ts
  const addressType = root.get("addressType").oneOf(["IPv4", "IPv6", "FQDN"] as const, "IPv4");
  if (!root.get("addressType").present) throw root.get("addressType").error("Required value");
  const epList = root.get("endpoints").list();
  if (epList.length > 1000) throw root.get("endpoints").error("Too many: must have at most 1000 items");
  const endpoints: Endpoint[] = epList.map((e) => {
    const addrs = e.get("addresses");
    const addresses = addrs.strList();
    if (addresses.length === 0) throw addrs.error("Required value");
    if (addresses.length > 100) throw addrs.error("Too many: must have at most 100 items");
    if (addressType === "IPv4") addrs.list().forEach((f, i) => checkIpv4(f, addresses[i]!));
    const c = e.get("conditions");
    // discovery/v1 semantics: ready nil means ready; serving nil means "same as ready"; terminating nil = false.
    const ready = c.get("ready").bool(true);
    const serving = c.get("serving").bool(ready);
    const terminating = c.get("terminating").bool(false);
    const tr = e.get("targetRef");
    return {
      addresses,
      conditions: { ready, serving, terminating },
      nodeName: e.get("nodeName").optStr(),
      zone: e.get("zone").optStr(),
      targetRef: tr.present ? `${tr.get("kind").str()} ${tr.get("namespace").str({ def: metadata.namespace })}/${tr.get("name").str()}` : null,
      hintsZones: e.get("hints").get("forZones").list().map((z) => z.get("name").str({ required: true })),
    };
  });
  const seen = new Set<string>();
  const ports: EndpointPort[] = root.get("ports").list().map((p) => {
    const name = p.get("name").str();
    if (name !== "") checkPortName(p.get("name"), name);
    if (seen.has(name)) throw p.get("name").error(`Duplicate value: "${name}"`);
    seen.add(name);
    return { name, port: readPort(p.get("port")), protocol: readProtocol(p.get("protocol")), appProtocol: p.get("appProtocol").optStr() };
  });
  return { kind: "EndpointSlice", metadata, addressType, endpoints, ports, serviceName: metadata.labels[LABEL_SERVICE_NAME] ?? "" };
}
