import type { ArenaEvent, ArenaRequest } from './arena.js';
import { runArena } from './arena.js';
import type { GenerationService, UsageSink } from '../gateway/generation.js';
import type { Answer, RunStatus, RunStore } from '../store/runs.js';

/**
 * Runs: every comparison and battle is saved with its settings and answers. The row is written while
 * the generations already run, so saving never delays the first token; the answers are written when
 * the run ends, including what had streamed when a client went away.
 */

export interface RecordedArena {
  runId: string;
  events: AsyncIterableIterator<ArenaEvent>;
}

export interface RecordOptions {
  generation: GenerationService;
  runs: RunStore;
  arena: ArenaRequest;
  runId: string;
  /**
   * Writes the run's row (and a battle's), or appends a turn to a run continued; answers the turn's
   * number (1 when it returns none). Awaited before the caller sends the run id.
   */
  save: () => Promise<number | void>;
  signal: AbortSignal;
  usage?: UsageSink;
  /** Failing to write the answers at the end cannot reach the client any more; it is logged. */
  onFinishError: (error: unknown) => void;
}

/**
 * Starts the generations, then saves the run: both proceed together, and the run id is returned only
 * once the row exists, so a client that reads the `X-Run-Id` header can fetch the run at once. If the
 * row cannot be written, the generations are stopped and the error is thrown.
 */
export async function startRecordedArena(options: RecordOptions): Promise<RecordedArena> {
  const { arena, signal } = options;
  const controller = new AbortController();
  const forward = () => controller.abort(signal.reason);
  if (signal.aborted) forward();
  else signal.addEventListener('abort', forward, { once: true });
  const source = runArena(options.generation, arena, controller.signal, options.usage);
  const first = source.next();
  // Awaited below; this only keeps a failure meanwhile from counting as an unhandled rejection.
  first.catch(() => undefined);
  let turn = 1;
  try {
    turn = (await options.save()) ?? 1;
  } catch (error) {
    controller.abort(new Error('the run could not be saved'));
    await first.catch(() => undefined);
    await source.return(undefined);
    signal.removeEventListener('abort', forward);
    throw error;
  }

  const answers: Record<string, Answer> = {};
  for (const instance of arena.instances) answers[instance.id] = { response: '', metrics: null, error: null };
  const ended = new Set<string>();
  let failed = false;
  let started = false;
  let finishing: Promise<void> | undefined;
  // Once, from whichever comes first: the consumer's end, or a client that left before it began.
  const finish = (completed: boolean) =>
    (finishing ??= (async () => {
      // Stops whatever still runs when the consumer left early (the client disconnected).
      await source.return(undefined);
      signal.removeEventListener('abort', forward);
      for (const id of Object.keys(answers)) if (!ended.has(id)) answers[id]!.error = 'cancelled';
      const status: RunStatus = !completed || controller.signal.aborted ? 'partial' : failed ? 'error' : 'done';
      await options.runs.finish(options.runId, status, answers, turn).catch(options.onFinishError);
    })());
  async function* events(): AsyncGenerator<ArenaEvent> {
    let completed = false;
    try {
      for (let step = await first; !step.done; step = await source.next()) {
        const event = step.value;
        const answer = answers[event.instance.id]!;
        if (event.type === 'token') answer.response += event.text;
        else {
          ended.add(event.instance.id);
          answer.metrics = event.metrics ?? null;
          if (event.type === 'error') {
            answer.error = event.error;
            failed = true;
          }
        }
        yield event;
      }
      completed = true;
    } finally {
      await finish(completed);
    }
  }
  const generator = events();
  // A response torn down before its body was read ends the generator without running its body, nor
  // its `finally`: ending it then stops the generations and finishes the run here instead.
  const endUnstarted = async () => {
    if (started) return;
    controller.abort(new Error('the response ended before it was read'));
    await finish(false);
  };
  const iterator: AsyncIterableIterator<ArenaEvent> = {
    next: () => {
      started = true;
      return generator.next();
    },
    return: async (value?: unknown) => {
      await endUnstarted();
      return generator.return(value as undefined);
    },
    throw: async (error?: unknown) => {
      await endUnstarted();
      return generator.throw(error);
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
  return { runId: options.runId, events: iterator };
}

/**
 * `source` with each value mapped. Unlike a wrapping generator, ending it (return/throw) always reaches
 * the source, even before the first value was asked for: a generator never started ignores both.
 */
export function mapIterator<T, U>(source: AsyncIterableIterator<T>, map: (value: T) => U): AsyncIterableIterator<U> {
  const done = (): IteratorResult<U> => ({ done: true, value: undefined });
  return {
    next: async () => {
      const step = await source.next();
      return step.done ? done() : { done: false, value: map(step.value) };
    },
    return: async () => {
      await source.return?.();
      return done();
    },
    throw: async (error?: unknown) => {
      if (source.throw) await source.throw(error);
      return done();
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}
