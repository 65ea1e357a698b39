import http from 'node:http';
import { listenOnLoopback } from './listen.js';

/**
 * An OpenAI-compatible upstream standing in for what the tiny test model cannot do: it calls tools
 * and reports token log-probabilities, in OpenAI's exact streamed chat-completions format. It keeps
 * every request body it received, so tests can check what the gateway sent (and did not send).
 */

export const STANDIN_MODEL = 'tool-model';
export const ANSWER = ['It is', ' sunny', ' in Paris.'];

export interface OpenAiStandIn {
  url: string;
  bodies: Record<string, unknown>[];
  close(): Promise<void>;
}

function logprobsOf(token: string, top: number) {
  const alternatives = Array.from({ length: top }, (_, i) => ({ token: i === 0 ? token : `${token}~${i}`, logprob: -0.1 * (i + 1), bytes: null }));
  return { content: [{ token, logprob: -0.1, bytes: [...Buffer.from(token)], top_logprobs: alternatives }] };
}

export async function startOpenAiStandIn(): Promise<OpenAiStandIn> {
  const bodies: Record<string, unknown>[] = [];
  const server = http.createServer(async (request, response) => {
    const url = new URL(request.url ?? '/', 'http://x');
    if (request.method === 'GET' && url.pathname === '/v1/models') {
      response.writeHead(200, { 'content-type': 'application/json' });
      return void response.end(JSON.stringify({ object: 'list', data: [{ id: STANDIN_MODEL, object: 'model', created: 1700000000, owned_by: 'standin' }] }));
    }
    if (request.method !== 'POST' || url.pathname !== '/v1/chat/completions') {
      response.writeHead(404, { 'content-type': 'application/json' });
      return void response.end(JSON.stringify({ error: { message: 'not found' } }));
    }
    let raw = '';
    for await (const chunk of request) raw += chunk;
    const body = JSON.parse(raw) as Record<string, unknown>;
    bodies.push(body);
    const messages = body.messages as { role: string }[];
    const wantsCall = Array.isArray(body.tools) && body.tools.length > 0 && messages.at(-1)?.role !== 'tool';
    const top = typeof body.top_logprobs === 'number' ? body.top_logprobs : 0;
    const frame = (delta: Record<string, unknown>, finish: string | null, extra: Record<string, unknown> = {}) =>
      `data: ${JSON.stringify({ id: 'chatcmpl-standin', object: 'chat.completion.chunk', created: 1, model: STANDIN_MODEL, choices: [{ index: 0, delta, finish_reason: finish, ...extra }] })}\n\n`;
    response.writeHead(200, { 'content-type': 'text/event-stream' });
    if (wantsCall) {
      const name = ((body.tools as { function: { name: string } }[])[0]!).function.name;
      response.write(frame({ role: 'assistant', tool_calls: [{ index: 0, id: 'call_standin1', type: 'function', function: { name, arguments: '' } }] }, null));
      response.write(frame({ tool_calls: [{ index: 0, function: { arguments: '{"city":' } }] }, null));
      response.write(frame({ tool_calls: [{ index: 0, function: { arguments: '"Paris"}' } }] }, null));
      response.write(frame({}, 'tool_calls'));
    } else {
      for (const token of ANSWER) {
        response.write(frame({ content: token }, null, body.logprobs === true ? { logprobs: logprobsOf(token, top) } : {}));
      }
      response.write(frame({}, 'stop'));
    }
    response.write(`data: ${JSON.stringify({ id: 'chatcmpl-standin', object: 'chat.completion.chunk', created: 1, model: STANDIN_MODEL, choices: [], usage: { prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 } })}\n\n`);
    response.end('data: [DONE]\n\n');
  });
  const { url, close } = await listenOnLoopback(server);
  return { url, bodies, close };
}
