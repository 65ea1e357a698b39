import type { FastifyInstance } from 'fastify';
import type { Services } from '../../services.js';
import { BackendError } from '../../../providers/types.js';
import { clientGone, ndjson, sendStream } from '../../streaming.js';
import { bodyOf, doc, modelName, optionalBoolean } from './request.js';

/** Follows a pull job as Ollama's progress lines; the last is `{"status":"success"}` or an error. */
async function* pullLines(services: Services, jobId: string, signal: AbortSignal): AsyncGenerator<Record<string, unknown>> {
  let last = '';
  for await (const job of services.pulls.follow(jobId, signal)) {
    let line: Record<string, unknown>;
    if (job.state === 'success') line = { status: 'success' };
    else if (job.state !== 'running') line = { error: job.error ?? job.status };
    else {
      line = { status: job.status };
      if (job.status.startsWith('pulling ') && job.status !== 'pulling manifest') {
        if (job.digest) line.digest = job.digest;
        if (job.total !== undefined) line.total = job.total;
        if (job.completed !== undefined) line.completed = job.completed;
      }
    }
    const key = JSON.stringify(line);
    if (key === last) continue;
    last = key;
    yield line;
    if (job.state !== 'running') return;
  }
}

export function ollamaPullRoutes(services: Services) {
  return async function (app: FastifyInstance): Promise<void> {
    app.post('/api/pull', {
      attachValidation: true,
      config: { access: 'admin' },
      schema: doc('Download a model (URL, hf:owner/repo/file.gguf, or an Ollama name); NDJSON progress', {
        model: { type: 'string' }, name: { type: 'string' }, stream: { type: 'boolean' }, insecure: { type: 'boolean' },
      }),
    }, async (request, reply) => {
      const body = bodyOf(request);
      const source = modelName(body);
      const stream = optionalBoolean(body, 'stream') ?? true;
      const job = await services.pulls.start(source);
      const signal = clientGone(request, reply);
      if (!stream) {
        let last: Record<string, unknown> = {};
        for await (const line of pullLines(services, job.id, signal)) last = line;
        // The model host failed, not this server: a gateway error that carries the host's reason.
        if (typeof last.error === 'string') throw new BackendError(last.error, 502);
        return last;
      }
      async function* lines(): AsyncGenerator<string> {
        for await (const line of pullLines(services, job.id, signal)) yield ndjson(line);
      }
      return sendStream(reply, 'application/x-ndjson', lines());
    });

  };
}
