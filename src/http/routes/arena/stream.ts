import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Services } from '../../services.js';
import { ownHistoriesById, type ArenaEvent, type ArenaRequest } from '../../../arena/arena.js';
import type { ModelInstance } from '../../../domain/arena.js';
import { hideModel } from '../../../arena/run-views.js';
import { mapIterator, startRecordedArena } from '../../../arena/run-recording.js';
import { ownerOf } from '../../../arena/run-access.js';
import { RunGoneError, RunStore, timeOrderedId, type NewRun, type RunKind, type RunRecord } from '../../../store/runs.js';
import { HttpError } from '../../../gateway/errors.js';
import { clientGone, ndjson, sendStream } from '../../streaming.js';

/**
 * The key of an instance in results and stream lines: the model name (legacy) or the instance id.
 * Anonymous streams (battles) carry the instance id alone, so the contestants stay hidden.
 */
function identity(request: ArenaRequest, event: ArenaEvent, anonymous: boolean): Record<string, string> {
  if (anonymous) return { instance_id: event.instance.id };
  return request.legacy ? { model: shownModel(request, event.instance) } : { instance_id: event.instance.id, model: event.instance.model };
}

/**
 * The model name an answer carries: legacy requests are keyed by the names the client wrote (seed
 * 000's clients match lines to columns by it, so `x` stays `x`, not `x:latest`); v3 gives the resolved one.
 */
export function shownModel(request: ArenaRequest, instance: ModelInstance): string {
  return request.legacy ? instance.id : instance.model;
}

/** One NDJSON line of `/api/stream_chat` (and of battles, anonymous). */
function streamLine(request: ArenaRequest, event: ArenaEvent, anonymous = false): string {
  const who = identity(request, event, anonymous);
  if (event.type === 'token') {
    // Timing could tell a battle's contestants apart before the vote, so anonymous lines carry none.
    return ndjson({ ...who, token: event.text, done: false, ...(anonymous ? {} : { eval_s: Number(event.evalS.toFixed(3)) }) });
  }
  if (event.type === 'done') {
    const trimmed = event.trimmed > 0 ? { trimmed_turns: event.trimmed } : {};
    return ndjson({ ...who, token: '', done: true, done_reason: event.reason, ...trimmed, metrics: event.metrics });
  }
  const error = anonymous ? hideModel(event.error, event.instance) : event.error;
  return ndjson({ ...who, token: '', done: true, done_reason: event.reason, error, metrics: event.metrics });
}

export interface RunOptions {
  kind: RunKind;
  rerunOf?: string;
  /** Writes the run's row; a battle writes its battle row in the same transaction. */
  save?: (run: NewRun) => Promise<void>;
  /** Battles: no model names in the stream. */
  anonymous?: boolean;
  /** A follow-up: the turn is appended to this run (checked by `continuedRun`) instead of a new run. */
  continues?: RunRecord;
}

/**
 * Starts an Arena request that is saved as a run and sets its `X-Run-Id` header. The generations
 * start before the row is written, so saving never delays the first token.
 */
export async function recordedArena(
  services: Services,
  request: FastifyRequest,
  reply: FastifyReply,
  arena: ArenaRequest,
  signal: AbortSignal,
  options: RunOptions,
): Promise<AsyncIterableIterator<ArenaEvent>> {
  const runs = new RunStore(services.store);
  const createdAt = new Date().toISOString();
  const continued = options.continues;
  const run: NewRun = {
    id: continued?.id ?? timeOrderedId(),
    kind: options.kind,
    ownerKeyId: ownerOf(request.principal),
    rerunOf: options.rerunOf ?? null,
    legacy: arena.legacy,
    history: arena.history,
    histories: ownHistoriesById(arena),
    instances: arena.instances,
    createdAt,
  };
  const save = continued
    ? async () => {
        try {
          return await runs.append(continued.id, { history: arena.history, histories: run.histories ?? null, createdAt });
        } catch (error) {
          if (error instanceof RunGoneError) throw new HttpError(404, 'Run not found');
          throw error;
        }
      }
    : () => (options.save ?? ((r: NewRun) => runs.create(r)))(run);
  const { events } = await startRecordedArena({
    generation: services.generation,
    runs,
    arena,
    runId: run.id,
    save,
    signal,
    usage: request.usage,
    onFinishError: (err) => request.log.error({ err, run: run.id }, 'saving the answers of a run failed'),
  });
  reply.header('x-run-id', run.id);
  return events;
}

/** Streams a recorded Arena request as the NDJSON of `/api/stream_chat`. */
export async function streamArena(
  services: Services,
  request: FastifyRequest,
  reply: FastifyReply,
  arena: ArenaRequest,
  options: RunOptions,
): Promise<FastifyReply> {
  const events = await recordedArena(services, request, reply, arena, clientGone(request, reply), options);
  const lines = mapIterator(events, (event) => streamLine(arena, event, options.anonymous));
  return sendStream(reply, 'application/x-ndjson', lines);
}
