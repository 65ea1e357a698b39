import type { ChatRequest, CompletionRequest, OutputFormat } from '../provider.js';
import type { ChatMessage, GenerationOptions } from '../../domain/chat.js';
import { logprobsFields } from '../ollama/to-ollama.js';

/** Sampling settings in the request body; the non-OpenAI ones (top_k, min_p...) are what vLLM, llama.cpp and LM Studio accept. */
function openAiSampling(options: GenerationOptions, format: OutputFormat | undefined): Record<string, unknown> {
  const body: Record<string, unknown> = {
    temperature: options.temperature,
    top_p: options.top_p,
    top_k: options.top_k,
    min_p: options.min_p,
    repeat_penalty: options.repeat_penalty,
    presence_penalty: options.presence_penalty,
    frequency_penalty: options.frequency_penalty,
    max_tokens: options.num_predict !== undefined && options.num_predict > 0 ? options.num_predict : undefined,
    seed: options.seed,
    stop: options.stop?.length ? options.stop : undefined,
  };
  if (format === 'json') body.response_format = { type: 'json_object' };
  else if (format) body.response_format = { type: 'json_schema', json_schema: { name: 'output', schema: format, strict: true } };
  return body;
}

/** Messages in OpenAI's form: tool arguments as JSON strings, tool results tied to the call they answer. */
export function openAiMessages(messages: ChatMessage[]): Record<string, unknown>[] {
  const callIds = new Map<string, string>();
  let counter = 0;
  return messages.map((message) => {
    if (message.role === 'assistant' && message.tool_calls?.length) {
      return {
        role: 'assistant',
        content: message.content || null,
        tool_calls: message.tool_calls.map((call) => {
          const id = call.id ?? `call_${counter++}`;
          callIds.set(call.function.name, id);
          return { id, type: 'function', function: { name: call.function.name, arguments: JSON.stringify(call.function.arguments) } };
        }),
      };
    }
    if (message.role === 'tool') {
      return { role: 'tool', content: message.content, tool_call_id: callIds.get(message.tool_name ?? '') ?? message.tool_name ?? 'call' };
    }
    if (message.images?.length) {
      return {
        role: message.role,
        content: [
          { type: 'text', text: message.content },
          ...message.images.map((image) => ({ type: 'image_url', image_url: { url: image.startsWith('data:') ? image : `data:image/png;base64,${image}` } })),
        ],
      };
    }
    return { role: message.role, content: message.content };
  });
}

/** The body of a streamed /chat/completions; `model` is the id the server itself listed. */
export function toOpenAiChat(request: ChatRequest, model: string): Record<string, unknown> {
  return {
    model,
    messages: openAiMessages(request.messages),
    stream: true,
    stream_options: { include_usage: true },
    ...openAiSampling(request.options, request.format),
    tools: request.tools?.length ? request.tools : undefined,
    tool_choice: request.tools?.length ? request.toolChoice : undefined,
    // Only an effort level has an OpenAI spelling; on/off is the server's own choice there.
    reasoning_effort: typeof request.think === 'string' ? request.think : undefined,
    ...logprobsFields(request.logprobs),
  };
}

/** The body of a streamed legacy /completions. */
export function toOpenAiCompletion(request: CompletionRequest, model: string): Record<string, unknown> {
  // The legacy completions API has no system prompt; it goes before the prompt as the engine does it.
  const prompt = !request.raw && request.system ? `${request.system}\n\n${request.prompt}` : request.prompt;
  return {
    model,
    prompt,
    suffix: request.suffix,
    stream: true,
    stream_options: { include_usage: true },
    ...openAiSampling(request.options, request.format),
    // The legacy API's spelling: the number of alternatives (0 for the chosen tokens' own only).
    logprobs: request.logprobs,
  };
}
