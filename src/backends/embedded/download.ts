import fsp from 'node:fs/promises';
import crypto from 'node:crypto';
import path from 'node:path';
import { Readable } from 'node:stream';
import { readGgufFileInfo } from 'node-llama-cpp';
import { BackendError, type PullProgress } from '../types.js';
import { PARTIAL_SUFFIX } from './gguf-catalog.js';
import { rememberDigest } from '../../core/digests.js';

/** Progress is reported at most this often, so a fast local download does not flood the client. */
const PROGRESS_INTERVAL_MS = 100;

/** What a registry's manifest promised about a blob; checked against the bytes as they arrive. */
export interface ExpectedBlob {
  /** `sha256:<64 hex>`. */
  digest: string;
  size: number;
}

/** fetch() says only "fetch failed"; the reason (refused, unknown host, reset) is in its cause. */
export function fetchErrorText(error: unknown): string {
  const { message, cause } = error as Error & { cause?: { message?: string; code?: string } };
  const reason = cause?.message ?? cause?.code;
  return reason && reason !== message ? `${message} (${reason})` : message;
}

/** A sha256 in a header value (`"<64 hex>"`, `W/"…"`), else undefined. */
function sha256Of(value: string | null): string | undefined {
  const hex = value?.replace(/^W\//, '').replaceAll('"', '').toLowerCase();
  return hex && /^[0-9a-f]{64}$/.test(hex) ? `sha256:${hex}` : undefined;
}

/**
 * The digest a model host announces for a file before sending it: Hugging Face puts the sha256 of a
 * large file in `X-Linked-Etag` on the answer that redirects to its CDN (which fetch would follow, so
 * the headers are asked for first without following), and some hosts make the ETag the sha256.
 */
async function announcedDigest(url: string, signal: AbortSignal): Promise<string | undefined> {
  try {
    const response = await fetch(url, { method: 'HEAD', redirect: 'manual', signal });
    await response.body?.cancel();
    return sha256Of(response.headers.get('x-linked-etag')) ?? sha256Of(response.headers.get('etag'));
  } catch {
    return undefined;
  }
}

/**
 * Downloads a GGUF file into `destination`, reporting Ollama-style progress. The bytes go to
 * `destination.partial` and are renamed into place only when complete, matching `expected` (a
 * registry blob) and readable as GGUF, so a failed, interrupted or cancelled download never leaves a
 * file that looks like a model. Redirects are followed: registries answer blob requests with a
 * redirect to their CDN.
 */
export async function* downloadModelFile(
  url: string,
  destination: string,
  signal: AbortSignal,
  expected?: ExpectedBlob,
): AsyncIterable<PullProgress> {
  const partial = destination + PARTIAL_SUFFIX;
  // A plain URL's file is checked against the digest its host announces, as a registry blob is.
  const announced = expected ? undefined : await announcedDigest(url, signal);
  let response: Response;
  try {
    response = await fetch(url, { signal, redirect: 'follow' });
  } catch (error) {
    if (signal.aborted) throw error;
    throw new BackendError(`download failed: ${fetchErrorText(error)}`, 502);
  }
  if (!response.ok || !response.body) {
    await response.body?.cancel();
    throw new BackendError(`download failed: ${url} answered ${response.status}`, response.status === 404 ? 404 : 502);
  }
  const total = expected?.size ?? (Number(response.headers.get('content-length')) || undefined);
  // Ollama names a layer by the first 12 hex digits of its digest. A URL whose host announced no
  // digest has none until it has been read: its lines carry the file name and no digest until then.
  const digest = expected?.digest ?? announced ?? sha256Of(response.headers.get('x-linked-etag'));
  const status = digest ? `pulling ${digest.slice('sha256:'.length, 'sha256:'.length + 12)}` : `pulling ${path.basename(destination)}`;
  const hash = crypto.createHash('sha256');
  let file: fsp.FileHandle | undefined;
  let placed = false;
  try {
    // A file handle rather than a write stream: each write is awaited, so a full disk is an error
    // here instead of an unhandled 'error' event, and backpressure needs no 'drain' bookkeeping.
    file = await fsp.open(partial, 'w');
    let completed = 0;
    let lastReport = 0;
    yield { status, digest, total, completed: 0 };
    for await (const chunk of Readable.fromWeb(response.body as never)) {
      const buffer = chunk as Buffer;
      hash.update(buffer);
      completed += buffer.length;
      // A registry that sends more than its manifest said is not sending that blob: stop at once.
      if (expected && completed > expected.size) {
        throw new BackendError(`download failed: more than the ${expected.size} bytes the manifest promised`, 502);
      }
      await file.write(buffer);
      if (Date.now() - lastReport >= PROGRESS_INTERVAL_MS) {
        lastReport = Date.now();
        yield { status, digest, total, completed };
      }
    }
    await file.close();
    file = undefined;
    if (total !== undefined && completed !== total) {
      throw new BackendError(`download incomplete: ${completed} of ${total} bytes`, 502);
    }
    const actual = `sha256:${hash.digest('hex')}`;
    yield digest ? { status, digest, total, completed } : { status: `pulling ${actual.slice('sha256:'.length, 'sha256:'.length + 12)}`, digest: actual, total: completed, completed };
    yield { status: 'verifying sha256 digest' };
    if (digest && actual !== digest) {
      // Ollama's message for the same failure.
      throw new BackendError(`digest mismatch, file must be downloaded again: want ${digest}, got ${actual}`, 502);
    }
    try {
      await readGgufFileInfo(partial, { readTensorInfo: true });
    } catch {
      throw new BackendError('the downloaded file is not a GGUF model', 422);
    }
    yield { status: 'writing manifest' };
    await fsp.rename(partial, destination);
    placed = true;
    // The listing's digest is this hash: the file need not be read again for it.
    rememberDigest(destination, await fsp.stat(destination), actual);
    yield { status: 'success' };
  } catch (error) {
    if (error instanceof BackendError || signal.aborted) throw error;
    throw new BackendError(`download failed: ${fetchErrorText(error)}`, 502);
  } finally {
    // Also reached when the consumer stops iterating (a cancelled job), not only on errors.
    if (!placed) {
      await file?.close().catch(() => undefined);
      await fsp.rm(partial, { force: true });
    }
  }
}
