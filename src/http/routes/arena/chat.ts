import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Services } from '../../services.js';
import type { ArenaMetrics } from '../../../domain/arena.js';
import { clientGone } from '../../streaming.js';
import { continuedRun, parseAndCheck } from './request.js';
import { recordedArena, shownModel } from './stream.js';

/** `POST /api/chat` with `history`: the whole comparison as one JSON object, keyed by instance id (or model name). */

interface InstanceResult {
  model: string;
  instance_id?: string;
  response: string;
  metrics: ArenaMetrics | null;
  error: string | null;
}

/** What a request's own fault (e.g. a prompt longer than the context) answered with, per instance. */
const clientErrors = new WeakMap<InstanceResult, number>();

/** Runs an Arena request to the end and answers one object: a single answer for one instance, `results` for several. */
export async function arenaChat(services: Services, request: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  const arena = await parseAndCheck(services, request.body);
  const continues = await continuedRun(services, request, arena);
  const results = new Map<string, InstanceResult>();
  for (const instance of arena.instances) {
    results.set(instance.id, {
      model: shownModel(arena, instance),
      ...(arena.legacy ? {} : { instance_id: instance.id }),
      response: '',
      metrics: null,
      error: null,
    });
  }
  const cutByShutdown = new Set<string>();
  const events = await recordedArena(services, request, reply, arena, clientGone(request, reply), { kind: 'comparison', continues });
  for await (const event of events) {
    const result = results.get(event.instance.id)!;
    if (event.type === 'token') result.response += event.text;
    else if (event.type === 'done') result.metrics = event.metrics;
    else {
      result.error = event.error;
      result.metrics = event.metrics ?? null;
      if (event.status !== undefined) clientErrors.set(result, event.status);
      if (event.shutdown) cutByShutdown.add(event.instance.id);
    }
  }
  if (arena.instances.length === 1) {
    const only = results.get(arena.instances[0]!.id)!;
    // Cut short by the server's shutdown: a 503 saying so, not the seeds' 500.
    if (cutByShutdown.has(arena.instances[0]!.id)) return reply.code(503).send({ error: only.error, model: only.model });
    const status = clientErrors.get(only);
    if (only.error !== null && status !== undefined) return reply.code(status).send({ error: only.error, model: only.model });
    if (only.error !== null) {
      // The Arena's server error: the backend's own message goes in `details`, as Arena clients read it.
      return reply.code(500).send({ error: 'An unexpected error occurred', details: only.error, model: only.model });
    }
    return only;
  }
  return { results: Object.fromEntries(results) };
}
