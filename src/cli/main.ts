#!/usr/bin/env node
import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Command, CommanderError } from "commander";
import { commands } from "./commands.js";
import { exitCodeOf, formatError, warn } from "./output.js";

export function buildProgram(): Command {
  const program = new Command();
  program
    .name("tcbox")
    .description("eBPF-style programmable dataplane sandbox: Kubernetes dataplanes Gen 1-4, packet for packet")
    .version("0.1.0")
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  for (const register of commands) register(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: "user" });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version exit 0; usage errors were already printed by commander.
      return err.exitCode === 0 ? 0 : 2;
    }
    warn(formatError(err));
    if (process.env.TCBOX_DEBUG && err instanceof Error) warn(err.stack ?? "");
    return exitCodeOf(err);
  }
}

function isEntryPoint(): boolean {
  const arg = process.argv[1];
  if (arg === undefined) return false;
  try {
    return realpathSync(arg) === fileURLToPath(import.meta.url);
  } catch {
    return false;
  }
}

/**
 * A reader that went away (`tcbox ... | head`): stop quietly, as Unix tools do on SIGPIPE, instead of an
 * unhandled 'error' event's stack trace. Anything else on stdout is still an error.
 */
export function exitOnEpipe(stream: NodeJS.WriteStream = process.stdout): void {
  stream.on("error", (err: NodeJS.ErrnoException) => {
    if (err.code === "EPIPE") process.exit(0);
    warn(formatError(err));
    process.exit(1);
  });
}

if (isEntryPoint()) {
  exitOnEpipe();
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err) => {
      warn(formatError(err));
      process.exitCode = 1;
    },
  );
}
