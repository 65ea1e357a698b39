import type { OutputFormat, ThinkOption } from '../../../providers/types.js';
import type { ChatMessage, ToolCall, ToolDefinition } from '../../../domain/chat.js';
import { parseOpenAiOptions } from '../../../gateway/options.js';
import { isRecord } from '../../../shared/is-record.js';
import { applyToolChoice } from '../../../gateway/tools.js';
import type { GenerationOptions } from '../../../domain/chat.js';
import { badRequest } from '../../../gateway/errors.js';
import { parseReasoningEffort } from '../single-model.js';

/**
 * The request side of OpenAI's Responses API (`POST /v1/responses`): `input` as a string or as items
 * (messages, function calls and their outputs), `instructions`, function tools in the Responses
 * shape, and the sampling settings, turned into what a chat generation takes.
 */

export interface ResponsesRequest {
  model: string;
  stream: boolean;
  /** The input as messages; the previous response's conversation goes before them. */
  messages: ChatMessage[];
  instructions?: string;
  options: GenerationOptions;
  format?: OutputFormat;
  tools?: ToolDefinition[];
  /** The tools as the client sent them, echoed in the response object. */
  rawTools: unknown[];
  toolChoice?: 'required';
  think?: ThinkOption;
  previousResponseId?: string;
  store: boolean;
  maxOutputTokens?: number;
}

const ROLES = new Set(['system', 'developer', 'user', 'assistant']);

function text(value: unknown, where: string): { content: string; images: string[] } {
  if (typeof value === 'string') return { content: value, images: [] };
  if (!Array.isArray(value)) throw badRequest(`${where}.content must be a string or an array of content parts`);
  let content = '';
  const images: string[] = [];
  value.forEach((part, index) => {
    const at = `${where}.content[${index}]`;
    if (!isRecord(part)) throw badRequest(`${at} must be an object`);
    if ((part.type === 'input_text' || part.type === 'output_text' || part.type === 'text') && typeof part.text === 'string') content += part.text;
    else if (part.type === 'input_image' && typeof part.image_url === 'string') {
      const match = /^data:[^;,]*;base64,(.*)$/s.exec(part.image_url);
      if (!match) throw badRequest(`${at}: only base64 data: URLs are accepted for images`);
      images.push(match[1]!);
    } else throw badRequest(`${at}: content part type '${String(part.type)}' is not supported (input_text, output_text and input_image are)`);
  });
  return { content, images };
}

function parseArguments(value: unknown, where: string): Record<string, unknown> {
  if (typeof value !== 'string') throw badRequest(`${where}.arguments must be a JSON string`);
  try {
    const parsed: unknown = value.trim() === '' ? {} : JSON.parse(value);
    if (isRecord(parsed)) return parsed;
  } catch {
    // reported below
  }
  throw badRequest(`${where}.arguments must be a JSON object string`);
}

/**
 * `input` items as chat messages: function calls join the assistant turn they belong to, and a
 * function's output is named after its call, found here or among `earlier` messages (the conversation
 * `previous_response_id` continues).
 */
function parseInput(value: unknown, earlier: ChatMessage[] = []): ChatMessage[] {
  if (typeof value === 'string') return [{ role: 'user', content: value }];
  if (!Array.isArray(value)) throw badRequest('input must be a string or an array of input items');
  const messages: ChatMessage[] = [];
  const toolNames = new Map<string, string>();
  for (const message of earlier) for (const call of message.tool_calls ?? []) if (call.id) toolNames.set(call.id, call.function.name);
  value.forEach((item, index) => {
    const where = `input[${index}]`;
    if (!isRecord(item)) throw badRequest(`${where} must be an object`);
    const type = item.type ?? 'message';
    if (type === 'message') {
      if (typeof item.role !== 'string' || !ROLES.has(item.role)) throw badRequest(`${where}.role must be user, assistant, system or developer`);
      const { content, images } = text(item.content, where);
      const role = item.role === 'developer' ? 'system' : (item.role as ChatMessage['role']);
      messages.push({ role, content, ...(images.length ? { images } : {}) });
    } else if (type === 'function_call') {
      if (typeof item.name !== 'string' || typeof item.call_id !== 'string') throw badRequest(`${where} must have a name and a call_id`);
      const call: ToolCall = { id: item.call_id, function: { name: item.name, arguments: parseArguments(item.arguments, where) } };
      toolNames.set(item.call_id, item.name);
      const last = messages.at(-1);
      if (last?.role === 'assistant' && last.tool_calls) last.tool_calls.push(call);
      else messages.push({ role: 'assistant', content: '', tool_calls: [call] });
    } else if (type === 'function_call_output') {
      if (typeof item.call_id !== 'string') throw badRequest(`${where}.call_id must be a string`);
      const output = typeof item.output === 'string' ? item.output : JSON.stringify(item.output ?? '');
      const name = toolNames.get(item.call_id);
      messages.push({ role: 'tool', content: output, ...(name ? { tool_name: name } : {}) });
    } else if (type === 'reasoning') {
      // A reasoning model's earlier thoughts: not part of the prompt, as Ollama leaves them out too.
    } else {
      throw badRequest(`${where}: input item type '${String(type)}' is not supported (message, function_call, function_call_output are)`);
    }
  });
  return messages;
}

/** Responses tools are flat (`{type, name, parameters}`); only function tools exist here. */
function parseResponsesTools(value: unknown): ToolDefinition[] | undefined {
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value)) throw badRequest('tools must be an array');
  return value.map((tool, index) => {
    if (!isRecord(tool) || tool.type !== 'function' || typeof tool.name !== 'string' || tool.name === '') {
      throw badRequest(`tools[${index}] must be a function tool {"type": "function", "name": ...} (built-in tools are not available here)`);
    }
    if (tool.parameters !== undefined && tool.parameters !== null && !isRecord(tool.parameters)) throw badRequest(`tools[${index}].parameters must be a JSON schema object`);
    return {
      type: 'function',
      function: {
        name: tool.name,
        description: typeof tool.description === 'string' ? tool.description : undefined,
        parameters: isRecord(tool.parameters) ? tool.parameters : undefined,
      },
    };
  });
}

/** `tool_choice` in the Responses shape (`{"type": "function", "name": ...}`) as chat completions take it. */
function toolChoiceOf(value: unknown): unknown {
  if (isRecord(value) && value.type === 'function' && typeof value.name === 'string') return { type: 'function', function: { name: value.name } };
  return value;
}

/** `text.format`: text, json_object, or json_schema with the schema beside the type. */
function formatOf(value: unknown): OutputFormat | undefined {
  if (value === undefined || value === null) return undefined;
  if (!isRecord(value) || !(value.format === undefined || isRecord(value.format))) throw badRequest('text must be an object with a format object');
  const format = value.format as Record<string, unknown> | undefined;
  if (!format || format.type === 'text') return undefined;
  if (format.type === 'json_object') return 'json';
  if (format.type === 'json_schema' && isRecord(format.schema)) return format.schema;
  throw badRequest('text.format.type must be text, json_object or json_schema (with a schema)');
}

export function parseResponsesRequest(body: Record<string, unknown>, earlier: ChatMessage[] = []): ResponsesRequest {
  if (typeof body.model !== 'string' || body.model === '') throw badRequest('you must provide a model parameter');
  const stream = body.stream ?? false;
  if (typeof stream !== 'boolean') throw badRequest('stream must be a boolean');
  const store = body.store ?? true;
  if (typeof store !== 'boolean') throw badRequest('store must be a boolean');
  if (body.instructions !== undefined && body.instructions !== null && typeof body.instructions !== 'string') throw badRequest('instructions must be a string');
  const instructions = (body.instructions as string | null | undefined) ?? undefined;
  const previous = body.previous_response_id;
  if (previous !== undefined && previous !== null && typeof previous !== 'string') throw badRequest('previous_response_id must be a string');
  const input = parseInput(body.input ?? [], earlier);
  if (input.length === 0) throw badRequest('input must not be empty');
  const { max_output_tokens: maxOutputTokens, temperature, top_p, seed } = body;
  const options = parseOpenAiOptions({ temperature, top_p, seed, max_tokens: maxOutputTokens });
  const rawTools = Array.isArray(body.tools) ? body.tools : [];
  const { tools, toolChoice } = applyToolChoice(toolChoiceOf(body.tool_choice), parseResponsesTools(body.tools));
  const reasoning = isRecord(body.reasoning) ? body.reasoning.effort : undefined;
  return {
    model: body.model,
    stream,
    messages: input,
    instructions,
    options,
    format: formatOf(body.text),
    tools,
    rawTools,
    toolChoice,
    think: parseReasoningEffort(reasoning),
    previousResponseId: (previous as string | null | undefined) ?? undefined,
    store,
    maxOutputTokens: typeof maxOutputTokens === 'number' ? maxOutputTokens : undefined,
  };
}
