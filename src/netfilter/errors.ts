// The netfilter layer's error: carries where it happened (`rules.txt:12`) so the CLI prints one line.
// Messages follow iptables-restore's own wording where it has one ("line N failed").

export class NetfilterError extends Error {
  constructor(
    message: string,
    readonly where?: string,
  ) {
    super(message);
    this.name = "NetfilterError";
  }
}
