/**
 * Keeps a workload's TLS material current. The kubelet updates a Secret volume by writing a new
 * timestamped folder and atomically swapping the `..data` symlink to it; the file names in the volume
 * are symlinks through `..data`. We watch the folders holding the files (which sees that swap), poll as
 * a fallback (some volume types do not deliver inotify events), and on any change read everything
 * again. New material is applied only after it checks out; otherwise the previous material stays in
 * use, the error names the bad file, and the same bad contents are not reported twice.
 */
import { type FSWatcher, watch } from "node:fs";
import path from "node:path";
import { errorMessage, type Logger } from "../lib/logger.ts";
import {
  loadTlsMaterial,
  readTlsFiles,
  TlsFileError,
  type TlsFilePaths,
  type TlsMaterial,
} from "./tls-files.ts";

export interface TlsReloaderOptions {
  readonly paths: TlsFilePaths;
  readonly logger: Logger;
  /** Called with material that passed every check; the caller swaps it into its TLS context. */
  readonly apply: (material: TlsMaterial) => void;
  readonly pollIntervalMs?: number;
  readonly debounceMs?: number;
}

export class TlsReloader {
  private readonly options: TlsReloaderOptions;
  private material: TlsMaterial | undefined;
  private rejectedDigest: string | undefined;
  private lastError: string | undefined;
  private readonly watchers: FSWatcher[] = [];
  private pollTimer: NodeJS.Timeout | undefined;
  private debounceTimer: NodeJS.Timeout | undefined;
  private reloads = 0;

  constructor(options: TlsReloaderOptions) {
    this.options = options;
  }

  /** Loads the files for the first time; a problem here is fatal to the caller (nothing to serve). */
  start(): TlsMaterial {
    const material = loadTlsMaterial(this.options.paths);
    this.material = material;
    const folders = new Set(
      [this.options.paths.certificate, this.options.paths.privateKey, this.options.paths.trustBundle]
        .filter((p): p is string => p !== undefined)
        .map((p) => path.dirname(p)),
    );
    for (const folder of folders) {
      try {
        const watcher = watch(folder, { persistent: false }, () => {
          this.schedule();
        });
        watcher.on("error", (error) => {
          this.options.logger.warn({ folder, err: error }, "Watching TLS folder failed; polling continues");
        });
        this.watchers.push(watcher);
      } catch (error) {
        this.options.logger.warn({ folder, err: error }, "Cannot watch TLS folder; relying on polling");
      }
    }
    this.pollTimer = setInterval(() => {
      this.schedule();
    }, this.options.pollIntervalMs ?? 5_000);
    this.pollTimer.unref();
    return material;
  }

  get current(): TlsMaterial | undefined {
    return this.material;
  }

  get status() {
    return { reloads: this.reloads, lastError: this.lastError ?? null };
  }

  stop(): void {
    for (const watcher of this.watchers.splice(0)) watcher.close();
    clearInterval(this.pollTimer);
    clearTimeout(this.debounceTimer);
  }

  /** Checks the files now (synchronously: they are small). Used by the watchers, the poller and tests. */
  check(): void {
    this.reload();
  }

  private schedule(): void {
    clearTimeout(this.debounceTimer);
    this.debounceTimer = setTimeout(() => {
      this.check();
    }, this.options.debounceMs ?? 50);
    this.debounceTimer.unref();
  }

  private reload(): void {
    const { logger, paths } = this.options;
    const files = readTlsFiles(paths);
    const { digest } = files;
    if (digest === this.material?.digest) {
      if (this.lastError !== undefined) {
        // The bad files were replaced by the ones in use: nothing to load, nothing wrong any more.
        this.lastError = undefined;
        this.rejectedDigest = undefined;
        logger.info("TLS files are back to the ones in use");
      }
      return;
    }
    if (digest === this.rejectedDigest) return;
    let next: TlsMaterial;
    try {
      next = loadTlsMaterial(paths, files);
      // The TLS library has the last word: what it refuses is refused like a file that did not parse.
      this.options.apply(next);
    } catch (error) {
      this.rejectedDigest = digest;
      const files = [paths.certificate, paths.privateKey, paths.trustBundle].filter(Boolean).join(", ");
      this.lastError =
        error instanceof TlsFileError ? error.message : `${files}: refused by TLS: ${errorMessage(error)}`;
      logger.error(
        { file: error instanceof TlsFileError ? error.file : files, error: this.lastError },
        "New TLS files are unusable; keeping the previous certificates until the files change again",
      );
      return;
    }
    this.material = next;
    this.rejectedDigest = undefined;
    this.lastError = undefined;
    this.reloads++;
    logger.info(
      {
        certificate: next.certificate?.sha256Fingerprint,
        serial: next.certificate?.serial,
        trustBundle: next.trustBundle.map((c) => c.sha256Fingerprint),
      },
      "Reloaded TLS files",
    );
  }
}
