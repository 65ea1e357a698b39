import fs from 'node:fs';
import fsp from 'node:fs/promises';
import crypto from 'node:crypto';
import { Readable } from 'node:stream';
import { readGgufFileInfo } from 'node-llama-cpp';
import { BackendError, type PullProgress } from '../types.js';
import { PARTIAL_SUFFIX } from './gguf-catalog.js';

/** Progress is reported at most this often, so a fast local download does not flood the client. */
const PROGRESS_INTERVAL_MS = 100;

/**
 * Downloads a GGUF file into `destination`, reporting Ollama-style progress. The bytes go to
 * `destination.partial` and are renamed into place only when complete and readable as GGUF, so a
 * failed or interrupted download never leaves a file that looks like a model.
 */
export async function* downloadModelFile(url: string, destination: string, signal: AbortSignal): AsyncIterable<PullProgress> {
  yield { status: 'pulling manifest' };
  const partial = destination + PARTIAL_SUFFIX;
  let response: Response;
  try {
    response = await fetch(url, { signal, redirect: 'follow' });
  } catch (error) {
    throw new BackendError(`download failed: ${(error as Error).message}`, 502);
  }
  if (!response.ok || !response.body) {
    throw new BackendError(`download failed: ${url} answered ${response.status}`, response.status === 404 ? 404 : 502);
  }
  const total = Number(response.headers.get('content-length')) || undefined;
  const hash = crypto.createHash('sha256');
  const file = fs.createWriteStream(partial);
  let completed = 0;
  let lastReport = 0;
  try {
    const digestLabel = `sha256:${destination.split('/').pop()}`;
    yield { status: `pulling ${digestLabel}`, digest: digestLabel, total, completed: 0 };
    for await (const chunk of Readable.fromWeb(response.body as never)) {
      const buffer = chunk as Buffer;
      hash.update(buffer);
      completed += buffer.length;
      if (!file.write(buffer)) await new Promise<void>((resolve) => file.once('drain', () => resolve()));
      if (Date.now() - lastReport >= PROGRESS_INTERVAL_MS) {
        lastReport = Date.now();
        yield { status: `pulling ${digestLabel}`, digest: digestLabel, total, completed };
      }
    }
    await new Promise<void>((resolve, reject) => file.end((error?: Error | null) => (error ? reject(error) : resolve())));
    if (total !== undefined && completed !== total) {
      throw new BackendError(`download incomplete: ${completed} of ${total} bytes`, 502);
    }
    yield { status: `pulling sha256:${hash.digest('hex')}`, total: completed, completed };
    yield { status: 'verifying sha256 digest' };
    try {
      await readGgufFileInfo(partial, { readTensorInfo: true });
    } catch {
      throw new BackendError('the downloaded file is not a GGUF model', 422);
    }
    yield { status: 'writing manifest' };
    await fsp.rename(partial, destination);
    yield { status: 'success' };
  } catch (error) {
    file.destroy();
    await fsp.rm(partial, { force: true });
    if (error instanceof BackendError) throw error;
    throw new BackendError(`download failed: ${(error as Error).message}`, 502);
  }
}
