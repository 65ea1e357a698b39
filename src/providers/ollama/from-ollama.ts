import { BackendError, ContextOverflowError, type DoneReason, type ModelInfo } from '../provider.js';
import type { ToolCall } from '../../domain/chat.js';
import type { UpstreamPart } from '../http-stream.js';
import { normaliseModelName } from '../../shared/model-names.js';
import type { OllamaChunk, OllamaModel, OllamaShow } from './wire.js';

function doneReason(reason: string | undefined): DoneReason {
  return reason === 'length' || reason === 'load' || reason === 'unload' ? reason : 'stop';
}

function toolCallsOf(chunk: OllamaChunk): ToolCall[] {
  return (chunk.message?.tool_calls ?? []).map((call) => ({
    ...(typeof call.id === 'string' ? { id: call.id } : {}),
    function: { name: call.function.name, arguments: call.function.arguments ?? {} },
  }));
}

/** One streamed line of /api/chat or /api/generate as parts; the final line carries Ollama's own figures. */
export function fromOllamaChunk(chunk: OllamaChunk): UpstreamPart[] {
  if (chunk.error !== undefined) return [{ type: 'error', message: chunk.error }];
  const parts: UpstreamPart[] = toolCallsOf(chunk).map((call) => ({ type: 'tool-call', call }));
  const thinking = chunk.message?.thinking ?? chunk.thinking;
  if (thinking) parts.push({ type: 'thinking', text: thinking });
  const text = chunk.message?.content ?? chunk.response;
  if (text) parts.push({ type: 'token', text, ...(Array.isArray(chunk.logprobs) && chunk.logprobs.length > 0 ? { logprobs: chunk.logprobs } : {}) });
  if (chunk.done) {
    parts.push({
      type: 'finish',
      stats: {
        promptTokens: chunk.prompt_eval_count,
        completionTokens: chunk.eval_count,
        loadDurationNs: chunk.load_duration,
        promptEvalDurationNs: chunk.prompt_eval_duration,
        evalDurationNs: chunk.eval_duration,
        totalDurationNs: chunk.total_duration,
        doneReason: doneReason(chunk.done_reason),
        context: Array.isArray(chunk.context) ? chunk.context : undefined,
      },
    });
  }
  return parts;
}

/** What only /api/show tells: context size, GGUF metadata, capabilities, template. */
export function fromOllamaShow(shown: OllamaShow | undefined): Partial<ModelInfo> {
  const metadata = shown?.model_info ?? {};
  const architecture = metadata['general.architecture'];
  const context = typeof architecture === 'string' ? metadata[`${architecture}.context_length`] : undefined;
  return {
    template: shown?.template || undefined,
    modelInfo: shown?.model_info,
    capabilities: shown?.capabilities,
    contextSize: typeof context === 'number' ? context : undefined,
  };
}

/**
 * A model of /api/tags with what /api/show added; `running` is its /api/ps entry, and `psKnown` false
 * when the server has no /api/ps (the loaded state is then unknown rather than false).
 */
export function fromOllamaModel(model: OllamaModel, shown: Partial<ModelInfo>, running: OllamaModel | undefined, psKnown: boolean): ModelInfo {
  return {
    ...shown,
    name: normaliseModelName(model.name),
    family: model.details?.family || undefined,
    families: model.details?.families ?? undefined,
    format: model.details?.format || undefined,
    parameterSize: model.details?.parameter_size || undefined,
    quantization: model.details?.quantization_level || undefined,
    sizeBytes: model.size,
    digest: model.digest,
    modifiedAt: model.modified_at,
    loaded: psKnown ? running !== undefined : undefined,
    loadedSizeBytes: running?.size,
    expiresAt: running?.expires_at,
  };
}

/**
 * An Ollama server's 400 for a prompt longer than the context (what it answers when a request says
 * `truncate: false`: "the input length exceeds the context length"), as the typed error.
 */
export function ollamaClientError(status: number, message: string): BackendError | undefined {
  return status === 400 && /exceeds? (the )?(maximum )?context length/i.test(message) ? new ContextOverflowError(message) : undefined;
}
