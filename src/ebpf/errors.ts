// The ebpf layer's errors. `where` names the program, map or file (and key) so the CLI prints one line:
//   tcbox: lb4.ts:12:7: Cannot find name 'foo'.
//   tcbox: program drop.wasm: import "env.seed" is not a tcbox helper
//   tcbox: map cilium_lb4_services_v2: key 0a 00 00 01 ...: update failed: -E2BIG (map full)
export class BpfError extends Error {
  constructor(
    message: string,
    readonly where: string,
  ) {
    super(message);
    this.name = "BpfError";
  }
}

/** Compile errors of a program (each diagnostic as FILE:LINE:COL: message). */
export class CompileError extends BpfError {
  constructor(
    message: string,
    where: string,
    readonly diagnostics: string[],
  ) {
    super(message, where);
    this.name = "CompileError";
  }
}

/** The load-time verifier refused the program. */
export class VerifierError extends BpfError {
  constructor(message: string, where: string) {
    super(message, where);
    this.name = "VerifierError";
  }
}

/** A map operation failed; `errno` is the kernel's (ENOENT, EEXIST, E2BIG, ...). */
export class MapError extends BpfError {
  constructor(
    message: string,
    where: string,
    readonly errno: number,
  ) {
    super(message, where);
    this.name = "MapError";
  }
}

const ERRNO_NAMES: Record<number, string> = { 2: "ENOENT", 7: "E2BIG", 11: "EAGAIN", 17: "EEXIST", 22: "EINVAL", 28: "ENOSPC" };
export function errnoName(e: number): string {
  return ERRNO_NAMES[Math.abs(e)] ?? `errno ${Math.abs(e)}`;
}
