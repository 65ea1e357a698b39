import fsp from 'node:fs/promises';
import path from 'node:path';
import { PARTIAL_SUFFIX } from './gguf-catalog.js';

/**
 * Half-downloaded models (`name.gguf.partial`). A download removes its own file when it fails or is
 * cancelled; one cut by a crash or `kill -9` leaves it behind, and nothing else would ever remove it.
 *
 * Replicas may share a models directory, so a file found at start may be another replica's download
 * in progress. A live download touches its file at least every HEARTBEAT_MS; a file untouched for
 * STALE_MS has no writer and is removed. Fresh files are looked at again until they are gone, renamed
 * into place or stale.
 */

const HEARTBEAT_MS = 5_000;
export const STALE_MS = 20_000;

/** The partial files this process is writing now (absolute paths): never orphans. */
const writing = new Set<string>();

/**
 * Marks `file` as being written (call before opening it, so a sweep never removes it) and, once
 * `beat` has its handle, keeps its mtime fresh even while the network stalls, until `release`.
 */
export function holdPartial(file: string): { beat(handle: fsp.FileHandle): void; release(): void } {
  writing.add(file);
  let timer: NodeJS.Timeout | undefined;
  return {
    beat(handle) {
      timer = setInterval(() => {
        const now = new Date();
        handle.utimes(now, now).catch(() => undefined);
      }, HEARTBEAT_MS);
      timer.unref();
    },
    release() {
      clearInterval(timer);
      writing.delete(file);
    },
  };
}

/**
 * Removes stale partial files in `dir` now and keeps checking fresh ones; `stop()` ends the checks
 * (the server closing). Errors are ignored: a file that cannot be removed is tried again next time.
 */
export function sweepPartials(dir: string, staleMs = STALE_MS): { stop(): void } {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const sweep = async (): Promise<boolean> => {
    let names: string[];
    try {
      names = await fsp.readdir(dir);
    } catch {
      return false; // no models directory yet
    }
    let fresh = false;
    for (const name of names) {
      if (!name.endsWith(`.gguf${PARTIAL_SUFFIX}`)) continue;
      const file = path.join(dir, name);
      if (writing.has(file)) continue;
      const stat = await fsp.stat(file).catch(() => undefined);
      if (!stat || writing.has(file)) continue;
      if (Date.now() - stat.mtimeMs >= staleMs) await fsp.rm(file, { force: true }).catch(() => undefined);
      else fresh = true;
    }
    return fresh;
  };
  const again = async (): Promise<void> => {
    if (stopped || !(await sweep()) || stopped) return;
    timer = setTimeout(() => void again(), staleMs);
    timer.unref();
  };
  void again();
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
