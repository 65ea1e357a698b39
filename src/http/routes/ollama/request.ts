import type { FastifyRequest } from 'fastify';
import type { ThinkOption } from '../../../providers/types.js';
import type { ChatMessage, GenerationOptions } from '../../../domain/chat.js';
import { parseKeepAlive } from '../../../access/keep-alive.js';
import { parseOllamaFormat, parseOllamaOptions } from '../../../gateway/options.js';
import { isRecord } from '../../../shared/is-record.js';
import { parseToolCalls } from '../../../gateway/tools.js';
import { badRequest } from '../../../gateway/errors.js';
import { parseLogprobs, parseThink } from '../single-model.js';

/** Reading an Ollama request body, with Ollama's messages for what is missing or malformed. */

/**
 * An Ollama route's OpenAPI entry. Bodies are validated by the handlers, so that the messages are
 * Ollama's; the schema only documents them.
 */
export const doc = (summary: string, properties: Record<string, unknown> = {}) => ({
  tags: ['ollama'],
  summary,
  ...(Object.keys(properties).length ? { body: { type: 'object', properties } } : {}),
});

export type Body = Record<string, unknown>;

export function bodyOf(request: FastifyRequest): Body {
  if (request.body === undefined || request.body === null) return {};
  if (!isRecord(request.body)) throw badRequest('request body must be a JSON object');
  return request.body;
}

/** `model` (or the older `name`) as Ollama requires it. */
export function modelName(body: Body, required = 'model is required'): string {
  const value = body.model ?? body.name;
  if (value === undefined || value === null || value === '') throw badRequest(required);
  if (typeof value !== 'string' || value.trim() === '') throw badRequest('model must be a non-empty string');
  return value.trim();
}

export function optionalString(body: Body, key: string): string | undefined {
  const value = body[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw badRequest(`${key} must be a string`);
  return value;
}

export function optionalBoolean(body: Body, key: string): boolean | undefined {
  const value = body[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'boolean') throw badRequest(`${key} must be a boolean`);
  return value;
}

export function parseImages(value: unknown, where: string): string[] | undefined {
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value) || value.some((image) => typeof image !== 'string')) {
    throw badRequest(`${where} must be an array of base64-encoded images`);
  }
  return value.length > 0 ? (value as string[]) : undefined;
}

const ROLES = new Set(['system', 'user', 'assistant', 'tool']);

export function parseMessages(value: unknown): ChatMessage[] {
  if (!Array.isArray(value)) throw badRequest('messages must be an array');
  return value.map((raw, index) => {
    const where = `messages[${index}]`;
    if (!isRecord(raw)) throw badRequest(`${where} must be an object`);
    if (typeof raw.role !== 'string' || !ROLES.has(raw.role)) {
      throw badRequest(`${where}.role must be system, user, assistant or tool`);
    }
    if (raw.content !== undefined && raw.content !== null && typeof raw.content !== 'string') {
      throw badRequest(`${where}.content must be a string`);
    }
    const message: ChatMessage = { role: raw.role as ChatMessage['role'], content: (raw.content as string | undefined) ?? '' };
    const images = parseImages(raw.images, `${where}.images`);
    if (images) message.images = images;
    const toolCalls = parseToolCalls(raw.tool_calls, where, 'object');
    if (toolCalls) message.tool_calls = toolCalls;
    const toolName = raw.tool_name ?? raw.name;
    if (typeof toolName === 'string') message.tool_name = toolName;
    return message;
  });
}

/** What chat and generate share: model, stream, keep_alive, options and format. */
export interface Common {
  model: string;
  stream: boolean;
  keepAliveMs?: number;
  options: GenerationOptions;
  format: ReturnType<typeof parseOllamaFormat>;
  /** Checked against the model by `thinkOption` once it is resolved. */
  think: ThinkOption | undefined;
  /** Ollama's `truncate`: false refuses a prompt longer than the context instead of shortening it. */
  truncate: boolean | undefined;
  /** `logprobs: true` with `top_logprobs` alternatives (0 when not given); undefined when not asked. */
  logprobs: number | undefined;
}

export function parseCommon(body: Body): Common {
  const model = modelName(body);
  return {
    model,
    stream: optionalBoolean(body, 'stream') ?? true,
    keepAliveMs: parseKeepAlive(body.keep_alive),
    options: parseOllamaOptions(body.options, { temperature: body.temperature, max_tokens: body.max_tokens }),
    format: parseOllamaFormat(body.format),
    think: parseThink(body.think),
    truncate: optionalBoolean(body, 'truncate'),
    logprobs: parseLogprobs(optionalBoolean(body, 'logprobs'), body.top_logprobs),
  };
}

/** Ollama's `context` from an earlier generate: token ids, sent back to continue from them. */
export function parseContext(value: unknown): number[] | undefined {
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value) || value.some((id) => typeof id !== 'number' || !Number.isInteger(id) || id < 0)) {
    throw badRequest('context must be an array of token ids (non-negative integers)');
  }
  return value.length > 0 ? (value as number[]) : undefined;
}
