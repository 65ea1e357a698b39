import crypto from 'node:crypto';
import type { ChatMessage } from '../domain/chat.js';
import { ArenaValidationError, resolveInstances, parseArenaRequest, type ArenaRequest, type InstanceDefaults, type UnsaidByInstance } from './arena.js';
import type { ModelInstance } from '../domain/arena.js';
import { configurationKey } from '../shared/instances.js';
import type { Winner } from '../domain/arena.js';
import type { ModelRouter } from '../gateway/router.js';
import { notAllowedMessage } from './run-access.js';
import type { BattleRecord, Contestant } from '../store/battles.js';
import { isRecord } from '../shared/is-record.js';

/**
 * Blind battles: two contestants drawn from a pool answer the same conversation as the anonymous
 * sides `a` and `b`; their names and settings are revealed only by the vote.
 */

const WINNERS: readonly Winner[] = ['a', 'b', 'tie', 'both_bad'];
const MAX_POOL = 32;
/**
 * With one model there is nothing to compare across models, so its contestants are two of these
 * configurations: temperature is the setting whose effect people most want to judge.
 */
const VARIANT_TEMPERATURES = [0.3, 0.7, 1.1, 1.5] as const;

export class ModelNotAllowedError extends Error {}


/**
 * The contestants a battle may draw from, each keyed by its configuration: the client's `id`, else
 * the configuration key built from the resolved model name, settings and system prompt. No pool
 * means every model the caller may use. Settings a contestant leaves out come from `defaults` (the
 * catalog's), then the Arena's own (INSTANCE_DEFAULTS), as in a comparison.
 */
export async function resolvePool(
  router: ModelRouter,
  history: ChatMessage[],
  pool: unknown,
  allowed: (model: string) => boolean,
  defaults?: InstanceDefaults,
): Promise<ModelInstance[]> {
  let entries: unknown[];
  if (pool === undefined || pool === null) {
    entries = (await router.models())
      // An embedding-only model cannot answer a conversation (no capabilities reported: assume it can).
      .filter((m) => !m.info.capabilities || m.info.capabilities.includes('completion'))
      .map((m) => m.name)
      .filter(allowed);
    if (entries.length === 0) throw new ArenaValidationError('No models available for a battle');
  } else {
    if (!Array.isArray(pool) || pool.length === 0) {
      throw new ArenaValidationError('pool must be a non-empty array of model names or model instances');
    }
    if (pool.length > MAX_POOL) throw new ArenaValidationError(`pool may hold at most ${MAX_POOL} contestants`);
    entries = pool;
  }
  const raw = entries.map((entry, index) => {
    if (typeof entry === 'string' && entry.trim() !== '') return { model: entry.trim() };
    if (isRecord(entry) && typeof entry.model === 'string' && entry.model.trim() !== '') return entry;
    throw new ArenaValidationError(`pool[${index}] must be a model name or a model instance with a model`);
  });
  const given = raw.map((entry) => typeof entry.id === 'string');
  let instances: ModelInstance[];
  let unsaid: UnsaidByInstance | undefined;
  try {
    // Placeholder ids for now: the built ones wait for the resolved names and the defaults.
    const placeholders = raw.map((entry, index) => (given[index] ? entry : { ...entry, id: `pool entry ${index}` }));
    ({ instances, unsaid } = parseArenaRequest({ history, model_instances: placeholders }));
  } catch (error) {
    if (error instanceof ArenaValidationError) throw new ArenaValidationError(error.message.replace(/model_instances\[/g, 'pool['));
    throw error;
  }
  const resolved = await resolveInstances(router, instances, defaults, unsaid);
  const seen = new Set<string>();
  return resolved.map((instance, index) => {
    if (!allowed(instance.model)) throw new ModelNotAllowedError(notAllowedMessage(instance.model));
    // Built keys use the resolved name, so `x` and `x:latest` are one configuration.
    const id = given[index] ? instance.id : configurationKey(instance);
    if (seen.has(id)) throw new ArenaValidationError(`Duplicate model instance detected: ${id}`);
    seen.add(id);
    return { ...instance, id };
  });
}

/** A uniformly random integer in [0, n). */
export type RandomInt = (n: number) => number;
const cryptoRandom: RandomInt = (n) => crypto.randomInt(n);

/** Two distinct contestants in random order; from a single one, two of its temperature variants. */
export function pickContestants(pool: ModelInstance[], random: RandomInt = cryptoRandom): { a: Contestant; b: Contestant } {
  let candidates = pool;
  if (pool.length === 1) {
    const base = pool[0]!;
    candidates = VARIANT_TEMPERATURES.map((temperature) => {
      const variant = { ...base, temperature };
      return { ...variant, id: configurationKey(variant) };
    });
  }
  const first = random(candidates.length);
  let second = random(candidates.length - 1);
  if (second >= first) second++;
  const contestant = (instance: ModelInstance): Contestant => ({ config: instance.id, instance });
  return { a: contestant(candidates[first]!), b: contestant(candidates[second]!) };
}

/** The comparison a battle runs: the two contestants under the names `a` and `b`. */
export function battleRequest(history: ChatMessage[], contestants: { a: Contestant; b: Contestant }): ArenaRequest {
  return {
    history,
    instances: [
      { ...contestants.a.instance, id: 'a' },
      { ...contestants.b.instance, id: 'b' },
    ],
    legacy: false,
  };
}

export function parseWinner(body: unknown): Winner {
  const winner = isRecord(body) ? body.winner : undefined;
  if (typeof winner !== 'string' || !WINNERS.includes(winner as Winner)) {
    throw new ArenaValidationError('winner must be one of "a", "b", "tie", "both_bad"');
  }
  return winner as Winner;
}

/** A revealed side: its configuration key, model and every setting. */
export function contestantView(contestant: Contestant) {
  const { id: _id, ...settings } = contestant.instance;
  return { instance_id: contestant.config, ...settings };
}

export function revealed(battle: BattleRecord) {
  return { a: contestantView(battle.a), b: contestantView(battle.b) };
}
