// Errors of the policy layer (expected truth tables, policy rendering), with where they happened.
export class NetpolError extends Error {
  constructor(
    message: string,
    readonly where: string,
  ) {
    super(message);
    this.name = "NetpolError";
  }
}
