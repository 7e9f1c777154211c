import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * The project folder (the one holding package.json), found from this module's location, so that
 * sources run by Node (lib/) and compiled code (dist/lib/) both find hack/ and crds/.
 */
export function projectRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, "package.json")) && existsSync(join(dir, "hack"))) return dir;
    const parent = dirname(dir);
    if (parent === dir)
      throw new Error("cannot find the project folder (package.json beside hack/) above this module");
    dir = parent;
  }
}
