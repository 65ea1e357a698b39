import type { ArenaMetrics, ModelInstance, StopReason } from '../domain/arena.js';
import type { ChatMessage, GenerationOptions } from '../domain/chat.js';
import { arenaMetrics, GenerationService, type UsageSink } from '../gateway/generation.js';
import type { ModelRouter } from '../gateway/router.js';
import { ShutdownError } from '../gateway/shutdown.js';
import { generateFitting } from '../gateway/context-fit.js';
import { INSTANCE_DEFAULTS, INSTANCE_RANGES, instanceId, type InstanceSetting } from '../shared/instances.js';
import { isRecord } from '../shared/is-record.js';
import { PushStream } from '../shared/push-stream.js';

/**
 * The Arena's request model: one conversation sent to several model instances,
 * each a model with its own sampling settings, run concurrently.
 */

export interface ArenaRequest {
  history: ChatMessage[];
  instances: ModelInstance[];
  /** Legacy `models` requests key results by model name and stream `model`; v3 by instance id. */
  legacy: boolean;
  /**
   * The instances sent a conversation of their own (`model_instances[i].history`) instead of
   * `history`: in a multi-turn comparison each column's earlier answers are its own.
   */
  ownHistories?: Map<ModelInstance, ChatMessage[]>;
  /** What the client left unsaid about each instance, for resolveInstances; absent on a saved run's request. */
  unsaid?: UnsaidByInstance;
}

/** The conversation an instance answers: its own, or the request's. */
export function historyFor(request: ArenaRequest, instance: ModelInstance): ChatMessage[] {
  return request.ownHistories?.get(instance) ?? request.history;
}

/** The instances' own conversations by instance id (once ids are final), or null when none has one. */
export function ownHistoriesById(request: ArenaRequest): Record<string, ChatMessage[]> | null {
  if (!request.ownHistories || request.ownHistories.size === 0) return null;
  const byId: Record<string, ChatMessage[]> = {};
  for (const [instance, history] of request.ownHistories) byId[instance.id] = history;
  return byId;
}

export class ArenaValidationError extends Error {}

export { INSTANCE_DEFAULTS, instanceId };
const RANGES = INSTANCE_RANGES;

const ROLES = new Set(['system', 'user', 'assistant']);


export function parseHistory(history: unknown): ChatMessage[] {
  if (!Array.isArray(history) || history.length === 0) throw new ArenaValidationError('No messages provided');
  return history.map((message, index) => {
    if (!isRecord(message) || typeof message.content !== 'string' || typeof message.role !== 'string') {
      throw new ArenaValidationError(`history[${index}] must be an object with a string role and content`);
    }
    if (!ROLES.has(message.role)) {
      throw new ArenaValidationError(`history[${index}].role must be system, user or assistant (got '${message.role}')`);
    }
    return { role: message.role as ChatMessage['role'], content: message.content };
  });
}

type Setting = InstanceSetting;

/**
 * What the client left unsaid about an instance, kept beside the instance rather than on it (runs
 * store instances as they are): the settings it omitted, the model name as written (the id is built
 * from it), and whether the id was generated. The model catalog's defaults may then fill the omitted
 * settings (resolveInstances).
 */
export interface Unsaid {
  settings: Setting[];
  writtenModel: string;
  generatedId: boolean;
}

/** What the client left unsaid, per parsed instance. */
export type UnsaidByInstance = Map<ModelInstance, Unsaid>;

function parseInstance(raw: unknown, index: number, own: Map<ModelInstance, ChatMessage[]>, unsaid: UnsaidByInstance): ModelInstance {
  if (!isRecord(raw)) throw new ArenaValidationError(`model_instances[${index}] must be an object`);
  if (typeof raw.model !== 'string' || raw.model.trim() === '') {
    throw new ArenaValidationError(`model_instances[${index}].model is required`);
  }
  const settings = { ...INSTANCE_DEFAULTS } as Record<Setting, number>;
  const omitted: Setting[] = [];
  for (const [key, range] of Object.entries(RANGES) as [Setting, (typeof RANGES)['seed']][]) {
    const value = raw[key];
    if (value === undefined || value === null) {
      omitted.push(key);
      continue;
    }
    if (typeof value !== 'number' || !Number.isFinite(value) || (range.integer && !Number.isInteger(value))) {
      throw new ArenaValidationError(`${key} must be ${range.integer ? 'an integer' : 'a number'} (instance ${index})`);
    }
    if (value < range.min || value > range.max) {
      const max = key === 'seed' ? '' : ` and ${range.max}`;
      throw new ArenaValidationError(
        key === 'seed'
          ? `seed must be 0 or more (got ${value}, instance ${index})`
          : `${key} must be between ${range.min}${max} (got ${value}, instance ${index})`,
      );
    }
    settings[key] = value;
  }
  if (raw.system !== undefined && typeof raw.system !== 'string') {
    throw new ArenaValidationError(`model_instances[${index}].system must be a string`);
  }
  if (raw.id !== undefined && (typeof raw.id !== 'string' || raw.id === '' || raw.id.length > 200)) {
    throw new ArenaValidationError(`model_instances[${index}].id must be a non-empty string`);
  }
  const base = { model: raw.model, ...settings, system: raw.system as string | undefined } as Omit<ModelInstance, 'id'>;
  const instance = { id: (raw.id as string | undefined) ?? instanceId(base), ...base };
  unsaid.set(instance, { settings: omitted, writtenModel: raw.model, generatedId: raw.id === undefined });
  if (raw.history !== undefined) {
    try {
      own.set(instance, parseHistory(raw.history));
    } catch (error) {
      if (error instanceof ArenaValidationError) throw new ArenaValidationError(`model_instances[${index}].${error.message.replace('No messages provided', 'history must be a non-empty array')}`);
      throw error;
    }
  }
  return instance;
}

function assertUniqueIds(instances: ModelInstance[]): void {
  const seen = new Set<string>();
  for (const instance of instances) {
    if (seen.has(instance.id)) throw new ArenaValidationError(`Duplicate model instance detected: ${instance.id}`);
    seen.add(instance.id);
  }
}

/** A model's default sampling settings, e.g. from the admin catalog. */
export type InstanceDefaults = (model: string) => Partial<Record<Setting, unknown>> | undefined;

/** Validates an Arena body: the messages first (`No messages provided`, the message Arena clients know), then the instances. */
export function parseArenaRequest(body: unknown): ArenaRequest {
  const record = isRecord(body) ? body : {};
  const history = parseHistory(record.history);
  let instances: ModelInstance[];
  let legacy = false;
  const ownHistories = new Map<ModelInstance, ChatMessage[]>();
  const unsaid: UnsaidByInstance = new Map();
  if (record.model_instances !== undefined) {
    if (!Array.isArray(record.model_instances) || record.model_instances.length === 0) {
      throw new ArenaValidationError('model_instances must be a non-empty array');
    }
    instances = record.model_instances.map((raw, index) => parseInstance(raw, index, ownHistories, unsaid));
  } else if (record.models !== undefined) {
    if (!Array.isArray(record.models) || record.models.length === 0 || record.models.some((m) => typeof m !== 'string' || m === '')) {
      throw new ArenaValidationError('models must be a non-empty array of model names');
    }
    legacy = true;
    instances = (record.models as string[]).map((model) => {
      const instance = { ...INSTANCE_DEFAULTS, model, id: model };
      // The legacy format sends no settings: the catalog's defaults may fill all of them; its id stays the name.
      unsaid.set(instance, { settings: Object.keys(RANGES) as Setting[], writtenModel: model, generatedId: false });
      return instance;
    });
  } else {
    throw new ArenaValidationError('No models provided: give model_instances (or the legacy models)');
  }
  assertUniqueIds(instances);
  if (instances.length > 32) throw new ArenaValidationError('at most 32 model instances per request');
  return { history, instances, legacy, unsaid, ...(ownHistories.size > 0 ? { ownHistories } : {}) };
}

/**
 * Every instance completed for running, as new objects (the parsed ones are left as they are): its
 * model resolved to the name the router serves it under (unknown models are a client error found
 * before any generation starts), the settings the client omitted filled with the model's defaults
 * when `defaults` gives valid ones (client value, then model default, then INSTANCE_DEFAULTS), and a
 * generated id built again from the settings it ends with. What the client omitted is in `unsaid`, as
 * parseArenaRequest found it; instances without an entry (a saved run's) get their model resolved alone.
 */
export async function resolveInstances(router: ModelRouter, instances: ModelInstance[], defaults?: InstanceDefaults, unsaid?: ReadonlyMap<ModelInstance, Unsaid>): Promise<ModelInstance[]> {
  const resolved: ModelInstance[] = [];
  for (const parsed of instances) {
    const instance = { ...parsed };
    resolved.push(instance);
    try {
      instance.model = (await router.resolve(parsed.model)).name;
    } catch {
      throw new ArenaValidationError(`Model not found: ${parsed.model}`);
    }
    const left = unsaid?.get(parsed);
    const modelDefaults = left && defaults?.(instance.model);
    if (!left || !modelDefaults) continue;
    for (const key of left.settings) {
      const value = modelDefaults[key];
      const range = RANGES[key];
      const valid = typeof value === 'number' && value >= range.min && value <= range.max && (!range.integer || Number.isInteger(value));
      if (valid) instance[key] = value;
    }
    if (left.generatedId) instance.id = instanceId({ ...instance, model: left.writtenModel });
  }
  assertUniqueIds(resolved);
  return resolved;
}

/** `request` with its instances resolved (resolveInstances), each still answering its own conversation if it has one. */
export async function resolveArenaRequest(router: ModelRouter, request: ArenaRequest, defaults?: InstanceDefaults): Promise<ArenaRequest> {
  const instances = await resolveInstances(router, request.instances, defaults, request.unsaid);
  const own = request.ownHistories;
  if (!own) return { ...request, instances };
  const ownHistories = new Map<ModelInstance, ChatMessage[]>();
  request.instances.forEach((parsed, index) => {
    const history = own.get(parsed);
    if (history) ownHistories.set(instances[index]!, history);
  });
  return { ...request, instances, ownHistories };
}

export function instanceOptions(instance: ModelInstance): GenerationOptions {
  return {
    temperature: instance.temperature,
    top_p: instance.top_p,
    top_k: instance.top_k,
    repeat_penalty: instance.repeat_penalty,
    num_predict: instance.num_predict,
    // To the Arena an instance's seed 0 means random; to backends a seed is always a fixed one.
    seed: instance.seed === 0 ? undefined : instance.seed,
  };
}

export function instanceMessages(instance: ModelInstance, history: ChatMessage[]): ChatMessage[] {
  return instance.system ? [{ role: 'system', content: instance.system }, ...history.filter((m) => m.role !== 'system')] : history;
}

/** An event of a streamed comparison, before it is given a wire format. */
export type ArenaEvent =
  /** `evalS`: seconds since this answer's first token, on the clock its final eval rate is measured by. */
  | { instance: ModelInstance; type: 'token'; text: string; evalS: number }
  /** `trimmed`: the oldest exchanges left out so that the conversation fits the model's context. */
  | { instance: ModelInstance; type: 'done'; metrics: ArenaMetrics; text: string; reason: StopReason; trimmed: number }
  | { instance: ModelInstance; type: 'error'; error: string; metrics?: ArenaMetrics; reason: StopReason; /** A client error's HTTP status (4xx). */ status?: number; shutdown?: true };

/** The 4xx status a generation's error carries (a prompt too long for the model), if it is a client error. */
function clientStatus(error: unknown): number | undefined {
  const { status, statusCode } = (error ?? {}) as { status?: unknown; statusCode?: unknown };
  const code = typeof status === 'number' ? status : statusCode;
  return typeof code === 'number' && code >= 400 && code < 500 ? code : undefined;
}

function stopReason(instance: ModelInstance, doneReason: string, tokens: number): StopReason {
  if (doneReason === 'abort') return 'cancelled';
  if (doneReason !== 'length') return 'stop';
  // The engine caps an answer at the room the context has left: short of num_predict, that was the cap.
  return instance.num_predict < 0 || tokens < instance.num_predict ? 'context' : 'length';
}

/**
 * Runs every instance concurrently and yields their events interleaved in the order they happen, so
 * that a slow model never holds back a fast one. Stopping the iteration (a client that went away)
 * aborts every generation still running.
 */
export async function* runArena(
  generation: GenerationService,
  request: ArenaRequest,
  signal: AbortSignal,
  usage?: UsageSink,
): AsyncGenerator<ArenaEvent> {
  const controller = new AbortController();
  const onAbort = () => controller.abort(signal.reason);
  signal.addEventListener('abort', onAbort, { once: true });
  const queue = new PushStream<ArenaEvent>();
  const emit = (event: ArenaEvent) => queue.push(event);
  const runOne = async (instance: ModelInstance) => {
    const started = performance.now();
    let firstToken: number | undefined;
    let trimmed = 0;
    try {
      const result = await GenerationService.collect(
        generateFitting(
          instanceMessages(instance, historyFor(request, instance)),
          // The backend refuses an overflow rather than shortening it unseen, so that the exchanges
          // left out are counted here and the column can say so.
          (messages) => generation.chat({ model: instance.model, messages, options: instanceOptions(instance), truncate: false, signal: controller.signal }, usage),
          { onTrimmed: (exchanges) => (trimmed = exchanges) },
        ),
        (text) => {
          const now = performance.now();
          firstToken ??= now;
          emit({ instance, type: 'token', text, evalS: (now - firstToken) / 1000 });
        },
      );
      const reason = stopReason(instance, result.stats.doneReason, result.stats.completionTokens);
      emit({ instance, type: 'done', metrics: arenaMetrics(result), text: result.text, reason, trimmed });
    } catch (error) {
      const message = controller.signal.aborted ? 'cancelled' : (error as Error).message;
      const durationMs = performance.now() - started;
      // A generation the shutdown stopped still reports what it had generated.
      const cut = error instanceof ShutdownError ? error : undefined;
      emit({
        instance,
        type: 'error',
        reason: controller.signal.aborted ? 'cancelled' : 'error',
        error: message,
        ...(controller.signal.aborted ? {} : { status: clientStatus(error) }),
        metrics: cut?.stats
          ? arenaMetrics({ text: '', stats: cut.stats, durationMs })
          : { tokens: 0, duration_s: Number((durationMs / 1000).toFixed(3)), tokens_per_sec: 0, eval_tokens_per_sec: 0, ttft_s: null, prompt_tokens: 0 },
        ...(cut ? { shutdown: true as const } : {}),
      });
    }
  };
  // runOne never throws (every failure is an event): the stream ends once every instance has ended.
  const all = Promise.all(request.instances.map(runOne)).then(() => queue.end());
  try {
    yield* queue;
  } finally {
    controller.abort(new Error('arena request ended'));
    signal.removeEventListener('abort', onAbort);
    await all;
  }
}
