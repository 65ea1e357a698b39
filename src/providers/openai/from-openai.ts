import { BackendError, ContextOverflowError, type DoneReason, type ModelInfo, type TokenLogprob } from '../provider.js';
import type { ToolCall } from '../../domain/chat.js';
import type { UpstreamPart } from '../http-stream.js';
import { nameDigest } from '../digests.js';
import { normaliseModelName } from '../../shared/model-names.js';
import type { OpenAiChoiceChunk, OpenAiChunk, OpenAiModelList } from './wire.js';

/** The one finish-reason map of the OpenAI wire format. */
export function fromOpenAiFinishReason(reason: string | null | undefined): DoneReason {
  if (reason === 'length') return 'length';
  if (reason === 'tool_calls' || reason === 'function_call') return 'tool_calls';
  return 'stop';
}

const bytesOf = (text: string) => [...Buffer.from(text, 'utf8')];

/** A chunk's log-probabilities in the chat shape, whichever of OpenAI's two shapes the server sent. */
function fromOpenAiLogprobs(value: OpenAiChoiceChunk['logprobs']): TokenLogprob[] | undefined {
  if (!value) return undefined;
  if (Array.isArray(value.content)) return value.content.length > 0 ? value.content : undefined;
  if (!Array.isArray(value.tokens) || value.tokens.length === 0) return undefined;
  return value.tokens.map((token, i) => ({
    token,
    logprob: value.token_logprobs?.[i] ?? 0,
    bytes: bytesOf(token),
    top_logprobs: Object.entries(value.top_logprobs?.[i] ?? {}).map(([alt, logprob]) => ({ token: alt, logprob, bytes: bytesOf(alt) })),
  }));
}

function parseArguments(text: string): Record<string, unknown> {
  try {
    const value = JSON.parse(text || '{}') as unknown;
    return value && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : { value };
  } catch {
    // A model that wrote broken JSON: keep what it wrote rather than lose the call.
    return { arguments: text };
  }
}

/**
 * What a stream has said so far that only its end completes: tool-call arguments arrive in fragments
 * (joined per call index), and the finish reason and usage may come in different chunks.
 */
export class OpenAiStreamState {
  readonly calls = new Map<number, { id?: string; name: string; arguments: string }>();
  reason: string | null | undefined;
  usage: OpenAiChunk['usage'];
}

/** One streamed chunk of /chat/completions or /completions as parts (text and thoughts at once). */
export function fromOpenAiChunk(chunk: OpenAiChunk, state: OpenAiStreamState): UpstreamPart[] {
  if (chunk.error !== undefined) {
    return [{ type: 'error', message: typeof chunk.error === 'string' ? chunk.error : (chunk.error.message ?? 'upstream error') }];
  }
  if (chunk.usage) state.usage = chunk.usage;
  const choice = chunk.choices?.[0];
  if (!choice) return [];
  for (const call of choice.delta?.tool_calls ?? []) {
    const index = call.index ?? 0;
    const entry = state.calls.get(index) ?? { name: '', arguments: '' };
    if (call.id) entry.id = call.id;
    if (call.function?.name) entry.name += call.function.name;
    if (call.function?.arguments) entry.arguments += call.function.arguments;
    state.calls.set(index, entry);
  }
  if (choice.finish_reason) state.reason = choice.finish_reason;
  const parts: UpstreamPart[] = [];
  const thinking = choice.delta?.reasoning_content ?? choice.delta?.reasoning;
  if (thinking) parts.push({ type: 'thinking', text: thinking });
  const text = choice.delta?.content ?? choice.text;
  const logprobs = fromOpenAiLogprobs(choice.logprobs);
  if (text) parts.push({ type: 'token', text, ...(logprobs ? { logprobs } : {}) });
  return parts;
}

/** The stream's end: the joined tool calls and the finish, or nothing when no final chunk came (a broken stream). */
export function fromOpenAiStreamEnd(state: OpenAiStreamState): UpstreamPart[] {
  if (state.reason === undefined && !state.usage) return [];
  const calls: ToolCall[] = [...state.calls.values()].map((call) => ({ id: call.id, function: { name: call.name, arguments: parseArguments(call.arguments) } }));
  return [
    ...calls.map((call): UpstreamPart => ({ type: 'tool-call', call })),
    {
      type: 'finish',
      stats: { promptTokens: state.usage?.prompt_tokens, completionTokens: state.usage?.completion_tokens, doneReason: fromOpenAiFinishReason(state.reason) },
    },
  ];
}

/**
 * /models as our listing: such servers name models freely (`gpt-4o`, `Qwen/Qwen2.5-7B-Instruct`), and
 * every model name here is `name:tag`, so a name without a tag is listed with `:latest`. `ids` is
 * filled with our name → the server's own id, which is what requests send upstream.
 */
export function fromOpenAiModels(list: OpenAiModelList | undefined, providerId: string, ids: Map<string, string>): ModelInfo[] {
  return (list?.data ?? []).map((entry) => {
    const name = normaliseModelName(entry.id);
    ids.set(name, entry.id);
    return {
      name,
      modifiedAt: entry.created ? new Date(entry.created * 1000).toISOString() : undefined,
      digest: nameDigest(providerId, entry.id),
    };
  });
}

/** An OpenAI-compatible server's refusal of a prompt longer than the context (`code: "context_length_exceeded"`), as the typed error. */
export function openAiClientError(status: number, message: string, body: string): BackendError | undefined {
  if (status !== 400) return undefined;
  try {
    const code = (JSON.parse(body) as { error?: { code?: unknown } }).error?.code;
    return code === 'context_length_exceeded' ? new ContextOverflowError(message) : undefined;
  } catch {
    return undefined;
  }
}
