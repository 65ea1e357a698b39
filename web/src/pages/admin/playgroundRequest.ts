/**
 * What the playground sends, as plain data: built from the form, shown raw, turned into a curl line and
 * read back from the answer. Kept free of React so the same code is what the tests check.
 */
import { parseStops } from '../../components/stopSequences.js';

export type PlaygroundApi = 'ollama-chat' | 'ollama-generate' | 'openai-chat';

const API_PATHS: Record<PlaygroundApi, string> = {
  'ollama-chat': '/api/chat',
  'ollama-generate': '/api/generate',
  'openai-chat': '/v1/chat/completions',
};

export const API_LABELS: Record<PlaygroundApi, string> = {
  'ollama-chat': 'Ollama /api/chat',
  'ollama-generate': 'Ollama /api/generate',
  'openai-chat': 'OpenAI /v1/chat/completions',
};

/** Sampling parameters as the form holds them: an empty string means "leave it out, use the default". */
export interface PlaygroundParams {
  temperature: string;
  top_p: string;
  top_k: string;
  repeat_penalty: string;
  max_tokens: string;
  seed: string;
  /** One stop sequence per line, so a sequence may itself hold commas or spaces. */
  stop: string;
}

export interface PlaygroundForm {
  api: PlaygroundApi;
  model: string;
  system: string;
  prompt: string;
  stream: boolean;
  /**
   * Ollama routes only, when streamed: ask for the extended Ollama API's Server-Sent Events (`Accept: text/event-stream`,
   * docs/api-contract.md, streams) instead of Ollama's NDJSON.
   */
  events: boolean;
  params: PlaygroundParams;
}

export interface BuiltRequest {
  method: 'POST';
  path: string;
  /** Every header but Authorization, which the page adds (and masks) itself. */
  headers: Record<string, string>;
  body: Record<string, unknown>;
}

/** Whether the form asks for the extended Ollama API's SSE: only the Ollama routes speak it, and only when streamed. */
function wantsEvents(form: PlaygroundForm): boolean {
  return form.events && form.stream && form.api !== 'openai-chat';
}

function numberOrUndefined(text: string): number | undefined {
  if (text.trim() === '') return undefined;
  const value = Number(text);
  return Number.isFinite(value) ? value : undefined;
}

/** Drops the parameters left empty, so the request shows only what the user chose. */
function defined(entries: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(entries).filter(([, value]) => value !== undefined));
}

export function buildRequest(form: PlaygroundForm): BuiltRequest {
  const p = form.params;
  const sampling = {
    temperature: numberOrUndefined(p.temperature),
    top_p: numberOrUndefined(p.top_p),
    top_k: numberOrUndefined(p.top_k),
    repeat_penalty: numberOrUndefined(p.repeat_penalty),
    seed: numberOrUndefined(p.seed),
  };
  const maxTokens = numberOrUndefined(p.max_tokens);
  const stop = parseStops(p.stop);
  const messages = [...(form.system.trim() ? [{ role: 'system', content: form.system }] : []), { role: 'user', content: form.prompt }];
  const path = API_PATHS[form.api];

  if (form.api === 'openai-chat') {
    // top_k and repeat_penalty are not in OpenAI's schema; like llama.cpp's and vLLM's servers we take
    // them as extra body fields, so the playground can still set every parameter on this API.
    const body = defined({ model: form.model, messages, stream: form.stream, ...sampling, max_tokens: maxTokens, stop });
    return { method: 'POST', path, headers: { 'Content-Type': 'application/json' }, body };
  }
  // Ollama's own knob for the answer length is num_predict, inside options.
  const options = defined({ ...sampling, num_predict: maxTokens, stop });
  const base =
    form.api === 'ollama-chat'
      ? { model: form.model, messages }
      : defined({ model: form.model, prompt: form.prompt, system: form.system.trim() ? form.system : undefined });
  // `stream` is always written: Ollama streams by default, so leaving it out would not say what was meant.
  const headers: Record<string, string> = { 'Content-Type': 'application/json', ...(wantsEvents(form) ? { Accept: 'text/event-stream' } : {}) };
  return { method: 'POST', path, headers, body: { ...base, stream: form.stream, ...(Object.keys(options).length > 0 ? { options } : {}) } };
}

/** The placeholder shown wherever the request is displayed, so no secret is ever rendered. */
export const KEY_PLACEHOLDER = '<your key>';

function shellQuote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

/**
 * A curl command reproducing the request. `key` goes into the Authorization header: the page passes the
 * placeholder to show it and the real key only when copying it to the clipboard.
 */
export function curlCommand(origin: string, request: BuiltRequest, key: string | undefined): string {
  const parts = ['curl', ...(request.body.stream === true ? ['-N'] : []), '-X', request.method, shellQuote(origin + request.path)];
  if (key !== undefined) parts.push('-H', shellQuote(`Authorization: Bearer ${key}`));
  for (const [name, value] of Object.entries(request.headers)) parts.push('-H', shellQuote(`${name}: ${value}`));
  parts.push('-d', shellQuote(JSON.stringify(request.body)));
  return parts.join(' ');
}

/** What one raw response line adds to the answer text, or the error it reports. */
export interface LineReading {
  text: string;
  error?: string;
}

function errorMessage(error: unknown): string | undefined {
  if (error === undefined || error === null) return undefined;
  if (typeof error === 'string') return error;
  if (typeof error === 'object' && 'message' in error) return String((error as { message: unknown }).message);
  return JSON.stringify(error);
}

/**
 * Reads one line of any answer the three APIs give: Ollama NDJSON (chat `message.content`, generate
 * `response`), the extended Ollama API's SSE (`data: {"token"}`), OpenAI SSE (`data: {...}` with `choices[].delta`,
 * `data: [DONE]`) and each API's non-streamed object, as a single line or as the whole body.
 */
export function readAnswerLine(line: string): LineReading {
  let text = line.trim();
  if (text === '' || text.startsWith(':') || text.startsWith('event:')) return { text: '' };
  if (text.startsWith('data:')) text = text.slice(5).trim();
  if (text === '[DONE]') return { text: '' };
  let value: Record<string, unknown>;
  try {
    value = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return { text: '' };
  }
  const error = errorMessage(value.error);
  // The /api surfaces may add `details` beside the message (docs/api-contract.md, errors); both help the user.
  if (error !== undefined && typeof value.details === 'string') return { text: '', error: `${error}: ${value.details}` };
  if (error !== undefined) return { text: '', error };
  // The extended Ollama API's SSE: one `token` per event; the last event's `full_text` repeats them all, so it adds nothing.
  if (typeof value.token === 'string') return { text: value.token };
  const message = value.message as { content?: unknown } | undefined;
  if (typeof message?.content === 'string') return { text: message.content };
  if (typeof value.response === 'string') return { text: value.response };
  const choice = (value.choices as Array<{ delta?: { content?: unknown }; message?: { content?: unknown }; text?: unknown }> | undefined)?.[0];
  const content = choice?.delta?.content ?? choice?.message?.content ?? choice?.text;
  return { text: typeof content === 'string' ? content : '' };
}

/** The answer text of a whole body (a non-streamed object, or all the lines of a stream). */
export function readAnswer(body: string): LineReading {
  try {
    JSON.parse(body);
    // One JSON value (possibly pretty-printed: JSON strings hold no raw line breaks, so joining is safe).
    return readAnswerLine(body.replace(/\n/g, ' '));
  } catch {
    // NDJSON or SSE: read it line by line.
  }
  let text = '';
  for (const line of body.split('\n')) {
    const reading = readAnswerLine(line);
    if (reading.error) return { text, error: reading.error };
    text += reading.text;
  }
  return { text };
}
