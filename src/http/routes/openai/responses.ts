import crypto from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Services } from '../../services.js';
import type { GenerationStats } from '../../../providers/types.js';
import type { ChatMessage, ToolCall } from '../../../domain/chat.js';
import { GenerationService } from '../../../gateway/generation.js';
import { isRecord } from '../../../shared/is-record.js';
import type { OpenSession } from '../../../access/sessions.js';
import { generateFitting } from '../../../gateway/context-fit.js';
import { badRequest } from '../../../gateway/errors.js';
import { clientGone, sendStream } from '../../streaming.js';
import { primed, rejectImages, thinkOption } from '../single-model.js';
import { parseResponsesRequest, type ResponsesRequest } from './responses-input.js';

/**
 * OpenAI's Responses API (`POST /v1/responses`), what the openai client's `responses.create` and
 * `responses.stream` and Codex-style agents speak. A response's conversation (its input, the
 * conversation it continued and its answer) is kept as a server-side session under the response's
 * id, so `previous_response_id` continues from it without the client resending anything; `store:
 * false` keeps nothing. Instructions apply to one response only, as OpenAI applies them.
 */

const newId = (prefix: string) => `${prefix}_${crypto.randomBytes(24).toString('hex')}`;

interface Output {
  text: string;
  toolCalls?: ToolCall[];
  stats?: GenerationStats;
}

function messageItem(id: string, text: string, status: 'in_progress' | 'completed') {
  return {
    type: 'message',
    id,
    status,
    role: 'assistant',
    content: status === 'completed' ? [{ type: 'output_text', text, annotations: [], logprobs: [] }] : [],
  };
}

function functionCallItem(call: ToolCall, status: 'in_progress' | 'completed') {
  return {
    type: 'function_call',
    id: `fc_${call.id!.replace(/^call_/, '')}`,
    call_id: call.id!,
    name: call.function.name,
    arguments: status === 'completed' ? JSON.stringify(call.function.arguments) : '',
    status,
  };
}

/** Tool calls with the ids the client will answer to (`call_id`). */
function withIds(calls: ToolCall[] | undefined): ToolCall[] | undefined {
  return calls?.map((call) => ({ ...call, id: call.id ?? newId('call') }));
}

/** The response object, in progress (no output yet) or finished. */
function responseObject(id: string, createdAt: number, model: string, parsed: ResponsesRequest, messageId: string, output?: Output) {
  const finished = output?.stats !== undefined;
  const incomplete = finished && output.stats!.doneReason === 'length';
  const items: Record<string, unknown>[] = [];
  if (output && (output.text !== '' || !output.toolCalls?.length)) items.push(messageItem(messageId, output.text, 'completed'));
  for (const call of output?.toolCalls ?? []) items.push(functionCallItem(call, 'completed'));
  const stats = output?.stats;
  return {
    id,
    object: 'response',
    created_at: createdAt,
    status: !finished ? 'in_progress' : incomplete ? 'incomplete' : 'completed',
    error: null,
    incomplete_details: incomplete ? { reason: 'max_output_tokens' } : null,
    instructions: parsed.instructions ?? null,
    max_output_tokens: parsed.maxOutputTokens ?? null,
    model,
    output: finished ? items : [],
    parallel_tool_calls: true,
    previous_response_id: parsed.previousResponseId ?? null,
    reasoning: { effort: null, summary: null },
    store: parsed.store,
    temperature: parsed.options.temperature ?? null,
    text: { format: { type: parsed.format === undefined ? 'text' : parsed.format === 'json' ? 'json_object' : 'json_schema' } },
    tool_choice: parsed.toolChoice ?? 'auto',
    tools: parsed.rawTools,
    top_p: parsed.options.top_p ?? null,
    truncation: 'disabled',
    usage: stats
      ? {
          input_tokens: stats.promptTokens,
          input_tokens_details: { cached_tokens: 0 },
          output_tokens: stats.completionTokens,
          output_tokens_details: { reasoning_tokens: 0 },
          total_tokens: stats.promptTokens + stats.completionTokens,
        }
      : null,
    user: null,
    metadata: {},
  };
}

/** One Server-Sent Event as OpenAI sends them: the event name on its own line, then the data. */
function event(type: string, sequence: number, data: Record<string, unknown>): string {
  return `event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: sequence, ...data })}\n\n`;
}

async function createResponse(services: Services, request: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  if (!isRecord(request.body)) throw badRequest('request body must be a JSON object');
  let parsed = parseResponsesRequest(request.body);
  const model = await services.router.resolve(parsed.model);
  rejectImages(model, parsed.messages.some((m) => m.images !== undefined));
  const think = thinkOption(model, parsed.think);
  const previous: OpenSession = parsed.previousResponseId
    ? await services.sessions.open(parsed.previousResponseId, request.principal)
    : { id: '', history: [], isNew: true };
  // Function outputs may answer calls of the previous response: read again knowing those calls.
  if (previous.history.length > 0) parsed = parseResponsesRequest(request.body, previous.history);
  const id = newId('resp');
  const messageId = newId('msg');
  const createdAt = Math.floor(Date.now() / 1000);
  const conversation = [...previous.history, ...parsed.messages];
  const system: ChatMessage[] = parsed.instructions ? [{ role: 'system', content: parsed.instructions }] : [];
  const signal = clientGone(request, reply);
  const start = () =>
    generateFitting([...system, ...conversation], (fitting) =>
      services.generation.chat(
        { model: model.name, messages: fitting, options: parsed.options, format: parsed.format, tools: parsed.tools, toolChoice: parsed.toolChoice, think, signal },
        request.usage,
      ),
    );
  const remember = async (output: Output) => {
    if (!parsed.store) return;
    const answer: ChatMessage = { role: 'assistant', content: output.text, ...(output.toolCalls?.length ? { tool_calls: output.toolCalls } : {}) };
    await services.sessions.record({ id, history: [], isNew: true }, request.principal, model.name, [...conversation, answer]);
  };

  if (!parsed.stream) {
    const result = await GenerationService.collect(start());
    const output = { text: result.text, toolCalls: withIds(result.stats.toolCalls), stats: result.stats };
    await remember(output);
    return responseObject(id, createdAt, model.name, parsed, messageId, output);
  }

  const events = await primed(start(), signal);
  async function* frames(): AsyncGenerator<string> {
    let sequence = 0;
    const send = (type: string, data: Record<string, unknown>) => event(type, sequence++, data);
    yield send('response.created', { response: responseObject(id, createdAt, model.name, parsed, messageId) });
    yield send('response.in_progress', { response: responseObject(id, createdAt, model.name, parsed, messageId) });
    let text = '';
    let opened = false;
    const part = (t: string) => ({ type: 'output_text', text: t, annotations: [], logprobs: [] });
    const at = { item_id: messageId, output_index: 0, content_index: 0 };
    try {
      for await (const piece of events) {
        if (piece.type === 'thinking') continue;
        if (piece.type === 'token') {
          if (!opened) {
            opened = true;
            yield send('response.output_item.added', { output_index: 0, item: messageItem(messageId, '', 'in_progress') });
            yield send('response.content_part.added', { ...at, part: part('') });
          }
          text += piece.text;
          yield send('response.output_text.delta', { ...at, delta: piece.text, logprobs: [] });
          continue;
        }
        const { stats } = piece;
        if (stats.doneReason === 'abort') return;
        const toolCalls = withIds(stats.toolCalls);
        let index = 0;
        if (opened || !toolCalls?.length) {
          if (!opened) {
            yield send('response.output_item.added', { output_index: 0, item: messageItem(messageId, '', 'in_progress') });
            yield send('response.content_part.added', { ...at, part: part('') });
          }
          yield send('response.output_text.done', { ...at, text, logprobs: [] });
          yield send('response.content_part.done', { ...at, part: part(text) });
          yield send('response.output_item.done', { output_index: 0, item: messageItem(messageId, text, 'completed') });
          index = 1;
        }
        for (const call of toolCalls ?? []) {
          const item = functionCallItem(call, 'completed');
          yield send('response.output_item.added', { output_index: index, item: { ...item, arguments: '', status: 'in_progress' } });
          yield send('response.function_call_arguments.delta', { item_id: item.id, output_index: index, delta: item.arguments });
          yield send('response.function_call_arguments.done', { item_id: item.id, output_index: index, arguments: item.arguments });
          yield send('response.output_item.done', { output_index: index, item });
          index++;
        }
        const output = { text, toolCalls, stats };
        await remember(output);
        yield send('response.completed', { response: responseObject(id, createdAt, model.name, parsed, messageId, output) });
      }
    } catch (error) {
      request.log.warn({ err: error }, 'response failed mid-stream');
      yield send('error', { code: 'server_error', message: (error as Error).message, param: null });
    }
  }
  return sendStream(reply, 'text/event-stream', frames());
}

export function openAiResponsesRoutes(services: Services) {
  return async function (app: FastifyInstance): Promise<void> {
    app.post('/v1/responses', {
      config: { access: 'model' },
      schema: { tags: ['openai'], summary: 'Create a model response (OpenAI Responses API), streamed as response.* events' },
    }, (request, reply) => createResponse(services, request, reply));
  };
}
