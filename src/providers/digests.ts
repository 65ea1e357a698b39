import crypto from 'node:crypto';
import fs from 'node:fs';

/**
 * Ollama's model digests are content hashes: the sha256 of the file, so two identical files have the
 * same digest and a changed file a new one. Hashing a multi-gigabyte model takes seconds, so each
 * file is hashed once per (size, modification time) and the result kept for as long as the process
 * runs; the hash streams from disk and never blocks the event loop for long.
 */

interface Cached {
  key: string;
  digest: Promise<string>;
}

const cache = new Map<string, Cached>();

function hashFile(filePath: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = crypto.createHash('sha256');
    fs.createReadStream(filePath)
      .on('data', (chunk) => hash.update(chunk))
      .on('error', reject)
      .on('end', () => resolve(hash.digest('hex')));
  });
}

/** The file's sha256 (64 hex digits), from the cache when its size and mtime have not changed. */
export function fileDigest(filePath: string, stat: { size: number; mtimeMs: number }): Promise<string> {
  const key = `${stat.size}:${stat.mtimeMs}`;
  const cached = cache.get(filePath);
  if (cached?.key === key) return cached.digest;
  const digest = hashFile(filePath);
  cache.set(filePath, { key, digest });
  // A failed read is not remembered: the next listing tries again.
  digest.catch(() => {
    if (cache.get(filePath)?.digest === digest) cache.delete(filePath);
  });
  return digest;
}

/** Tells the cache a digest already known (a download hashed the file as it wrote it). */
export function rememberDigest(filePath: string, stat: { size: number; mtimeMs: number }, digest: string): void {
  cache.set(filePath, { key: `${stat.size}:${stat.mtimeMs}`, digest: Promise.resolve(digest.replace(/^sha256:/, '')) });
}

/**
 * A stable digest for a model whose bytes this server cannot see (an OpenAI-compatible upstream's):
 * the sha256 of where it is served and under which id, so it is the same on every listing and every
 * replica, and differs between servers.
 */
export function nameDigest(source: string, id: string): string {
  return crypto.createHash('sha256').update(`${source}\n${id}`).digest('hex');
}
