import { ContextOverflowError, type GenerationEvent } from '../providers/types.js';
import { type ChatMessage } from '../domain/chat.js';
import { withoutOldestExchange } from '../providers/truncate-prompt.js';

/**
 * Ollama's answer to a conversation longer than the model's context: it leaves the oldest exchanges
 * out of the prompt instead of refusing. Clients that resend the whole history on every turn (Open
 * WebUI, LangChain) and server-side sessions both rely on it.
 */

/**
 * Runs a chat, dropping the oldest exchanges while the prompt does not fit. The newest message is
 * never dropped (backends that truncate shorten it themselves). With `truncate: false` the overflow is
 * the client's 400, as Ollama answers it.
 */
export async function* generateFitting(
  messages: ChatMessage[],
  run: (messages: ChatMessage[]) => AsyncGenerator<GenerationEvent>,
  options: {
    /** `false`: the overflow is the client's 400, as Ollama answers it, rather than shortened. */
    truncate?: boolean;
    /** Told how many exchanges were left out, once the prompt fits (the Arena says so in the column). */
    onTrimmed?: (exchanges: number) => void;
  } = {},
): AsyncGenerator<GenerationEvent> {
  const newest = messages.slice(-1);
  let earlier = messages.slice(0, -1);
  let dropped = 0;
  for (;;) {
    const events = run([...earlier, ...newest]);
    let first: IteratorResult<GenerationEvent>;
    try {
      first = await events.next();
    } catch (error) {
      const shorter = withoutOldestExchange(earlier);
      if (options.truncate !== false && error instanceof ContextOverflowError && shorter.length < earlier.length) {
        earlier = shorter;
        dropped++;
        continue;
      }
      throw error;
    }
    if (dropped > 0) options.onTrimmed?.(dropped);
    if (first.done) return;
    yield first.value;
    yield* events;
    return;
  }
}
