// Deployment, ReplicaSet and StatefulSet: read as a pod template plus a replica count; workloads.ts expands them
// into Pods the way their controllers name them.
import type { Field } from "./manifest-reader.js";
import type { LabelSelector, ObjectMeta } from "./types.js";
import { readLabelSelector, readMeta, readPodSpec, selectorMatches, type PodSpecFields } from "./parse-core.js";
import { checkLabels } from "./validate.js";

export interface Workload {
  kind: "Deployment" | "ReplicaSet" | "StatefulSet";
  metadata: ObjectMeta;
  replicas: number;
  selector: LabelSelector;
  templateLabels: Record<string, string>;
  template: PodSpecFields;
  /** The template as written (for the pod-template-hash). */
  templateJson: string;
}

export function readWorkload(root: Field, kind: Workload["kind"]): Workload {
  const metadata = readMeta(root, kind, true);
  const spec = root.get("spec");
  const replicas = spec.get("replicas").int({ def: 1, min: 0, max: 100000, range: "0-100000" });
  const selField = spec.get("selector");
  if (!selField.present) throw selField.error("Required value");
  const selector = readLabelSelector(selField);
  if (Object.keys(selector.matchLabels).length === 0 && selector.matchExpressions.length === 0) {
    throw selField.error("Invalid value: empty selector is invalid for deployment");
  }
  const tmpl = spec.get("template");
  const tmeta = tmpl.get("metadata");
  const templateLabels = tmeta.get("labels").stringMap();
  checkLabels(tmeta.get("labels"), templateLabels);
  if (!selectorMatches(selector, templateLabels)) {
    throw tmeta.get("labels").error("Invalid value: `selector` does not match template `labels`");
  }
  const template = readPodSpec(tmpl.get("spec"));
  return { kind, metadata, replicas, selector, templateLabels, template, templateJson: JSON.stringify(tmpl.value) };
}
