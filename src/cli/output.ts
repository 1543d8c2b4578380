// The only place that writes to the terminal. Commands build strings or objects and hand them here.

/** An error the CLI reports as one line and a non-zero exit. Any layer's error with a `where` field is shown with it. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly where?: string,
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = "CliError";
  }
}

export function print(text: string): void {
  process.stdout.write(text.endsWith("\n") ? text : text + "\n");
}

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + "\n");
}

export function warn(text: string): void {
  process.stderr.write(text.endsWith("\n") ? text : text + "\n");
}

/** One line for any error: `tcbox: WHERE: MESSAGE`. Layers put their location (file:line, packet index) in `where`. */
export function formatError(err: unknown): string {
  if (err instanceof Error) {
    const where = (err as { where?: unknown }).where;
    const msg = err.message.split("\n")[0];
    return typeof where === "string" && where.length > 0 ? `tcbox: ${where}: ${msg}` : `tcbox: ${msg}`;
  }
  return `tcbox: ${String(err)}`;
}

export function exitCodeOf(err: unknown): number {
  const code = (err as { exitCode?: unknown })?.exitCode;
  return typeof code === "number" && code > 0 ? code : 1;
}
