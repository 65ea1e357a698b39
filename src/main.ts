import type { FastifyBaseLogger } from 'fastify';
import type { AddressInfo } from 'node:net';
import { loadConfig } from './config.js';
import { pino } from 'pino';
import { buildServer } from './app.js';
import { createBackends } from './providers/index.js';
import { backendsLine, databaseLine, modelsLine, openLine, openUrl } from './start-report.js';

/**
 * A server that cannot start (a database out of reach, a port in use) says why in one line and exits
 * with 1: the reason is all an operator needs, and a stack trace would bury it.
 */
function cannotStart(error: unknown): never {
  const reason = error instanceof Error ? error.message || error.name : String(error);
  process.stderr.write(`ollama-arena cannot start: ${reason}\n`);
  process.exit(1);
}

/** Starts the server with the settings of the environment and stops it cleanly on SIGINT/SIGTERM. */
const config = loadConfig();
// The server's own logger exists only once it is built; the backends log through one of the same level.
const backends = createBackends(config, pino({ level: config.logLevel }).child({ component: 'backends' }));
const { app, services } = await buildServer({ config, backends }).catch(cannotStart);

let closing = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (closing) process.exit(1); // a second signal: stop waiting
    closing = true;
    app.log.info({ signal }, 'shutting down: finishing streams and unloading models');
    app.close().then(
      () => process.exit(0),
      (error: unknown) => {
        app.log.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  });
}

await app.listen({ port: config.port, host: config.host }).catch(cannotStart);

// What this start serves, in one line each, once it is already answering: the models found and the
// model servers probed are reported after listening, so that neither delays the health check.
const models = await services.engine.listModels().catch(() => []);
app.log.info({ modelsDir: config.modelsDir, models: models.length }, modelsLine(config.modelsDir, models.length));
app.log.info(await backendsLine([services.engine, ...backends]));
app.log.info(databaseLine(config));
const { port } = app.server.address() as AddressInfo;
app.log.info({ url: openUrl(config.host, port) }, openLine(config.host, port));
// Log lines are written in batches; the start's own are wanted at once.
(app.log as FastifyBaseLogger & { flush(): void }).flush();
