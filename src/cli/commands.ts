// Every subcommand registers itself here: one file per command in src/cli/.
import type { Command } from "commander";

export type Register = (program: Command) => void;

export const commands: Register[] = [];
