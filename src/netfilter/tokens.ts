// iptables-restore's line splitting (add_param_to_argv): whitespace separates words, double quotes group,
// a backslash escapes the next character inside quotes. Single quotes are not special (iptables-restore
// rejects `'a b'` as two words), which we keep so texts we accept are texts it accepts.
import { NetfilterError } from "./errors.js";

export function splitArgs(line: string, where: string): string[] {
  const out: string[] = [];
  let cur = "";
  let inWord = false;
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quoted) {
      if (c === "\\" && i + 1 < line.length) {
        cur += line[++i];
      } else if (c === '"') {
        quoted = false;
      } else {
        cur += c;
      }
      continue;
    }
    if (c === '"') {
      quoted = true;
      inWord = true;
    } else if (c === " " || c === "\t") {
      if (inWord) out.push(cur);
      cur = "";
      inWord = false;
    } else {
      cur += c;
      inWord = true;
    }
  }
  if (quoted) throw new NetfilterError("unterminated quoted string", where);
  if (inWord) out.push(cur);
  return out;
}

/** xtables_save_string: bare when only [A-Za-z0-9_-], else double-quoted with `"`, `\` and `'` escaped. */
export function saveString(value: string): string {
  if (value.length > 0 && /^[A-Za-z0-9_-]+$/.test(value)) return value;
  return `"${value.replace(/["\\']/g, (c) => "\\" + c)}"`;
}

/** Reads a rule's words one at a time; errors name the word. */
export class ArgCursor {
  i = 0;
  constructor(
    readonly args: string[],
    readonly where: string,
  ) {}
  done(): boolean {
    return this.i >= this.args.length;
  }
  peek(): string | undefined {
    return this.args[this.i];
  }
  next(): string | undefined {
    return this.args[this.i++];
  }
  /** The value of option `opt`; missing value is an error like iptables' "option requires an argument". */
  value(opt: string): string {
    const v = this.args[this.i];
    if (v === undefined) throw new NetfilterError(`option "${opt}" requires an argument`, this.where);
    this.i++;
    return v;
  }
  fail(message: string): never {
    throw new NetfilterError(message, this.where);
  }
}

export function parseUint(text: string, max: number, what: string, cur: ArgCursor): number {
  let v: number;
  if (/^0x[0-9a-fA-F]+$/.test(text)) v = parseInt(text.slice(2), 16);
  else if (/^[0-9]+$/.test(text)) v = Number(text);
  else return cur.fail(`Bad ${what} "${text}"`);
  if (v > max) cur.fail(`${what} "${text}" out of range`);
  return v;
}

export function hex(v: number): string {
  return "0x" + (v >>> 0).toString(16);
}
