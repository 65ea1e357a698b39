import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Services } from '../../services.js';
import type { GenerationOptions } from '../../../domain/chat.js';
import type { ModelfileSettings } from '../../../access/catalog.js';
import type { ModelParameters } from '../../../domain/models.js';
import { parseOllamaOptions } from '../../../gateway/options.js';
import { isRecord } from '../../../shared/is-record.js';
import { normaliseModelName } from '../../../shared/model-names.js';
import { badRequest, HttpError } from '../../../gateway/errors.js';
import { ndjson, sendStream } from '../../streaming.js';
import { parseMessages } from './request.js';

/**
 * Ollama's `/api/create` and `/api/blobs/:digest`: a new model `from` an existing one with a system
 * prompt, template, parameters and messages baked in (the way to save an Arena configuration under a
 * name), or from a GGUF file uploaded as a blob. The new model is a file of the embedded engine (a
 * hard link of its source) and a catalog entry carrying the settings, so every listing, the Arena and
 * the catalog see it and every generation on it applies them. Creating models is model management:
 * these routes are for the admin, as pull, copy and delete are.
 */

const DIGEST = /^sha256[:-]([0-9a-f]{64})$/;

/** The options a Modelfile's PARAMETER lines may set that the catalog keeps. */
const KEPT: (keyof ModelParameters & keyof GenerationOptions)[] = ['temperature', 'top_p', 'top_k', 'min_p', 'repeat_penalty', 'repeat_last_n', 'presence_penalty', 'frequency_penalty', 'num_predict', 'seed', 'stop', 'num_ctx'];

function blobsDir(services: Services): string {
  return path.join(services.config.modelsDir, '.blobs');
}

function blobPath(services: Services, digest: string): string {
  const match = DIGEST.exec(digest);
  if (!match) throw badRequest('a blob digest looks like sha256:<64 hex digits>');
  return path.join(blobsDir(services), `sha256-${match[1]}`);
}

function optionalString(body: Record<string, unknown>, key: string): string | undefined {
  const value = body[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw badRequest(`${key} must be a string`);
  return value;
}

interface CreatePlan {
  target: string;
  from?: string;
  /** The uploaded GGUF blob the model is made of. */
  blob?: string;
  parameters?: ModelParameters;
  modelfile?: ModelfileSettings;
  stream: boolean;
}

function parseCreate(services: Services, body: Record<string, unknown>): CreatePlan {
  const name = body.model ?? body.name;
  if (typeof name !== 'string' || name.trim() === '') throw badRequest('model is required');
  for (const unsupported of ['quantize', 'adapters', 'projectors']) {
    if (body[unsupported] !== undefined && body[unsupported] !== null) throw badRequest(`${unsupported} is not supported by this server`);
  }
  const from = optionalString(body, 'from');
  let blob: string | undefined;
  if (body.files !== undefined && body.files !== null) {
    if (!isRecord(body.files)) throw badRequest('files must be an object of file name → blob digest');
    const entries = Object.entries(body.files);
    const ggufs = entries.filter(([file]) => file.toLowerCase().endsWith('.gguf'));
    if (ggufs.length !== 1 || entries.length !== 1) throw badRequest('files must name exactly one .gguf blob');
    const digest = ggufs[0]![1];
    if (typeof digest !== 'string') throw badRequest('files values must be blob digests');
    blob = blobPath(services, digest);
  }
  if (!from === !blob) throw badRequest('give either from (an existing model) or files (an uploaded GGUF blob)');
  if (body.modelfile !== undefined) throw badRequest('the modelfile field is the old create API: send from, system, template, parameters and messages');
  let parameters: ModelParameters | undefined;
  if (body.parameters !== undefined && body.parameters !== null) {
    const options = parseOllamaOptions(body.parameters);
    parameters = Object.fromEntries(KEPT.filter((key) => options[key] !== undefined).map((key) => [key, options[key]])) as ModelParameters;
  }
  const system = optionalString(body, 'system');
  const template = optionalString(body, 'template');
  const messages = body.messages === undefined || body.messages === null ? undefined : parseMessages(body.messages);
  const modelfile: ModelfileSettings = { ...(system !== undefined ? { system } : {}), ...(template !== undefined ? { template } : {}), ...(messages?.length ? { messages } : {}) };
  const stream = body.stream ?? true;
  if (typeof stream !== 'boolean') throw badRequest('stream must be a boolean');
  return { target: normaliseModelName(name.trim()), from, blob, parameters, modelfile: Object.keys(modelfile).length ? modelfile : undefined, stream };
}

/** Runs a create, yielding Ollama's status lines. */
async function* create(services: Services, plan: CreatePlan): AsyncGenerator<Record<string, unknown>> {
  yield { status: 'gathering model components' };
  if (plan.blob) {
    if (!fs.existsSync(plan.blob)) throw new HttpError(400, `blob ${path.basename(plan.blob).replace('-', ':')} not found: upload it to /api/blobs/<digest> first`);
    yield { status: `using existing layer ${path.basename(plan.blob).replace('-', ':')}` };
    await services.engine.adopt(plan.blob, plan.target);
  } else {
    const source = await services.router.resolve(plan.from!);
    if (source.info.digest) yield { status: `using existing layer sha256:${source.info.digest}` };
    if (source.name !== plan.target) {
      await services.router.onEveryReplica(source.name, async (backend, model) => {
        if (!backend.copy) throw new HttpError(400, `backend ${backend.id} cannot create models from '${model}'`);
        await backend.copy(model, plan.target);
      });
    }
  }
  if (plan.parameters || plan.modelfile) {
    const settings = JSON.stringify({ parameters: plan.parameters ?? {}, ...plan.modelfile });
    yield { status: `creating new layer sha256:${crypto.createHash('sha256').update(settings).digest('hex')}` };
    await services.catalog.set(plan.target, { ...(plan.parameters ? { parameters: plan.parameters } : {}), ...(plan.modelfile ? { modelfile: plan.modelfile } : {}) });
  }
  yield { status: 'writing manifest' };
  yield { status: 'success' };
}

async function createRoute(services: Services, request: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  if (!isRecord(request.body)) throw badRequest('request body must be a JSON object');
  const plan = parseCreate(services, request.body);
  if (!plan.stream) {
    let last: Record<string, unknown> = {};
    for await (const line of create(services, plan)) last = line;
    return last;
  }
  // Checked before the 200 goes out, so that a missing source is an HTTP error, not a line.
  if (plan.from) await services.router.resolve(plan.from);
  async function* lines(): AsyncGenerator<string> {
    try {
      for await (const line of create(services, plan)) yield ndjson(line);
    } catch (error) {
      yield ndjson({ error: (error as Error).message });
    }
  }
  return sendStream(reply, 'application/x-ndjson', lines());
}

/** Stores an upload as a blob once its bytes hash to the digest it was sent under. */
async function uploadBlob(services: Services, request: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  const digest = (request.params as { digest: string }).digest;
  const target = blobPath(services, digest);
  await fsp.mkdir(blobsDir(services), { recursive: true });
  const partial = `${target}.${crypto.randomBytes(4).toString('hex')}.partial`;
  const hash = crypto.createHash('sha256');
  const body = request.body as Readable;
  try {
    body.on('data', (chunk: Buffer) => hash.update(chunk));
    await pipeline(body, fs.createWriteStream(partial));
    const actual = `sha256:${hash.digest('hex')}`;
    if (actual !== digest.replace('sha256-', 'sha256:')) throw badRequest(`digest mismatch: the upload hashes to ${actual}`);
    await fsp.rename(partial, target);
  } finally {
    await fsp.rm(partial, { force: true });
  }
  return reply.code(201).send();
}

export function ollamaCreateRoutes(services: Services) {
  return async function (app: FastifyInstance): Promise<void> {
    // Blobs are raw bytes of any size: streamed to disk, never buffered or parsed.
    app.addContentTypeParser('application/octet-stream', (_request, payload, done) => done(null, payload));

    app.post('/api/create', {
      attachValidation: true,
      config: { access: 'admin' },
      schema: { tags: ['ollama'], summary: 'Create a model from another (system, template, parameters, messages) or from an uploaded GGUF blob' },
    }, (request, reply) => createRoute(services, request, reply));

    app.head('/api/blobs/:digest', { config: { access: 'admin' }, schema: { tags: ['ollama'], summary: 'Whether a blob has been uploaded' } }, async (request, reply) => {
      const exists = fs.existsSync(blobPath(services, (request.params as { digest: string }).digest));
      return reply.code(exists ? 200 : 404).send();
    });

    app.post('/api/blobs/:digest', {
      config: { access: 'admin' },
      bodyLimit: Number.MAX_SAFE_INTEGER,
      schema: { tags: ['ollama'], summary: 'Upload a blob (a GGUF file) under its sha256 digest' },
    }, (request, reply) => uploadBlob(services, request, reply));
  };
}
