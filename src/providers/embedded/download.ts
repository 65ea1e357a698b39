import fsp from 'node:fs/promises';
import crypto from 'node:crypto';
import path from 'node:path';
import { llamaCpp } from './llama-module.js';
import { BackendError, type PullProgress } from '../types.js';
import { PARTIAL_SUFFIX } from './gguf-catalog.js';
import { connectionErrorText, guardedGet, type GuardedResponse } from './guarded-get.js';
import { holdPartial } from './partial-files.js';
import type { PullPolicy } from './pull-policy.js';
import { rememberDigest } from '../digests.js';

/** Progress is reported at most this often, so a fast local download does not flood the client. */
const PROGRESS_INTERVAL_MS = 100;

/** What a registry's manifest promised about a blob; checked against the bytes as they arrive. */
export interface ExpectedBlob {
  /** `sha256:<64 hex>`. */
  digest: string;
  size: number;
}

/** A sha256 in a header value (`"<64 hex>"`, `W/"…"`), else undefined. */
function sha256Of(value: string | undefined): string | undefined {
  const hex = value?.replace(/^W\//, '').replaceAll('"', '').toLowerCase();
  return hex && /^[0-9a-f]{64}$/.test(hex) ? `sha256:${hex}` : undefined;
}

/**
 * Downloads a GGUF file into `destination`, reporting Ollama-style progress. The bytes go to
 * `destination.partial` and are renamed into place only when complete, matching `expected` (a
 * registry blob) and readable as GGUF, so a failed, interrupted or cancelled download never leaves a
 * file that looks like a model. Redirects are followed, each hop checked by `policy`: registries
 * answer blob requests with a redirect to their CDN. Messages never carry the URL (its query may
 * hold a token).
 */
export async function* downloadModelFile(
  url: string,
  destination: string,
  signal: AbortSignal,
  policy: PullPolicy,
  expected?: ExpectedBlob,
): AsyncIterable<PullProgress> {
  const partial = destination + PARTIAL_SUFFIX;
  let response: GuardedResponse;
  try {
    response = await guardedGet(url, policy, signal);
  } catch (error) {
    if (error instanceof BackendError || signal.aborted) throw error;
    throw new BackendError(`download failed: ${connectionErrorText(error)}`, 502);
  }
  if (response.status < 200 || response.status > 299) {
    response.body.destroy();
    throw new BackendError(`download failed: the host answered ${response.status}`, response.status === 404 ? 404 : 502);
  }
  const total = expected?.size ?? (Number(response.headers['content-length']) || undefined);
  // A plain URL's file is checked against the digest its host announces (Hugging Face's X-Linked-Etag,
  // or an ETag that is a sha256), as a registry blob is against its manifest. Ollama names a layer by
  // the first 12 hex digits of its digest; a URL whose host announced none has no digest until it has
  // been read: its lines carry the file name and no digest until then.
  const digest = expected?.digest ?? sha256Of(response.linkedEtag) ?? sha256Of(response.headers.etag);
  const status = digest ? `pulling ${digest.slice('sha256:'.length, 'sha256:'.length + 12)}` : `pulling ${path.basename(destination)}`;
  const hash = crypto.createHash('sha256');
  let file: fsp.FileHandle | undefined;
  let placed = false;
  const hold = holdPartial(partial);
  try {
    // A file handle rather than a write stream: each write is awaited, so a full disk is an error
    // here instead of an unhandled 'error' event, and backpressure needs no 'drain' bookkeeping.
    file = await fsp.open(partial, 'w');
    hold.beat(file);
    let completed = 0;
    let lastReport = 0;
    yield { status, digest, total, completed: 0 };
    for await (const chunk of response.body) {
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
      await (await llamaCpp()).readGgufFileInfo(partial, { readTensorInfo: true });
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
    throw new BackendError(`download failed: ${connectionErrorText(error)}`, 502);
  } finally {
    // Also reached when the consumer stops iterating (a cancelled job), not only on errors.
    response.body.destroy();
    hold.release();
    if (!placed) {
      await file?.close().catch(() => undefined);
      await fsp.rm(partial, { force: true }).catch(() => undefined);
    }
  }
}
