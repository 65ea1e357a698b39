import { BackendError, ContextOverflowError } from '../providers/types.js';

/**
 * The words of backends that refuse an overlong prompt without raising ContextOverflowError: the
 * embedded engine's "prompt is N tokens, more than the 512-token context of 'model'", and an Ollama
 * server's "the input length exceeds the context length" (sent when a request says `truncate: false`).
 * A remote server's refusal reaches us as text only, so it has to be read somewhere: here, once, where
 * the gateway receives a backend's error, and nowhere past it.
 */
const OVERFLOW_WORDS = /more than the \d+-token context|exceeds? (the )?(maximum )?context length/i;

/** A backend's error as the product's code tests for it: a context overflow said in words becomes a ContextOverflowError. */
export function typedRefusal(error: unknown): unknown {
  if (!(error instanceof BackendError) || error instanceof ContextOverflowError) return error;
  if (error.status !== 400 || !OVERFLOW_WORDS.test(error.message)) return error;
  const overflow = new ContextOverflowError(error.message);
  overflow.stack = error.stack;
  return overflow;
}
