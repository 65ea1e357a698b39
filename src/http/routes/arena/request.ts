import type { FastifyRequest } from 'fastify';
import type { Services } from '../../services.js';
import { ArenaValidationError, resolveArenaRequest, historyFor, instanceMessages, parseArenaRequest, type InstanceDefaults, type ArenaRequest } from '../../../arena/arena.js';
import type { ModelInstance } from '../../../domain/arena.js';
import { maySee } from '../../../arena/run-access.js';
import { RunStore, type RunRecord } from '../../../store/runs.js';
import { badRequest, HttpError } from '../../../gateway/errors.js';

/**
 * Reading and checking an Arena request: one conversation sent to several model instances (legacy
 * `models`, or `model_instances` each with its own sampling settings), with the Arena's own messages.
 */

const messageSchema = {
  type: 'object',
  properties: { role: { type: 'string' }, content: { type: 'string' } },
} as const;

const instanceSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    model: { type: 'string' },
    temperature: { type: 'number', description: '0.01-2.0, default 0.7' },
    top_p: { type: 'number', description: '0-1, default 0.9' },
    top_k: { type: 'integer', description: '0-100, default 40' },
    repeat_penalty: { type: 'number', description: '1.0-2.0, default 1.1' },
    num_predict: { type: 'integer', description: '-1 to 4096, default -1 (unlimited)' },
    seed: { type: 'integer', description: '0 = random' },
    system: { type: 'string' },
    history: {
      type: 'array',
      items: messageSchema,
      description: "This instance's own conversation instead of `history` (e.g. each column's earlier answers in a multi-turn comparison)",
    },
  },
} as const;

/** Documentation only: the handler validates, so that the Arena's exact messages come back. */
export const arenaBodySchema = {
  type: 'object',
  properties: {
    history: { type: 'array', items: messageSchema },
    models: { type: 'array', items: { type: 'string' }, description: 'deprecated: use model_instances' },
    model_instances: { type: 'array', items: instanceSchema },
    stream: { type: 'boolean' },
    run_id: {
      type: 'string',
      description:
        "Continue this saved run: the turn is appended to it (X-Run-Id names the same run) instead of saving a new one. Only the run's owner (its API key, or the admin) may continue it (404 otherwise); a battle, or a run whose instances (ids and settings) or format differ from this request's, is a 400. The prompt is the history sent, as for a new run.",
    },
  },
} as const;

/** The admin catalog's default parameters of a model, in the Arena's terms (the catalog's max_tokens is num_predict). */
export function catalogDefaults(services: Services): InstanceDefaults {
  return (model) => {
    const parameters = services.catalog.get(model)?.parameters;
    return parameters && { ...parameters, num_predict: parameters.num_predict ?? parameters.max_tokens };
  };
}

/** The run a follow-up continues, checked, or undefined for a request that names none. */
export async function continuedRun(services: Services, request: FastifyRequest, arena: ArenaRequest): Promise<RunRecord | undefined> {
  const runId = ((request.body ?? {}) as { run_id?: unknown }).run_id;
  if (runId === undefined || runId === null) return undefined;
  if (typeof runId !== 'string' || runId === '') throw badRequest('run_id must be a non-empty string');
  const run = await new RunStore(services.store).get(runId);
  // Someone else's run answers as reading it does: as if it did not exist.
  if (!run || !maySee(request.principal, run.ownerKeyId)) throw new HttpError(404, 'Run not found');
  if (run.kind !== 'comparison') throw badRequest('A battle cannot be continued: start a new one');
  if (run.legacy !== arena.legacy) {
    throw badRequest(`run_id names a run made with ${run.legacy ? 'models' : 'model_instances'}: continue it the same way`);
  }
  const mismatch = instancesMismatch(run.instances, arena.instances);
  if (mismatch) throw badRequest(`The instances differ from those of run ${run.id} (${mismatch}): a conversation keeps its instances; start a new run without run_id`);
  return run;
}

const SETTINGS = ['model', 'temperature', 'top_p', 'top_k', 'repeat_penalty', 'num_predict', 'seed', 'system'] as const;

/** What tells a request's instances from a run's (by id, in any order), or null when they are the same. */
function instancesMismatch(saved: ModelInstance[], sent: ModelInstance[]): string | null {
  const byId = new Map(sent.map((i) => [i.id, i]));
  for (const instance of saved) {
    const other = byId.get(instance.id);
    if (!other) return `${instance.id} is missing`;
    const differs = SETTINGS.find((key) => (instance[key] ?? null) !== (other[key] ?? null));
    if (differs) return `${differs} of ${instance.id} differs`;
    byId.delete(instance.id);
  }
  const extra = byId.keys().next();
  return extra.done ? null : `${extra.value} is not in the run`;
}

export async function parseAndCheck(services: Services, body: unknown): Promise<ArenaRequest> {
  try {
    const request = await resolveArenaRequest(services.router, parseArenaRequest(body), catalogDefaults(services));
    await checkPromptLengths(services, request);
    return request;
  } catch (error) {
    if (error instanceof ArenaValidationError) throw badRequest(error.message);
    throw error;
  }
}

/**
 * A newest message too long, by its length alone, for the context of a model only the embedded engine
 * serves is the client's 400 before anything is saved or started: a run row of megabytes would
 * otherwise be written first. Earlier exchanges are not counted: they are left out while the
 * conversation does not fit, and the newest message (with the system prompt) never is.
 */
async function checkPromptLengths(services: Services, request: ArenaRequest): Promise<void> {
  for (const instance of request.instances) {
    const model = await services.router.resolve(instance.model);
    if (!model.replicas.every((backend) => backend === services.engine)) continue;
    const history = historyFor(request, instance);
    const newestLength = history.at(-1)?.content.length ?? 0;
    const systemLength = instanceMessages(instance, history)
      .filter((message) => message.role === 'system')
      .reduce((sum, message) => sum + message.content.length, 0);
    await services.engine.checkPromptLength(model.name, newestLength + systemLength);
  }
}

