import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import type net from 'node:net';
import readline from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import Fastify from 'fastify';
import { Pool, type Dispatcher } from 'undici';

/**
 * A minimal model server speaking Ollama's and OpenAI's wire formats (streamed and not), answering at
 * once with a fixed short text. It is the upstream of the gateway-overhead benchmark (the way
 * TensorZero, Bifrost and LiteLLM measure theirs: any time added is the gateway's), and in tests it
 * plays an Ollama host that fails, stalls or is slow, which a real server cannot be made to do.
 *
 * Run alone: `npx tsx bench/mock-upstream.ts [model ...]` starts one server per model name (default
 * one serving `mock:latest`) and prints a JSON line `{"model", "url"}` for each; `proxy=URL` starts
 * a bare pass-through proxy to URL instead (see startBareProxy), `floor=URL` the gateway's own stack
 * with no gateway in it (see startStackFloor), `rawfloor=URL` that stack without Fastify (see
 * startRawStackFloor).
 */

export interface MockUpstreamOptions {
  /** Models it lists and serves (Ollama `name:tag`), default `mock:latest`. */
  models?: string[];
  /** The text pieces of every answer, one per streamed chunk. */
  tokens?: string[];
  /**
   * Models that reason, as Ollama's qwen3 or deepseek-r1 do: /api/show reports `thinking` for them,
   * and a request with `think` (or `reasoning_effort` on /v1) gets THOUGHTS before the answer.
   */
  thinkers?: string[];
  /** Pause before each streamed chunk; 0 writes the whole answer at once. */
  tokenDelayMs?: number;
  /** `fail`: generation, embedding and deletion answer 500; `stall`: they never answer. Listing always works. */
  mode?: 'ok' | 'fail' | 'stall';
  port?: number;
}

export interface MockUpstream {
  url: string;
  /** Generation and embedding requests received, by path. */
  hits: Map<string, number>;
  /** The last body received, by path: what the gateway sent. */
  lastBodies: Map<string, Record<string, unknown>>;
  /** Streamed answers whose connection closed before their end: how a gateway tells a server to stop. */
  readonly cut: number;
  setMode(mode: 'ok' | 'fail' | 'stall'): void;
  close(): Promise<void>;
}

const DEFAULT_TOKENS = ['Once', ' upon', ' a', ' time', ',', ' there', ' was', ' a', ' little', ' girl', '.'];
/** What a thinking model thinks, in streamed pieces, before it answers. */
export const THOUGHTS = ['The user', ' wants', ' a story.'];

function readJson(request: http.IncomingMessage): Promise<Record<string, unknown>> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      try {
        resolve(chunks.length ? (JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>) : {});
      } catch {
        resolve({});
      }
    });
  });
}

export async function startMockUpstream(options: MockUpstreamOptions = {}): Promise<MockUpstream> {
  const models = options.models ?? ['mock:latest'];
  const tokens = options.tokens ?? DEFAULT_TOKENS;
  const text = tokens.join('');
  const delay = options.tokenDelayMs ?? 0;
  let mode = options.mode ?? 'ok';
  const hits = new Map<string, number>();
  const lastBodies = new Map<string, Record<string, unknown>>();
  const sockets = new Set<net.Socket>();
  let cut = 0;

  const json = (response: http.ServerResponse, status: number, body: unknown) => {
    const payload = JSON.stringify(body);
    response.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(payload) });
    response.end(payload);
  };
  /** Writes the chunks at once (one write) or one by one with a pause between them. */
  const stream = async (response: http.ServerResponse, contentType: string, chunks: string[]) => {
    response.writeHead(200, { 'content-type': contentType });
    response.once('close', () => response.writableFinished || cut++);
    if (delay === 0) return void response.end(chunks.join(''));
    for (const chunk of chunks) {
      if (response.destroyed) return;
      await new Promise((resolve) => setTimeout(resolve, delay));
      response.write(chunk);
    }
    response.end();
  };
  const known = (model: unknown) => typeof model === 'string' && (models.includes(model) || models.includes(`${model}:latest`));
  const stats = { total_duration: 1_000_000, load_duration: 100_000, prompt_eval_count: 5, prompt_eval_duration: 200_000, eval_count: tokens.length, eval_duration: 700_000 };
  const usage = { prompt_tokens: 5, completion_tokens: tokens.length, total_tokens: 5 + tokens.length };
  const created = () => Math.floor(Date.now() / 1000);

  const server = http.createServer((request, response) => {
    void (async () => {
      const path = (request.url ?? '/').split('?')[0]!;
      const body = request.method === 'POST' || request.method === 'DELETE' ? await readJson(request) : {};
      const generation = ['/api/chat', '/api/generate', '/api/embed', '/api/delete', '/v1/chat/completions', '/v1/completions', '/v1/embeddings'].includes(path);
      // A broken server fails its health check as well, so a replica marked down stays down until its
      // mode is set back to 'ok' (however long a loaded machine takes between two requests).
      if (path === '/api/version' && mode !== 'ok') {
        if (mode === 'stall') return;
        return json(response, 500, { error: 'mock failure' });
      }
      if (generation) {
        hits.set(path, (hits.get(path) ?? 0) + 1);
        lastBodies.set(path, body);
        if (mode === 'stall') return; // holds the connection open and never answers
        if (mode === 'fail') return json(response, 500, path.startsWith('/v1') ? { error: { message: 'mock failure', type: 'server_error', code: null } } : { error: 'mock failure' });
        if (!known(body.model)) {
          const message = path === '/api/delete' ? `model '${String(body.model)}' not found` : `model "${String(body.model)}" not found, try pulling it first`;
          return json(response, 404, path.startsWith('/v1') ? { error: { message, type: 'invalid_request_error', code: 'model_not_found' } } : { error: message });
        }
      }
      const model = String(body.model);
      const now = new Date().toISOString();
      const thinks = (options.thinkers ?? []).some((name) => name === model || name === `${model}:latest`);
      const thinking = thinks && (body.think === true || typeof body.think === 'string' || typeof body.reasoning_effort === 'string');
      switch (path) {
        case '/api/version':
          return json(response, 200, { version: '0.12.0' });
        case '/api/tags':
        case '/api/ps':
          return json(response, 200, {
            models: (path === '/api/ps' ? [] : models).map((name) => ({
              name,
              model: name,
              modified_at: now,
              size: 1_185_376,
              digest: 'a'.repeat(64),
              details: { parent_model: '', format: 'gguf', family: 'llama', families: ['llama'], parameter_size: '260K', quantization_level: 'F32' },
            })),
          });
        case '/api/show':
          if (!thinks) return json(response, 404, { error: `model '${model}' not found` });
          return json(response, 200, { modelfile: '', parameters: '', template: '', details: {}, model_info: {}, capabilities: ['completion', 'thinking'] });
        case '/api/chat':
        case '/api/generate': {
          const chat = path === '/api/chat';
          const piece = (content: string, thought?: string) =>
            chat ? { message: { role: 'assistant', content, ...(thought === undefined ? {} : { thinking: thought }) } } : { response: content, ...(thought === undefined ? {} : { thinking: thought }) };
          const final = { model, created_at: now, ...piece(''), done: true, done_reason: 'stop', ...(path === '/api/generate' ? { context: [1, 2, 3] } : {}), ...stats };
          if (body.stream === false) return json(response, 200, { ...final, ...piece(text, thinking ? THOUGHTS.join('') : undefined) });
          const thoughtLines = thinking ? THOUGHTS.map((t) => JSON.stringify({ model, created_at: now, ...piece('', t), done: false }) + '\n') : [];
          const lines = tokens.map((t) => JSON.stringify({ model, created_at: now, ...piece(t), done: false }) + '\n');
          return stream(response, 'application/x-ndjson', [...thoughtLines, ...lines, JSON.stringify(final) + '\n']);
        }
        case '/api/delete':
          response.writeHead(200).end();
          return;
        case '/api/embed': {
          const inputs = Array.isArray(body.input) ? body.input : [body.input];
          return json(response, 200, { model, embeddings: inputs.map(() => [0.6, 0.8]), total_duration: 100_000, load_duration: 0, prompt_eval_count: inputs.length });
        }
        case '/v1/models':
          return json(response, 200, { object: 'list', data: models.map((id) => ({ id, object: 'model', created: created(), owned_by: 'library' })) });
        case '/v1/chat/completions':
        case '/v1/completions': {
          const chat = path === '/v1/chat/completions';
          // The server validates what only it reads, as OpenAI's does.
          if (chat && !Array.isArray(body.messages)) return json(response, 400, { error: { message: "Invalid type for 'messages': expected an array", type: 'invalid_request_error', param: 'messages', code: 'invalid_type' } });
          const base = { id: 'chatcmpl-mock', object: chat ? 'chat.completion.chunk' : 'text_completion', created: created(), model, system_fingerprint: 'fp_mock' };
          const choice = (content: string | undefined, finish: string | null) =>
            chat ? { index: 0, delta: content === undefined ? {} : { role: 'assistant', content }, finish_reason: finish } : { index: 0, text: content ?? '', logprobs: null, finish_reason: finish };
          if (body.stream !== true) {
            const message = chat ? { index: 0, message: { role: 'assistant', content: text }, finish_reason: 'stop' } : { index: 0, text, logprobs: null, finish_reason: 'stop' };
            return json(response, 200, { ...base, object: chat ? 'chat.completion' : 'text_completion', choices: [message], usage });
          }
          const thoughtFrames = chat && thinking ? THOUGHTS.map((t) => `data: ${JSON.stringify({ ...base, choices: [{ index: 0, delta: { reasoning: t }, finish_reason: null }] })}\n\n`) : [];
          const frames = [...thoughtFrames, ...tokens.map((t) => `data: ${JSON.stringify({ ...base, choices: [choice(t, null)] })}\n\n`)];
          frames.push(`data: ${JSON.stringify({ ...base, choices: [choice(undefined, 'stop')] })}\n\n`);
          const includeUsage = (body.stream_options as { include_usage?: boolean } | undefined)?.include_usage === true;
          if (includeUsage) frames.push(`data: ${JSON.stringify({ ...base, choices: [], usage })}\n\n`);
          frames.push('data: [DONE]\n\n');
          return stream(response, 'text/event-stream', frames);
        }
        case '/v1/embeddings': {
          const inputs = Array.isArray(body.input) ? body.input : [body.input];
          return json(response, 200, { object: 'list', model, data: inputs.map((_, index) => ({ object: 'embedding', embedding: [0.6, 0.8], index })), usage: { prompt_tokens: inputs.length, total_tokens: inputs.length } });
        }
        default:
          return json(response, 404, { error: 'not found' });
      }
    })();
  });
  server.keepAliveTimeout = 60_000;
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    hits,
    lastBodies,
    get cut() {
      return cut;
    },
    setMode: (next) => (mode = next),
    close: () =>
      new Promise<void>((resolve) => {
        // Stalled requests would hold close() forever: their sockets are cut.
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/**
 * The least any Node gateway can do: forward the request to `target` over a keep-alive agent and pipe
 * the answer back, nothing else. The benchmark puts it beside our gateway as the floor of one extra
 * process hop on the machine at hand.
 */
async function startBareProxy(target: string): Promise<{ url: string; close(): Promise<void> }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 512 });
  const server = http.createServer((request, response) => {
    const upstream = http.request(`${target}${request.url}`, { method: request.method, headers: request.headers, agent }, (answer) => {
      response.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(response);
    });
    upstream.on('error', () => response.destroy());
    request.pipe(upstream);
  });
  return listening(server);
}

/** A node:http server of the benchmark's, listening on a free loopback port, keeping connections alive. */
async function listening(server: http.Server): Promise<{ url: string; close(): Promise<void> }> {
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return { url: `http://127.0.0.1:${port}`, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

/** What both stack floors do with a request: its parsed body written on through an undici pool. */
async function forwardThrough(pool: Pool, body: unknown): Promise<{ status: number; type: string; body: Dispatcher.ResponseData['body'] }> {
  const answer = await pool.request({ path: '/v1/chat/completions', method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: answer.statusCode, type: String(answer.headers['content-type'] ?? 'application/json'), body: answer.body };
}

/**
 * The gateway's stack at its least: a Fastify route that parses the JSON body (as the gateway must, to
 * read the model), writes it on through an undici pool and sends the answer back (a stream as it
 * comes, a JSON body whole), with no logger and no hook. Beside the bare proxy it shows what the
 * framework and the HTTP client cost; the rest of what the gateway costs is its own work.
 */
async function startStackFloor(target: string): Promise<{ url: string; close(): Promise<void> }> {
  const origin = new URL(target).origin;
  const pool = new Pool(origin, { connections: 256, bodyTimeout: 0 });
  const app = Fastify({ logger: false });
  app.post('/v1/chat/completions', async (request, reply) => {
    const answer = await forwardThrough(pool, request.body);
    reply.code(answer.status).header('content-type', answer.type);
    if (answer.type.startsWith('text/event-stream')) return reply.send(answer.body);
    return reply.send(Buffer.from(await answer.body.arrayBuffer()));
  });
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  return {
    url,
    close: async () => {
      await app.close();
      await pool.destroy();
    },
  };
}

/**
 * The stack floor without the framework: the same forwarding as startStackFloor from a bare node:http
 * server. Beside the stack floor it shows what Fastify itself costs a request, the part of the
 * gateway that only taking the busiest routes off the framework could save.
 */
async function startRawStackFloor(target: string): Promise<{ url: string; close(): Promise<void> }> {
  const pool = new Pool(new URL(target).origin, { connections: 256, bodyTimeout: 0 });
  const server = http.createServer((request, response) => {
    void (async () => {
      const answer = await forwardThrough(pool, await readJson(request));
      if (answer.type.startsWith('text/event-stream')) {
        response.writeHead(answer.status, { 'content-type': answer.type });
        return void answer.body.pipe(response);
      }
      const whole = Buffer.from(await answer.body.arrayBuffer());
      response.writeHead(answer.status, { 'content-type': answer.type, 'content-length': whole.length }).end(whole);
    })().catch(() => response.destroy());
  });
  const listener = await listening(server);
  return {
    url: listener.url,
    close: async () => {
      await listener.close();
      await pool.destroy();
    },
  };
}

/**
 * Runs this file in a process of its own with `args` (see the command below); resolves with the
 * process and the URL of each argument, once every one listens.
 */
export async function spawnMockProcess(args: string[]): Promise<{ child: ChildProcess; urls: Record<string, string> }> {
  // Started from this file's folder, so that `tsx` is found in the project's modules wherever the caller runs.
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), ...args], {
    cwd: fileURLToPath(new URL('.', import.meta.url)),
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const urls: Record<string, string> = {};
  for await (const line of readline.createInterface({ input: child.stdout! })) {
    const { model, url } = JSON.parse(line) as { model: string; url: string };
    urls[model] = url;
    if (Object.keys(urls).length === args.length) break;
  }
  return { child, urls };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  // Arguments: model names (one mock server each), `proxy=URL` for a bare proxy in front of URL,
  // `floor=URL` for the stack's floor in front of it, `rawfloor=URL` for that floor without Fastify.
  const proxies: Record<string, (target: string) => Promise<{ url: string }>> = { proxy: startBareProxy, floor: startStackFloor, rawfloor: startRawStackFloor };
  const args = process.argv.slice(2);
  for (const arg of args.length ? args : ['mock:latest']) {
    const [kind, target] = arg.split(/=(.*)/s);
    const start = target === undefined ? undefined : proxies[kind!];
    if (start) {
      const proxy = await start(target!);
      console.log(JSON.stringify({ model: arg, url: proxy.url }));
      continue;
    }
    const mock = await startMockUpstream({ models: [arg] });
    console.log(JSON.stringify({ model: arg, url: mock.url }));
  }
}
