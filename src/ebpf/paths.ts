// Where the package's own files are, whether this module runs from src/ (tsx, vitest) or from dist/src/ (the
// built CLI, `npm start`, `npx tcbox`): walk up to the package.json that names tcbox.
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

function findPackageRoot(from: string): string {
  let dir = from;
  for (;;) {
    const pkg = join(dir, "package.json");
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, "utf8")) as { name?: string }).name === "tcbox") return dir;
      } catch {
        // not ours; keep walking
      }
    }
    const up = dirname(dir);
    if (up === dir) throw new Error(`cannot find the tcbox package root above ${from}`);
    dir = up;
  }
}

export const PACKAGE_ROOT = findPackageRoot(dirname(fileURLToPath(import.meta.url)));
/** The SDK programs import as "tcbox". */
export const SDK_DIR = join(PACKAGE_ROOT, "assembly");
/** The reference programs (lb4, policy, snat, flowlog, pass, drop). */
export const PROGRAMS_DIR = join(PACKAGE_ROOT, "programs");
