import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Services } from '../../services.js';
import { pullJobFor } from '../../../access/pull-jobs.js';
import { type PullJob } from '../../../domain/models.js';
import { PushStream } from '../../../shared/push-stream.js';
import { ndjson, sendStream } from '../../streaming.js';

/** A line now and then keeps proxies from closing a quiet stream and lets a client notice a dead one. */
const HEARTBEAT_MS = 15_000;

type VisibleJob = ReturnType<typeof pullJobFor>;
export type PullEvent = { type: 'snapshot'; pulls: VisibleJob[] } | { type: 'update'; job: VisibleJob } | { type: 'ping' };

/**
 * `GET /api/pulls/events`: the live feed of model downloads, as NDJSON (read with fetch, because a
 * browser's EventSource cannot send the Authorization header). It starts with every known job, then
 * one line per change of any job, so a page opened (or reloaded) mid-download shows the same progress
 * as every other open page. Each reader sees jobs as its principal may (sources for the admin only).
 */
export function pullEventRoutes(services: Services) {
  return async function (app: FastifyInstance): Promise<void> {
    const open = new Map<PushStream<string>, FastifyReply>();
    // Feeds never go idle, so the server ends them to close; and since a client may keep the socket
    // alive after the last line (no request in flight is not enough for it to let go), it goes too.
    app.addHook('preClose', async () => {
      for (const [stream, reply] of open) {
        const socket = reply.raw.socket;
        reply.raw.once('finish', () => socket?.destroy());
        stream.end();
      }
    });

    app.get('/api/pulls/events', {
      config: { access: 'model' },
      schema: {
        tags: ['arena'],
        summary: 'Live NDJSON feed of model downloads: a snapshot, then every job update, with heartbeats',
      },
    }, async (request, reply) => {
      const stream = new PushStream<string>();
      const send = (event: PullEvent) => stream.push(ndjson(event));
      const visible = (job: PullJob) => pullJobFor(request.principal, job);
      const onUpdate = (job: PullJob) => send({ type: 'update', job: visible(job) });
      send({ type: 'snapshot', pulls: services.pulls.list().map(visible) });
      services.pulls.events.on('update', onUpdate);
      const heartbeat = setInterval(() => send({ type: 'ping' }), HEARTBEAT_MS);
      const stop = () => {
        services.pulls.events.off('update', onUpdate);
        clearInterval(heartbeat);
        open.delete(stream);
        stream.end();
      };
      open.set(stream, reply);
      reply.raw.on('close', stop);
      request.raw.on('aborted', stop);
      return sendStream(reply, 'application/x-ndjson', stream);
    });
  };
}
