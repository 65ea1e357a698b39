import crypto from 'node:crypto';
import Fastify, { LogController, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import cors from '@fastify/cors';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { Config } from './config.js';
import { BackendError, type ModelProvider } from './providers/provider.js';
import { EmbeddedEngine } from './providers/embedded/engine.js';
import { Authenticator, type Principal } from './access/auth.js';
import { accessOf, declareRouteAccess, routeOf, withAccess } from './access/route-access.js';
import type { LlamaLoader } from './providers/embedded/llama-start.js';
import { GenerationService, RequestUsage } from './gateway/generation.js';
import { Metrics } from './gateway/metrics.js';
import { ModelRouter } from './gateway/router.js';
import { PullJobs } from './access/pull-jobs.js';
import { PullPolicy } from './providers/embedded/pull-policy.js';
import { SessionService } from './access/sessions.js';
import { Drain, drainRequests } from './gateway/shutdown.js';
import { openStore } from './store/database.js';
import { closeApiManagement, openApiManagement } from './access/api-management.js';
import { installApiManagement, surfaceOf, withSurface } from './http/access-hooks.js';
import { HttpError, statusOf } from './gateway/errors.js';
import { jsonBodyParser } from './http/json-body.js';
import { stdoutLog } from './http/log-destination.js';
import type { Services } from './http/services.js';
import { infoRoutes } from './http/routes/info.js';
import { chatDispatchRoutes } from './http/routes/chat-dispatch.js';
import { webRoutes } from './http/routes/web.js';
import { arenaHealthRoutes } from './http/routes/arena/health.js';
import { arenaStreamChatRoutes } from './http/routes/arena/stream-chat.js';
import { arenaPullRoutes } from './http/routes/arena/pulls.js';
import { arenaDeleteModelRoutes } from './http/routes/arena/delete-model.js';
import { modelRoutes } from './http/routes/arena/models.js';
import { battleRoutes } from './http/routes/arena/battles.js';
import { leaderboardRoutes } from './http/routes/arena/leaderboard.js';
import { runRoutes } from './http/routes/arena/runs.js';
import { pullEventRoutes } from './http/routes/arena/pull-events.js';
import { ollamaGenerateRoutes } from './http/routes/ollama/generate.js';
import { ollamaEmbedRoutes } from './http/routes/ollama/embed.js';
import { ollamaModelRoutes } from './http/routes/ollama/models.js';
import { ollamaPullRoutes } from './http/routes/ollama/pull.js';
import { ollamaManageRoutes } from './http/routes/ollama/manage.js';
import { ollamaVersionRoutes } from './http/routes/ollama/version.js';
import { ollamaCreateRoutes } from './http/routes/ollama/create.js';
import { openAiChatCompletionRoutes } from './http/routes/openai/chat-completions.js';
import { openAiCompletionRoutes } from './http/routes/openai/completions.js';
import { openAiEmbeddingRoutes } from './http/routes/openai/embeddings.js';
import { openAiModelRoutes } from './http/routes/openai/models.js';
import { openAiResponsesRoutes } from './http/routes/openai/responses.js';
import { sessionRoutes } from './http/routes/ollama/sessions.js';
import { adminKeyRoutes } from './http/routes/admin/keys.js';
import { adminUsageRoutes } from './http/routes/admin/usage.js';
import { adminModelRoutes } from './http/routes/admin/models.js';

/** Everything the surfaces share: built once per server, handed to each route plugin. */
declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal;
    /** Tokens this request generated; every surface passes it to GenerationService. */
    usage: RequestUsage;
  }
}

/** The API a route belongs to decides the error format: OpenAI's error object under /v1, `{"error": "..."}` elsewhere. */
function isOpenAiPath(url: string): boolean {
  return url.startsWith('/v1/') || url === '/v1';
}

/**
 * Whether a request gets OpenAI's error format: from the API its matched route was registered under,
 * or for a request no route matched, from the prefix of the not-found handler the router chose (`/v1`
 * has its own).
 */
function speaksOpenAi(request: FastifyRequest): boolean {
  if (routeOf(request).url !== undefined) return surfaceOf(request) === 'openai';
  return isOpenAiPath(request.server.prefix);
}

function errorBody(request: FastifyRequest, status: number, message: string, type?: string, code?: string, details?: string) {
  if (speaksOpenAi(request)) {
    const fallbackType =
      status === 401 ? 'authentication_error' : status === 403 ? 'permission_error' : status === 429 ? 'rate_limit_error' : status >= 500 ? 'server_error' : 'invalid_request_error';
    return { error: { message, type: type ?? fallbackType, code: code ?? (status === 404 ? 'model_not_found' : null) } };
  }
  return details === undefined ? { error: message } : { error: message, details };
}

export interface BuildOptions {
  config: Config;
  /** Extra backends (Ollama, OpenAI-compatible) beside the embedded engine. */
  backends?: ModelProvider[];
  /** Where logs go (stdout by default); tests pass a stream to read them. */
  logStream?: NodeJS.WritableStream;
  /** How the embedded engine loads llama.cpp (tests make it fail with this); node-llama-cpp's by default. */
  loadLlama?: LlamaLoader;
}

export async function buildServer({ config, backends = [], logStream, loadLlama }: BuildOptions): Promise<{ app: FastifyInstance; services: Services }> {
  const app = Fastify({
    logger: {
      level: config.logLevel,
      // Stdout is written asynchronously and in batches (see BatchedLogDestination).
      stream: logStream ?? stdoutLog(),
      redact: { paths: ['req.headers.authorization', 'req.headers["x-api-key"]'], censor: '[redacted]' },
    },
    genReqId: (req) => (req.headers['x-request-id'] as string | undefined)?.slice(0, 64) || crypto.randomUUID(),
    requestIdHeader: false,
    // Fastify's own request logging writes two lines per request (a measurable share of the gateway's
    // overhead, bench/RESULTS.md); the onResponse hook below writes one compact line instead.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: config.bodyLimitBytes,
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false } },
    // Connections are closed by the shutdown's drain (gateway/shutdown.ts), once their requests have ended.
    forceCloseConnections: false,
  });
  // Before any route is registered: every route must declare who may call it.
  const routes = declareRouteAccess(app);

  const metrics = new Metrics();
  const pullPolicy = new PullPolicy(config.pullAllowHosts);
  const engine = new EmbeddedEngine({
    modelsDir: config.modelsDir,
    threads: config.threads,
    parallel: config.parallel,
    maxParallel: config.maxParallel,
    keepAliveMs: config.keepAliveMs,
    registryUrl: config.ollamaRegistry,
    pullPolicy,
    loadLlama,
  });
  const router = new ModelRouter([engine, ...backends]);
  const store = await openStore({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
  const management = await openApiManagement(config, store, (err, what) => app.log.warn({ err }, what), app.log);
  const services: Services = {
    ...management,
    config,
    engine,
    router,
    generation: new GenerationService(router, metrics),
    metrics,
    auth: new Authenticator(config.webChatToken),
    pulls: new PullJobs(router, pullPolicy),
    store,
    sessions: new SessionService(store, config.sessionTtlMs, (err) => app.log.error({ err }, 'session write failed')),
    startedAt: new Date(),
    routes,
  };

  app.decorateRequest('principal', null as never);
  app.decorateRequest('usage', null as never);

  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
    request.usage = new RequestUsage();
    const outcome = await services.auth.authenticate(request.headers.authorization, accessOf(request), request.raw.socket);
    if (!outcome.ok) {
      return reply.code(outcome.status).send(errorBody(request, outcome.status, outcome.message, undefined, outcome.code));
    }
    request.principal = outcome.principal;
  });

  app.addHook('onResponse', (request, reply, done) => {
    metrics.httpAnswered(request.method, routeOf(request).url ?? 'unmatched', reply.statusCode, reply.elapsedTime / 1000);
    request.log.info({ method: request.method, url: request.url, status: reply.statusCode, ms: Math.round(reply.elapsedTime * 100) / 100 }, 'request');
    done();
  });

  // API keys, rate limits, allow-lists, catalog and usage: hooks that run after authentication.
  await installApiManagement(app, management, services);

  app.setErrorHandler((error: FastifyError, request, reply) => {
    // A client that left mid-request is not a server fault: note it quietly (499, as nginx does).
    // (Not `request.raw.destroyed`: Node destroys every request stream once its body has been read.)
    if (request.raw.socket?.destroyed || reply.raw.destroyed) {
      request.log.info({ reason: error.message }, 'client went away before the answer');
      return reply.code(499).send(errorBody(request, 499, 'client closed the request'));
    }
    if (error.validation) {
      return reply.code(400).send(errorBody(request, 400, error.message.replace(/^body\//, ''), 'invalid_request_error'));
    }
    const status = statusOf(error);
    // An HttpError's message is written for the client (a shutdown's 503, say); other 5xx are hidden.
    if (status >= 500 && !(error instanceof BackendError) && !(error instanceof HttpError)) {
      request.log.error({ err: error }, 'request failed');
      return reply.code(status).send(errorBody(request, status, 'An unexpected error occurred', undefined, undefined, error.message));
    }
    const type = error instanceof HttpError ? error.type : undefined;
    const code = error instanceof HttpError ? error.code : undefined;
    if (status >= 500) request.log.warn({ err: error }, 'backend failed');
    return reply.code(status).send(errorBody(request, status, error.message, type, code));
  });

  // Ollama reads every body as JSON whatever its Content-Type, and its own docs' `curl -d` examples send
  // form-urlencoded: those bodies are parsed as JSON too, so the examples work here unchanged. Not from
  // a web page of another origin, though: such a form post needs no CORS preflight, so accepting it
  // would let any site drive a local server (Ollama guards this with OLLAMA_ORIGINS).
  // An empty JSON body is no body (Fastify's default refuses it with its own message), so that each
  // route answers with the message its API's clients know (`No messages provided`, `Model name is required`).
  // Large bodies are parsed on a worker thread, so that a megabytes-long prompt stalls no other request.
  const defaultJsonParser = app.getDefaultJsonParser('error', 'error');
  const parseJson = jsonBodyParser(config.bodyLimitBytes, (request, body, done) => defaultJsonParser(request, body, done));
  app.addContentTypeParser('application/json', parseJson);
  app.addContentTypeParser(['application/x-www-form-urlencoded', 'text/plain'], (request, payload, done) => {
    const origin = request.headers.origin;
    if (origin !== undefined && !config.corsOrigins.includes('*') && !config.corsOrigins.includes(origin)) {
      return done(new HttpError(403, 'cross-origin requests must send Content-Type: application/json'), undefined);
    }
    parseJson(request, payload, done);
  });

  const notFound = (request: FastifyRequest, reply: FastifyReply) => {
    reply.code(404).send(errorBody(request, 404, 'Resource not found', 'invalid_request_error', 'not_found'));
  };
  app.setNotFoundHandler(notFound);
  // Unknown paths under /v1 are answered by a handler of their own, so they get OpenAI's error format
  // by the router's decision rather than by the URL's spelling.
  await app.register(async (v1) => void v1.setNotFoundHandler(notFound), { prefix: '/v1' });

  // CORS is off unless CORS_ORIGINS names the origins allowed to call the API from a browser.
  if (config.corsOrigins.length > 0) {
    await app.register(cors, {
      origin: config.corsOrigins.includes('*') ? true : config.corsOrigins,
      exposedHeaders: ['X-Request-Id', 'X-Run-Id', 'X-Battle-Id', 'X-RateLimit-Limit', 'X-RateLimit-Remaining', 'X-RateLimit-Reset', 'Retry-After'],
    });
  }

  await app.register(swagger, {
    openapi: {
      info: {
        title: 'ollama-arena',
        version: '0.1.0',
        description: 'Arena, Ollama-compatible and OpenAI-compatible APIs of one self-hosted LLM gateway.',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  });
  // The API's documentation is public, like the routes' list it documents.
  await app.register(
    withAccess('public', async (docs) => {
      await docs.register(swaggerUi, { routePrefix: '/docs' });
    }),
  );

  app.get('/metrics', { config: { access: 'public' }, schema: { hide: true } }, async (_request, reply) => {
    reply.header('content-type', metrics.registry.contentType);
    return metrics.registry.metrics();
  });

  await app.register(infoRoutes(services));
  await app.register(withSurface('arena', arenaHealthRoutes(services)));
  await app.register(withSurface('arena', arenaStreamChatRoutes(services)));
  await app.register(withSurface('arena', arenaPullRoutes(services)));
  await app.register(withSurface('arena', arenaDeleteModelRoutes(services)));
  await app.register(withSurface('arena', modelRoutes(services)));
  await app.register(chatDispatchRoutes(services));
  await app.register(withSurface('arena', battleRoutes(services)));
  await app.register(withSurface('arena', leaderboardRoutes(services)));
  await app.register(withSurface('arena', runRoutes(services)));
  await app.register(webRoutes());
  await app.register(withSurface('arena', pullEventRoutes(services)));
  // The Ollama API (`POST /api/chat` with `messages` is dispatched above).
  await app.register(withSurface('ollama', ollamaGenerateRoutes(services)));
  await app.register(withSurface('ollama', ollamaEmbedRoutes(services)));
  await app.register(withSurface('ollama', ollamaModelRoutes(services)));
  await app.register(withSurface('ollama', ollamaPullRoutes(services)));
  await app.register(withSurface('ollama', ollamaManageRoutes(services)));
  await app.register(withSurface('ollama', ollamaVersionRoutes()));
  await app.register(withSurface('ollama', ollamaCreateRoutes(services)));
  // The OpenAI API under /v1.
  await app.register(withSurface('openai', openAiChatCompletionRoutes(services)));
  await app.register(withSurface('openai', openAiCompletionRoutes(services)));
  await app.register(withSurface('openai', openAiEmbeddingRoutes(services)));
  await app.register(withSurface('openai', openAiModelRoutes(services)));
  await app.register(withSurface('openai', openAiResponsesRoutes(services)));
  await app.register(withSurface('sessions', sessionRoutes(services)));
  await app.register(withSurface('admin', adminKeyRoutes(services)));
  await app.register(withSurface('admin', adminUsageRoutes(services)));
  await app.register(withSurface('admin', adminModelRoutes(services)));
  await app.register((await import('./http/routes/arena/evals.js')).evalRoutes(services));

  // On close, requests in flight get a grace period to finish; then their generations and pulls are
  // stopped and each ends with its last line. Models are unloaded (onClose) only once none is in use.
  // Registered last: preClose hooks run in registration order, and the live feeds end themselves in theirs.
  const drain = new Drain();
  drain.watch(app.server);
  await app.register(async (last) => {
    last.addHook('preClose', async () => {
      await drainRequests({
        server: app.server,
        drain,
        graceMs: config.shutdownGraceMs,
        log: app.log,
        cut: async (waitMs) => {
          services.pulls.cancelAll();
          await services.generation.stopAll(waitMs);
        },
      });
    });
  });

  app.addHook('onClose', async () => {
    await services.pulls.cancelAll();
    await router.close();
    await closeApiManagement(management);
    await services.sessions.flush();
    await store.close();
  });

  return { app, services };
}
