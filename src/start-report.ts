import path from 'node:path';
import type { Config } from './config.js';
import { providerKind, type ModelProvider } from './providers/provider.js';
import { describeDatabase } from './store/database.js';
import { describeUrl as describeRedis } from './access/shared-events.js';

/**
 * The lines every start logs once the server listens, one readable sentence each, so that whoever
 * started it sees at a glance what it serves: the models directory and what it found there, the model
 * servers it reaches, the database, and the address to open. Passwords never appear (a PostgreSQL or
 * Redis URL is reduced to host, port and database; OpenAI-compatible backends' keys are not in their ids).
 */

/** How long a model server may take to answer its probe before it is reported as not answering. */
const PROBE_MS = 3_000;

export function modelsLine(modelsDir: string, count: number): string {
  return `models directory ${modelsDir}: ${count === 1 ? '1 model' : `${count} models`} found`;
}

export function databaseLine(config: Pick<Config, 'databaseUrl' | 'dataDir' | 'redisUrl'>): string {
  const database = config.databaseUrl ? `PostgreSQL ${describeDatabase(config.databaseUrl)}` : `SQLite ${path.join(config.dataDir, 'arena.db')}`;
  return `database: ${database}${config.redisUrl ? `, shared through Redis ${describeRedis(config.redisUrl)}` : ''}`;
}

/** The address a browser on this machine opens: a server listening on every interface is reached at localhost. */
export function openUrl(host: string, port: number): string {
  const name = listensEverywhere(host) ? 'localhost' : host.includes(':') ? `[${host}]` : host;
  return `http://${name}:${port}/`;
}

export function openLine(host: string, port: number): string {
  return `open ${openUrl(host, port)} in a browser${listensEverywhere(host) ? ' (listening on every interface)' : ''}`;
}

function listensEverywhere(host: string): boolean {
  return host === '0.0.0.0' || host === '::' || host === '';
}

type Reach = 'reachable' | 'unreachable' | 'no answer';

/** How the start log names each kind of provider; a kind not listed is shown as it is. */
const PROVIDER_NAMES: Record<string, string> = { embedded: 'embedded llama.cpp engine', ollama: 'Ollama', openai: 'OpenAI-compatible' };

async function probe(backend: ModelProvider): Promise<Reach> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<Reach>((resolve) => (timer = setTimeout(() => resolve('no answer'), PROBE_MS)));
  const answer = backend.ping().then(
    (alive): Reach => (alive ? 'reachable' : 'unreachable'),
    (): Reach => 'unreachable',
  );
  try {
    return await Promise.race([answer, late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * `backends: embedded llama.cpp; ollama http://host:11434 reachable; ...`. Ollama's default address,
 * tried when OLLAMA_HOSTS is unset, is said to be absent rather than unreachable: nothing is wrong.
 */
export async function backendsLine(backends: ModelProvider[]): Promise<string> {
  const parts = await Promise.all(
    backends.map(async (backend) => {
      if (backend.capabilities?.inProcess) return PROVIDER_NAMES[providerKind(backend)] ?? providerKind(backend);
      const kind = providerKind(backend);
      const [name, url] = [PROVIDER_NAMES[kind] ?? kind, backend.id.slice(kind.length + 1)];
      const reach = await probe(backend);
      // Only a provider tried by default (Ollama's default address) may be absent.
      if (reach !== 'reachable' && backend.absent === true) return `${name} ${url} not running (tried by default; set OLLAMA_HOSTS to choose)`;
      return `${name} ${url} ${reach === 'no answer' ? `not answering within ${PROBE_MS / 1000} s` : reach}`;
    }),
  );
  return `backends: ${parts.join('; ')}`;
}
