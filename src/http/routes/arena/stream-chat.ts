import type { FastifyInstance } from 'fastify';
import type { Services } from '../../services.js';
import { arenaBodySchema, continuedRun, parseAndCheck } from './request.js';
import { streamArena } from './stream.js';

/** `POST /api/stream_chat`: every instance of a comparison streamed as interleaved NDJSON lines, saved as a run. */
export function arenaStreamChatRoutes(services: Services) {
  return async function (app: FastifyInstance): Promise<void> {
    app.post('/api/stream_chat', {
      config: { access: 'model' },
      attachValidation: true, // the schema documents; parseArenaRequest validates with the Arena's messages
      schema: {
        tags: ['arena'],
        summary: 'Stream every instance of a comparison as interleaved NDJSON',
        description:
          'A follow-up question names the run it continues in `run_id`: the new turn (the history sent and every answer with its metrics) is appended to that run, and X-Run-Id answers the same id. Each instance may carry its own `history` (its own earlier answers).',
        body: arenaBodySchema,
        response: {
          200: {
            description: 'NDJSON lines {instance_id (or model for legacy requests), token, done, eval_s? (token lines: seconds since the first token), done_reason? (stop, length, context, cancelled, error), trimmed_turns?, metrics?, error?}; the comparison is saved as a run, or appended as a turn to the run named by run_id',
            headers: { 'x-run-id': { type: 'string', description: 'The saved run (GET /api/runs/{id}); a follow-up names the run it continued' } },
            content: { 'application/x-ndjson': { schema: { type: 'object', additionalProperties: true } } },
          },
        },
      },
    }, async (request, reply) => {
      const arena = await parseAndCheck(services, request.body);
      const continues = await continuedRun(services, request, arena);
      return streamArena(services, request, reply, arena, { kind: 'comparison', continues });
    });
  };
}
