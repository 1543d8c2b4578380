// One error class for the Kubernetes layer. `where` names the file, the document (1-based, with its kind and
// namespace/name when known) and the field path, the way kube-apiserver names an invalid field:
//   cluster.yaml: document 3 (Service default/web), spec.ports[0].port
// `line` is the 1-based line in the file of the offending node when the YAML gave us one.

export class ManifestError extends Error {
  constructor(
    message: string,
    readonly where: string,
    readonly line?: number,
  ) {
    super(message);
    this.name = "ManifestError";
  }
}
