/**
 * Writes files the way the kubelet updates a Secret or ConfigMap volume (its AtomicWriter): the data
 * lives in a timestamped hidden folder, `..data` is a symlink to it, and each visible file is a
 * symlink through `..data`. An update writes a new folder, points `..data_tmp` at it and renames that
 * over `..data` in one atomic step, then removes the old folder.
 */
import { mkdir, mkdtemp, readlink, rename, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

let generation = 0;

export class KubeletVolume {
  readonly dir: string;

  private constructor(dir: string) {
    this.dir = dir;
  }

  static async create(files: Record<string, string>): Promise<KubeletVolume> {
    const volume = new KubeletVolume(await mkdtemp(join(tmpdir(), "kubelet-volume-")));
    await volume.write(files);
    return volume;
  }

  path(name: string): string {
    return join(this.dir, name);
  }

  async write(files: Record<string, string>): Promise<void> {
    const stamp = `..${new Date().toISOString().replace(/[:.]/g, "_")}.${process.pid}.${generation++}`;
    await mkdir(join(this.dir, stamp));
    await Promise.all(
      Object.entries(files).map(([name, text]) => writeFile(join(this.dir, stamp, name), text)),
    );
    const previous = await readlink(join(this.dir, "..data")).catch(() => undefined);
    await rm(join(this.dir, "..data_tmp"), { force: true });
    await symlink(stamp, join(this.dir, "..data_tmp"));
    await rename(join(this.dir, "..data_tmp"), join(this.dir, "..data"));
    for (const name of Object.keys(files)) {
      await symlink(join("..data", name), join(this.dir, name)).catch((error: unknown) => {
        if ((error as { code?: string }).code !== "EEXIST") throw error;
      });
    }
    if (previous) await rm(join(this.dir, previous), { recursive: true, force: true });
  }

  async remove(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}
