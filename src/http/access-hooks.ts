/**
 * API management in the request cycle: every route's access level, per-key rate limits, model
 * allow-lists and inactive models, and one usage record per request, as Fastify hooks.
 */
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../config.js';
import { bearerToken, MANAGE_REFUSED, mayManageModels } from '../access/auth.js';
import { accessOf, routeOf, usesModels } from '../access/route-access.js';
import { ApiKeys } from '../access/api-keys.js';
import { inactiveMessage } from '../access/catalog.js';
import type { GenerationService } from '../gateway/generation.js';
import type { PullJobs } from '../access/pull-jobs.js';
import type { ModelRouter } from '../gateway/router.js';
import { normaliseModelName } from '../shared/model-names.js';
import { sharePullJobs } from '../access/shared-events.js';
import { HttpError } from '../gateway/errors.js';
import type { ApiManagement } from '../access/api-management.js';
import type { ModelUse } from '../access/usage-buffer.js';
import { streamedBody } from './streaming.js';
import { isRecord } from '../shared/is-record.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * The API a route's usage is recorded under (`arena`, `ollama`, `openai`...): given where the route
     * is registered (withSurface) or by the route itself, which may decide per request (a function).
     */
    surface?: string | ((request: FastifyRequest) => string);
    /** The path parameter that names a model (`/api/models/:name`), checked as a body's `model` is. */
    modelParam?: string;
    /**
     * What the route may do with a model the catalog has made inactive: `read` its details (anyone
     * but an API key, with GET) or `unload` it (whoever may manage models). Nobody may use one.
     */
    inactiveModel?: 'read' | 'unload';
  }
  interface FastifyRequest {
    /** Its usage record is taken when its response closes (set on every model route). */
    usageTracked: boolean;
  }
}

const CLIENT_CLOSED_REQUEST = 499;
/** The statuses of a request refused before it ran: no credential, no permission, over the rate limit. */
const REFUSALS = new Set([401, 403, 429]);

/** The API a request used, for the usage ledger: its route's `config.surface`; `ollama` for a route that names none. */
export function surfaceOf(request: FastifyRequest): string {
  const surface = routeOf(request).config.surface;
  if (typeof surface === 'function') return surface(request);
  return surface ?? 'ollama';
}

/**
 * Registers an API's route plugin so that each of its routes is recorded under `surface`, unless the
 * route names its own: the routes' registration is the one table of which API a path belongs to.
 */
export function withSurface(surface: string, plugin: FastifyPluginAsync): FastifyPluginAsync {
  return async (app) => {
    app.addHook('onRoute', (route) => {
      route.config = { ...route.config, surface: route.config?.surface ?? surface };
    });
    await app.register(plugin);
  };
}

/**
 * Every model a request names, wherever its API puts it: `model` (Ollama, OpenAI), else
 * Ollama's legacy `name` (which its surface accepts on every route), the Arena's `models` and
 * `model_instances[].model`, a battle's `pool`, and the path parameter a route names in `config.modelParam`.
 * It must read every field a handler may take a model from, or that field gets past the checks.
 */
function requestedModels(request: FastifyRequest): string[] {
  const names: string[] = [];
  const body = request.body;
  if (isRecord(body)) {
    if (typeof body.model === 'string') names.push(body.model);
    else if (typeof body.name === 'string') names.push(body.name);
    if (Array.isArray(body.models)) for (const m of body.models) if (typeof m === 'string') names.push(m);
    for (const list of [body.model_instances, body.pool]) {
      if (!Array.isArray(list)) continue;
      for (const entry of list) {
        if (typeof entry === 'string') names.push(entry);
        else if (isRecord(entry) && typeof entry.model === 'string') names.push(entry.model);
      }
    }
  }
  const param = routeOf(request).config.modelParam;
  const named = param === undefined ? undefined : (request.params as Record<string, unknown> | undefined)?.[param];
  if (typeof named === 'string') names.push(named);
  return names.filter((name) => name.trim() !== '');
}

export interface Wiring {
  config: Config;
  auth: { useKeys(keys: ApiKeys): void };
  router: ModelRouter;
  generation: GenerationService;
  pulls: PullJobs;
}

/**
 * Plugs API management into the server. Call it before the route plugins are registered, after the
 * auth hook, so that its hooks run for every route and after authentication.
 */
export async function installApiManagement(app: FastifyInstance, management: ApiManagement, wiring: Wiring): Promise<void> {
  const { keys, catalog, limiter, usageLedger, shared } = management;
  wiring.auth.useKeys(keys);
  wiring.generation.usePolicy(catalog);
  wiring.router.useListFilter((name) => catalog.isActive(name));
  await sharePullJobs(shared, wiring.pulls, wiring.router);

  // Rate limits: every request made with an API key (admin-token and open requests are not limited).
  // Hooks that have nothing to wait for are plain callbacks: an async hook costs a promise and a
  // microtask per request even when it returns at once, on every request of the busiest routes.
  const limit = async (request: FastifyRequest, reply: FastifyReply) => {
    let principal = request.principal;
    if (principal?.kind !== 'key') return;
    const decision = await limiter.take(principal.keyId, principal.rpm, principal.tpm);
    if (decision.epoch !== undefined && keys.isStale(principal, decision.epoch)) {
      // A key changed on some replica since this one cached it: read it again before trusting it.
      const verdict = await keys.verify(bearerToken(request.headers.authorization) ?? '');
      if ('refused' in verdict) throw new HttpError(401, verdict.refused, 'authentication_error', 'invalid_api_key');
      request.principal = principal = verdict;
      // Its scopes may have changed too: the route's level is checked again against the fresh key.
      if (accessOf(request) === 'manage' && !mayManageModels(principal)) throw new HttpError(403, MANAGE_REFUSED, 'permission_error', 'insufficient_permissions');
    }
    const resetSeconds = Math.ceil(decision.resetAt / 1000);
    reply.header('x-ratelimit-limit', decision.limit);
    reply.header('x-ratelimit-remaining', decision.remaining);
    reply.header('x-ratelimit-reset', resetSeconds);
    if (principal.tpm !== undefined) {
      reply.header('x-ratelimit-limit-tokens', principal.tpm);
      reply.header('x-ratelimit-remaining-tokens', Math.max(0, principal.tpm - decision.tokensUsed));
    }
    keys.noteUse(principal.keyId);
    if (!decision.allowed) {
      reply.header('retry-after', Math.max(1, Math.ceil((decision.resetAt - Date.now()) / 1000)));
      const message =
        decision.reason === 'tokens'
          ? `Rate limit exceeded: ${principal.tpm} tokens per minute for this API key`
          : `Rate limit exceeded: ${decision.limit} requests per minute for this API key`;
      throw new HttpError(429, message, 'rate_limit_error', 'rate_limit_exceeded');
    }
  };
  app.addHook('onRequest', (request, reply, done) => {
    if (request.principal?.kind !== 'key') return done();
    limit(request, reply).then(() => done(), done);
  });

  // The models a request names: active in the catalog, and on the key's allow-list.
  const checkModels = (request: FastifyRequest): void => {
    const principal = request.principal;
    if (!principal || !usesModels(request)) return;
    // An admin (or anyone on an open server) may still read an inactive model's details, to turn it
    // back on; whoever may manage models may unload it. Nobody may use it, load it included.
    const inactive = routeOf(request).config.inactiveModel;
    const mayReadInactive =
      (inactive === 'read' && principal.kind !== 'key' && request.method === 'GET') || (inactive === 'unload' && mayManageModels(principal));
    for (const name of requestedModels(request)) {
      if (principal.kind === 'key' && !ApiKeys.allows(principal, name)) {
        throw new HttpError(403, `This API key is not allowed to use model '${name}'`, 'permission_error', 'model_not_allowed');
      }
      // Details of an inactive model stay readable (admin pages show them); using it does not.
      if (!mayReadInactive && !catalog.isActive(name)) throw new HttpError(403, inactiveMessage(name), 'invalid_request_error', 'model_inactive');
    }
  };
  app.addHook('preHandler', (request, _reply, done) => {
    try {
      checkModels(request);
    } catch (error) {
      return done(error as HttpError);
    }
    done();
  });

  // Usage: one record per request and model on every model route, written in batches. It is taken
  // when the connection's response closes, not in onResponse: Fastify skips onResponse for a stream
  // the client drops (the web Stop button, a killed script), and those tokens count too.
  // A field of the request rather than a WeakSet of requests: a weak collection with an entry per
  // request is work for every young-generation collection.
  app.decorateRequest('usageTracked', false);
  app.addHook('onRequest', (request, reply, done) => {
    if (!request.principal || !usesModels(request)) return done();
    request.usageTracked = true;
    reply.raw.on('close', () => {
      const stream = streamedBody(request);
      // A dropped stream's generator still runs its `finally` (usage of the tokens it streamed); the
      // stream closes only after that, so the record waits for it.
      if (stream && !stream.closed) stream.on('close', () => recordUsage(request, reply));
      else recordUsage(request, reply);
    });
    done();
  });

  // Refused requests count too, with their status: a bad or missing credential (401, answered before
  // anyone is known), a key not allowed the route (403) and a rate limit (429) all stop the request
  // before the hook above, on every route that is not public.
  app.addHook('onResponse', (request, reply, done) => {
    // A path no route matches is no API request, whatever it was refused with.
    if (!request.usageTracked && REFUSALS.has(reply.statusCode) && routeOf(request).url !== undefined && accessOf(request) !== 'public') {
      recordUsage(request, reply);
    }
    done();
  });

  const recordUsage = (request: FastifyRequest, reply: FastifyReply): void => {
    const principal = request.principal;
    const keyId = principal?.kind === 'key' ? principal.keyId : null;
    const surface = surfaceOf(request);
    // nginx's 499 for a response the client closed before its end, and for one the server's shutdown
    // cut short (its client got a last line or a 503 saying so).
    const status = reply.raw.writableFinished && !request.usage?.cutByShutdown ? reply.statusCode : CLIENT_CLOSED_REQUEST;
    // One object for every model of the request: the ledger copies its fields as it records it.
    const use: ModelUse = { request: usageLedger.nextRequest(), keyId, model: null, surface, promptTokens: 0, completionTokens: 0, durationMs: Math.round(reply.elapsedTime), status, at: Date.now() };
    let tokens = 0;
    let recorded = false;
    for (const [model, used] of request.usage?.byModel ?? []) {
      use.model = normaliseModelName(model);
      use.promptTokens = used.promptTokens;
      use.completionTokens = used.completionTokens;
      usageLedger.record(use);
      tokens += used.promptTokens + used.completionTokens;
      recorded = true;
    }
    if (!recorded) {
      const named = requestedModels(request)[0];
      use.model = named === undefined ? null : normaliseModelName(named);
      usageLedger.record(use);
    }
    if (keyId !== null && tokens > 0) limiter.addTokens(keyId, tokens);
  };
}
