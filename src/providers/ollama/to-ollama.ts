import type { ChatRequest, CompletionRequest, EmbedRequest } from '../provider.js';
import type { ChatMessage, GenerationOptions } from '../../domain/chat.js';

/** Ollama's keep_alive: seconds as a number, a Go duration for fractions, a negative number for ever. */
export function keepAliveValue(ms: number | undefined): number | string | undefined {
  if (ms === undefined) return undefined;
  if (ms < 0) return -1;
  return ms % 1000 === 0 ? ms / 1000 : `${Math.round(ms)}ms`;
}

/** Our normalised options in Ollama's `options` object; `extra` holds the rest of Ollama's keys. */
function ollamaOptions(options: GenerationOptions): Record<string, unknown> {
  const { extra, seed, stop, ...known } = options;
  const out: Record<string, unknown> = { ...extra };
  for (const [key, value] of Object.entries(known)) if (value !== undefined) out[key] = value;
  if (seed !== undefined) out.seed = seed;
  if (stop?.length) out.stop = stop;
  return out;
}

/** Ollama's and OpenAI chat's request fields for log-probabilities: none unless asked. */
export function logprobsFields(top: number | undefined): Record<string, unknown> {
  return top === undefined ? {} : { logprobs: true, top_logprobs: top };
}

function toOllamaMessage(message: ChatMessage): Record<string, unknown> {
  return {
    role: message.role,
    content: message.content,
    ...(message.images?.length ? { images: message.images } : {}),
    ...(message.tool_calls?.length ? { tool_calls: message.tool_calls.map((call) => ({ function: call.function })) } : {}),
    ...(message.tool_name ? { tool_name: message.tool_name } : {}),
  };
}

/** The body of a streamed /api/chat. */
export function toOllamaChat(request: ChatRequest): Record<string, unknown> {
  return {
    model: request.model,
    messages: request.messages.map(toOllamaMessage),
    stream: true,
    options: ollamaOptions(request.options),
    format: request.format,
    tools: request.tools?.length ? request.tools : undefined,
    think: request.think,
    truncate: request.truncate,
    ...logprobsFields(request.logprobs),
    keep_alive: keepAliveValue(request.keepAliveMs),
  };
}

/** The body of a streamed /api/generate. */
export function toOllamaGenerate(request: CompletionRequest): Record<string, unknown> {
  return {
    model: request.model,
    prompt: request.prompt,
    raw: request.raw || undefined,
    system: request.system,
    suffix: request.suffix,
    stream: true,
    options: ollamaOptions(request.options),
    format: request.format,
    think: request.think,
    context: request.context,
    truncate: request.truncate,
    ...logprobsFields(request.logprobs),
    keep_alive: keepAliveValue(request.keepAliveMs),
  };
}

/** The body of /api/embed. */
export function toOllamaEmbed(request: EmbedRequest): Record<string, unknown> {
  return { model: request.model, input: request.input, truncate: request.truncate, keep_alive: keepAliveValue(request.keepAliveMs) };
}
