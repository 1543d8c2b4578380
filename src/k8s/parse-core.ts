// Namespace, Node and Pod (and the pod template workloads carry), validated as kube-apiserver would.
// Unset allocations stay empty here ("" podIP, "" nodeName, "" podCIDR); cluster.ts fills them.
import type { Field } from "./manifest-reader.js";
import type { Container, ContainerPort, LabelSelector, LabelSelectorRequirement, Namespace, Node, ObjectMeta, Pod } from "./types.js";
import { LABEL_INSTANCE_TYPE, LABEL_ZONE } from "./types.js";
import {
  checkCidr,
  checkDns1123Label,
  checkDns1123Subdomain,
  checkIpv4,
  checkLabels,
  checkPortName,
  readPort,
  readProtocol,
} from "./validate.js";

/** metadata of a namespaced (default "default") or cluster-scoped object; sets the document's label for errors. */
export function readMeta(root: Field, kind: string, namespaced: boolean, nameRequired = true): ObjectMeta {
  const m = root.get("metadata");
  const namespace = namespaced ? m.get("namespace").str({ def: "default" }) || "default" : "";
  const rawName = typeof m.get("name").value === "string" ? (m.get("name").value as string) : "";
  root.doc.label = namespaced ? `${kind} ${namespace}/${rawName}` : `${kind} ${rawName}`;
  const name = m.get("name").str({ required: nameRequired });
  if (name) checkDns1123Subdomain(m.get("name"), name);
  if (namespaced) checkDns1123Label(m.get("namespace"), namespace);
  const labels = m.get("labels").stringMap();
  checkLabels(m.get("labels"), labels);
  const annotations = m.get("annotations").stringMap();
  return { name, namespace, labels, annotations, origin: { file: root.doc.file, document: root.doc.index } };
}

export function readNamespace(root: Field): Namespace {
  const metadata = readMeta(root, "Namespace", false);
  checkDns1123Label(root.get("metadata").get("name"), metadata.name);
  return { kind: "Namespace", metadata };
}

export function readNode(root: Field): Node {
  const metadata = readMeta(root, "Node", false);
  const spec = root.get("spec");
  const internalIPs: string[] = [];
  let externalIP: string | null = null;
  for (const a of root.get("status").get("addresses").list()) {
    const type = a.get("type").str({ required: true });
    const addrField = a.get("address");
    const address = addrField.str({ required: true });
    if (type === "InternalIP") {
      checkIpv4(addrField, address);
      internalIPs.push(address);
    } else if (type === "ExternalIP") {
      checkIpv4(addrField, address);
      externalIP ??= address;
    }
  }
  const podCIDRField = spec.get("podCIDR");
  const podCIDR = podCIDRField.present ? checkCidr(podCIDRField, podCIDRField.str()) : "";
  return {
    kind: "Node",
    metadata,
    internalIP: internalIPs[0] ?? "",
    internalIPs,
    externalIP,
    podCIDR,
    zone: metadata.labels[LABEL_ZONE] ?? null,
    instanceType: metadata.labels[LABEL_INSTANCE_TYPE] ?? null,
    unschedulable: spec.get("unschedulable").bool(),
  };
}

function readContainer(f: Field, seenPortNames: Set<string>): Container {
  const nameField = f.get("name");
  const name = nameField.str({ required: true });
  checkDns1123Label(nameField, name);
  const ports: ContainerPort[] = f.get("ports").list().map((p) => {
    const pname = p.get("name").optStr();
    if (pname !== null) {
      checkPortName(p.get("name"), pname);
      if (seenPortNames.has(pname)) throw p.get("name").error(`Duplicate value: "${pname}"`);
      seenPortNames.add(pname);
    }
    const hostPortField = p.get("hostPort");
    return {
      name: pname,
      containerPort: readPort(p.get("containerPort")),
      protocol: readProtocol(p.get("protocol")),
      hostPort: hostPortField.present ? readPort(hostPortField) : null,
    };
  });
  return { name, image: f.get("image").str(), ports };
}

/** The parts of a pod spec tcbox models. */
export interface PodSpecFields {
  nodeName: string;
  hostNetwork: boolean;
  containers: Container[];
}

export function readPodSpec(spec: Field): PodSpecFields {
  const containersField = spec.get("containers");
  const list = containersField.list();
  if (list.length === 0) throw containersField.error("Required value");
  const names = new Set<string>();
  const portNames = new Set<string>();
  const containers = list.map((c) => {
    const container = readContainer(c, portNames);
    if (names.has(container.name)) throw c.get("name").error(`Duplicate value: "${container.name}"`);
    names.add(container.name);
    return container;
  });
  const nodeNameField = spec.get("nodeName");
  const nodeName = nodeNameField.str();
  if (nodeName) checkDns1123Subdomain(nodeNameField, nodeName);
  return { nodeName, hostNetwork: spec.get("hostNetwork").bool(), containers };
}

export function readPod(root: Field): Pod {
  const metadata = readMeta(root, "Pod", true);
  const spec = readPodSpec(root.get("spec"));
  const status = root.get("status");
  const podIPField = status.get("podIP");
  const podIP = podIPField.present ? podIPField.str() : "";
  if (podIP) checkIpv4(podIPField, podIP);
  const phase = status.get("phase").oneOf(["Pending", "Running", "Succeeded", "Failed", "Unknown"] as const, "Running");
  let ready = phase === "Running";
  for (const c of status.get("conditions").list()) {
    if (c.get("type").str() === "Ready") ready = c.get("status").oneOf(["True", "False", "Unknown"] as const, "True") === "True";
  }
  const terminating = root.get("metadata").get("deletionTimestamp").present;
  return { kind: "Pod", metadata, ...spec, podIP, phase, ready, terminating, ownerRef: null };
}

export function readLabelSelector(f: Field): LabelSelector {
  if (!f.present) return { matchLabels: {}, matchExpressions: [] };
  if (typeof f.value !== "object" || Array.isArray(f.value)) throw f.error("must be a label selector object (matchLabels/matchExpressions)");
  for (const k of f.map()) {
    if (k.keyName() !== "matchLabels" && k.keyName() !== "matchExpressions") {
      throw k.error(`unknown field "${k.keyName()}" in a label selector (did you mean matchLabels?)`);
    }
  }
  const matchLabels = f.get("matchLabels").stringMap();
  checkLabels(f.get("matchLabels"), matchLabels);
  const matchExpressions: LabelSelectorRequirement[] = f.get("matchExpressions").list().map((e) => {
    const operator = e.get("operator").oneOf(["In", "NotIn", "Exists", "DoesNotExist"] as const, "In");
    const values = e.get("values").strList();
    if ((operator === "In" || operator === "NotIn") && values.length === 0) {
      throw e.get("values").error("Required value: must be specified when `operator` is 'In' or 'NotIn'");
    }
    if ((operator === "Exists" || operator === "DoesNotExist") && values.length > 0) {
      throw e.get("values").error("Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'");
    }
    return { key: e.get("key").str({ required: true }), operator, values };
  });
  return { matchLabels, matchExpressions };
}

/** labels.Selector.Matches for a LabelSelector. An empty selector matches everything. */
export function selectorMatches(sel: LabelSelector, labels: Record<string, string>): boolean {
  for (const [k, v] of Object.entries(sel.matchLabels)) if (labels[k] !== v) return false;
  for (const e of sel.matchExpressions) {
    const has = Object.prototype.hasOwnProperty.call(labels, e.key);
    const v = labels[e.key];
    switch (e.operator) {
      case "In":
        if (!has || !e.values.includes(v!)) return false;
        break;
      case "NotIn":
        if (has && e.values.includes(v!)) return false;
        break;
      case "Exists":
        if (!has) return false;
        break;
      case "DoesNotExist":
        if (has) return false;
        break;
    }
  }
  return true;
}
