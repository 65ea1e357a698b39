import type { GenerationEvent, StreamPart } from '../providers/provider.js';
import type { ToolCall } from '../domain/chat.js';

/**
 * Folds a provider's stream parts into the events the surfaces write: text and thoughts pass through,
 * tool calls are gathered into the final `done`'s stats (every API writes them with the end of the
 * answer), and the prompt's size goes to `onPromptTokens` instead of the client. Events that are
 * already folded pass through unchanged, so a caller may hand either.
 */
export async function* toGenerationEvents(
  parts: AsyncIterable<StreamPart | GenerationEvent>,
  onPromptTokens?: (count: number) => void,
): AsyncGenerator<GenerationEvent> {
  const toolCalls: ToolCall[] = [];
  for await (const part of parts) {
    switch (part.type) {
      case 'prompt-tokens':
        onPromptTokens?.(part.count);
        break;
      case 'tool-call':
        toolCalls.push(part.call);
        break;
      case 'finish':
        yield { type: 'done', stats: toolCalls.length > 0 ? { ...part.stats, toolCalls } : { ...part.stats } };
        break;
      default:
        yield part;
    }
  }
}
