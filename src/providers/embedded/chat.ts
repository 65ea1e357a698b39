import type { ChatHistoryItem, ChatModelFunctions } from 'node-llama-cpp';
import { llamaCpp } from './llama-module.js';
import type { ChatRequest } from '../provider.js';
import type { ChatMessage, ToolCall } from '../../domain/chat.js';
import { fitMessages, promptLimit } from '../truncate-prompt.js';
import type { GenerationRun, RunResult } from './generate.js';
import { boundMessages } from './input-bound.js';
import { generateWithLogprobs } from './logprobs.js';

/** Chat messages in node-llama-cpp's history form; tool results travel as user turns. */
function toChatHistory(messages: ChatMessage[]): ChatHistoryItem[] {
  const history: ChatHistoryItem[] = [];
  for (const message of messages) {
    if (message.role === 'system') history.push({ type: 'system', text: message.content });
    else if (message.role === 'assistant') history.push({ type: 'model', response: [message.content] });
    else if (message.role === 'tool')
      history.push({ type: 'user', text: `Result of ${message.tool_name ?? 'the tool'}: ${message.content}` });
    else history.push({ type: 'user', text: message.content });
  }
  return history;
}

/** The prompt's length in UTF-16 code units, for the check that needs no tokenising. */
export function chatPromptLength(request: ChatRequest): number {
  return request.messages.reduce((sum, message) => sum + message.content.length, 0);
}

/**
 * A chat turn through the model's chat template: the history is cut to the context (oldest
 * exchanges first) unless the client refused truncation, tools become node-llama-cpp functions, and
 * a request for log-probabilities evaluates token by token instead.
 */
export async function runChat(request: ChatRequest, { live, sequence, common, options, emit }: GenerationRun): Promise<RunResult> {
  const count = (messages: ChatMessage[]) =>
    live.chatWrapper
      .generateContextState({ chatHistory: [...toChatHistory(messages), { type: 'model', response: [] }] })
      .contextText.tokenize(live.model.tokenizer).length;
  const limit = promptLimit(live.contextSizePerSequence, options.num_predict);
  // What truncation would drop anyway is left out by length first, so that no more is tokenised
  // than the context can hold (an 8 MB message costs microseconds, not seconds of a blocked loop).
  let messages = request.truncate === false ? request.messages : boundMessages(live.model, request.messages, limit);
  let promptTokens = count(messages);
  if (promptTokens > limit && request.truncate !== false) {
    ({ messages, count: promptTokens } = fitMessages(messages, limit, {
      count,
      tokenize: (text) => live.model.tokenize(text, false),
      detokenize: (tokens) => live.model.detokenize(tokens),
    }));
  }
  const history = toChatHistory(messages);
  if (request.logprobs !== undefined) {
    const tokens = live.chatWrapper
      .generateContextState({ chatHistory: [...history, { type: 'model', response: [] }] })
      .contextText.tokenize(live.model.tokenizer);
    const generationOptions = common(tokens.length);
    if (generationOptions.maxTokens === 0) return { promptTokens: tokens.length, stopReason: 'maxTokens' };
    const result = await generateWithLogprobs(live.model, sequence, tokens, generationOptions, request.logprobs, emit);
    return { promptTokens: tokens.length, stopReason: result.stopReason };
  }
  const functions = request.tools?.length
    ? (Object.fromEntries(
        request.tools.map((tool) => [tool.function.name, { description: tool.function.description, params: tool.function.parameters }]),
      ) as ChatModelFunctions)
    : undefined;
  const generationOptions = common(promptTokens);
  if (generationOptions.maxTokens === 0) return { promptTokens, stopReason: 'maxTokens' };
  const { LlamaChat } = await llamaCpp();
  const chat = new LlamaChat({ contextSequence: sequence, chatWrapper: live.chatWrapper, autoDisposeSequence: false });
  try {
    // llama.cpp takes one grammar at a time: tool calling brings its own, so `format` yields to it.
    const result = await chat.generateResponse(
      [...history, { type: 'model', response: [] }],
      functions ? { ...generationOptions, grammar: undefined, functions } : { ...generationOptions, functions: undefined },
    );
    const toolCalls: ToolCall[] | undefined = result.functionCalls?.map((call) => ({
      function: { name: call.functionName, arguments: (call.params ?? {}) as Record<string, unknown> },
    }));
    return { promptTokens, stopReason: toolCalls?.length ? 'functionCalls' : result.metadata.stopReason, toolCalls };
  } finally {
    chat.dispose({ disposeSequence: false });
  }
}
