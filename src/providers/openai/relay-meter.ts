/**
 * Reads what the gateway's accounting needs off an OpenAI answer that passes through unchanged: the
 * token counts the server reports (`usage`), the finish reason, and how many pieces were streamed.
 * A stream is scanned one network chunk at a time with byte searches; only the events that carry a
 * usage object are parsed, so the cost per chunk stays a few searches, not a JSON parse per event.
 */

export interface MeteredUsage {
  promptTokens: number;
  completionTokens: number;
}

const USAGE = Buffer.from('"usage"');
const FINISH = Buffer.from('"finish_reason"');
const DATA = Buffer.from('data:');
const DONE = Buffer.from('[DONE]');
const NULL = Buffer.from('null');
const LF_LF = Buffer.from('\n\n');
const CRLF_CRLF = Buffer.from('\r\n\r\n');
/** An event held back for its end beyond this size is passed on unread: no real event is that large. */
const MAX_HELD_BYTES = 1 << 20;

/** A token count as a server may report it: a whole number, not negative. Anything else is not read as one. */
function isCount(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}

function usageOf(value: unknown): MeteredUsage | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const { prompt_tokens: prompt, completion_tokens: completion } = value as Record<string, unknown>;
  if (!isCount(prompt) && !isCount(completion)) return undefined;
  return { promptTokens: isCount(prompt) ? prompt : 0, completionTokens: isCount(completion) ? completion : 0 };
}

/** A streamed answer (server-sent events). */
export class OpenAiStreamMeter {
  usage?: MeteredUsage;
  finishReason?: string;
  /** `data:` events other than `[DONE]`: the answer's pieces (the role and finish events among them). */
  pieces = 0;
  private held?: Buffer;

  /**
   * @param dropUsageEvent the client did not ask for usage, but the server was asked for it on the
   * gateway's behalf: the event carrying only the usage is left out of what the client gets.
   */
  constructor(private readonly dropUsageEvent: boolean) {}

  /** Reads one network chunk; returns the bytes to pass on now (complete events only). */
  read(chunk: Buffer): Buffer {
    const data = this.held ? Buffer.concat([this.held, chunk]) : chunk;
    // Where the last complete event ends: the start of whatever follows the last blank line.
    const end = eventStart(data, data.length);
    if (end === 0 && data.length < MAX_HELD_BYTES) {
      this.held = data;
      return Buffer.alloc(0);
    }
    const complete = end === 0 ? data : data.subarray(0, end);
    this.held = end === 0 || end === data.length ? undefined : data.subarray(end);
    return this.scan(complete);
  }

  /** The bytes still held when the body ends (an answer whose last event lacks its blank line). */
  end(): Buffer {
    const rest = this.held;
    this.held = undefined;
    return rest ? this.scan(rest) : Buffer.alloc(0);
  }

  private scan(events: Buffer): Buffer {
    for (let at = events.indexOf(DATA); at !== -1; at = events.indexOf(DATA, at + DATA.length)) {
      if (at > 0 && events[at - 1] !== 0x0a) continue; // "data:" inside an answer's text, not a field
      const value = at + DATA.length + (events[at + DATA.length] === 0x20 ? 1 : 0);
      if (events.compare(DONE, 0, DONE.length, value, value + DONE.length) !== 0) this.pieces++;
    }
    this.finishReason = lastStringValue(events, FINISH) ?? this.finishReason;
    return events.includes(USAGE) ? this.readUsage(events) : events;
  }

  /** Reads each event that carries usage; drops a usage-only event the client did not ask for. */
  private readUsage(events: Buffer): Buffer {
    let kept = events;
    for (let at = kept.indexOf(USAGE); at !== -1; at = kept.indexOf(USAGE, at + 1)) {
      const start = eventStart(kept, at);
      const end = nextEventEnd(kept, at);
      const parsed = usageEvent(kept, at, start, end) ?? parseEvent(kept, start, end);
      if (!parsed) continue;
      const usage = usageOf(parsed.usage);
      if (usage) this.usage = usage;
      if (usage && this.dropUsageEvent && parsed.choicesEmpty) {
        kept = Buffer.concat([kept.subarray(0, start), kept.subarray(end)]);
        this.pieces--;
        at = start - 1;
      } else {
        at = end - 1;
      }
    }
    return kept;
  }
}

/** What an event carrying usage says: the usage value, and whether its `choices` are empty (a usage-only event). */
interface UsageEvent {
  usage: unknown;
  choicesEmpty: boolean;
}

const CHOICES = Buffer.from('"choices"');

/**
 * The usage event found by byte search, only its usage object parsed (as in meterOpenAiAnswer), or
 * undefined for an event the search cannot read (one whose data spans several lines, say).
 */
function usageEvent(events: Buffer, usageKey: number, start: number, end: number): UsageEvent | undefined {
  const found = usageValue(events, usageKey, end);
  if (!found) return undefined;
  const choices = events.indexOf(CHOICES, start);
  let choicesEmpty = false;
  if (choices !== -1 && choices < end) {
    let list = valueStart(events, choices + CHOICES.length);
    if (list !== -1 && events[list] === 0x5b) {
      do list++;
      while (isSpace(events[list]));
      choicesEmpty = events[list] === 0x5d;
    }
  }
  return { usage: found.usage, choicesEmpty };
}

/**
 * The value of the `"usage"` key found at `usageKey`, read without parsing anything around it: the
 * usage object parsed alone, or null. Undefined when the value is neither or does not end before `end`.
 */
function usageValue(body: Buffer, usageKey: number, end = body.length): { usage: unknown } | undefined {
  const value = valueStart(body, usageKey + USAGE.length);
  if (value === -1 || value >= end) return undefined;
  if (body.subarray(value, value + NULL.length).equals(NULL)) return { usage: null };
  if (body[value] !== 0x7b) return undefined;
  const close = objectEnd(body, value);
  if (close === -1 || close > end) return undefined;
  try {
    return { usage: JSON.parse(body.toString('utf8', value, close)) };
  } catch {
    return undefined;
  }
}

/** The event's data lines joined and parsed whole. */
function parseEvent(events: Buffer, start: number, end: number): UsageEvent | undefined {
  const payload = events
    .toString('utf8', start, end)
    .split(/\r?\n/)
    .filter((line) => line.startsWith('data:'))
    .map((line) => line.slice(line.charCodeAt(5) === 32 ? 6 : 5))
    .join('\n');
  try {
    const parsed = JSON.parse(payload) as Record<string, unknown>;
    return { usage: parsed.usage, choicesEmpty: Array.isArray(parsed.choices) && parsed.choices.length === 0 };
  } catch {
    return undefined;
  }
}

/** Where the event around `at` begins: after the blank line before it, or at the start of `events`. */
function eventStart(events: Buffer, at: number): number {
  const lf = events.lastIndexOf(LF_LF, at);
  const after = lf === -1 ? 0 : lf + 2;
  // A CRLF blank line cannot contain "\n\n": one later than `lf` has a CR after it. Most servers
  // write LF only, and this spares a search back through the whole chunk on every read.
  const cr = events.indexOf(0x0d, after);
  if (cr === -1 || cr > at) return after;
  const crlf = events.lastIndexOf(CRLF_CRLF, at);
  return Math.max(after, crlf === -1 ? 0 : crlf + 4);
}

/** Where the event around `at` ends (after its blank line), or the end of `events`. */
function nextEventEnd(events: Buffer, at: number): number {
  const lf = events.indexOf(LF_LF, at);
  const crlf = events.indexOf(CRLF_CRLF, at);
  if (lf === -1) return crlf === -1 ? events.length : crlf + 4;
  return crlf === -1 ? lf + 2 : Math.min(lf + 2, crlf + 4);
}

/**
 * A whole answer (`stream: false`): its usage and its first choice's finish reason. Both are found by
 * byte search and only the usage object is parsed: parsing the whole answer cost more than anything
 * else the pass-through does with it. A key's quotes cannot occur unescaped inside a JSON string, so
 * a search for `"usage"` finds only keys; the top-level one comes after the choices in the answers
 * of every server this relays to. An answer the search cannot read is parsed whole.
 */
export function meterOpenAiAnswer(body: Buffer): { usage: MeteredUsage | undefined; finishReason: string | undefined } {
  const finishReason = firstStringValue(body, FINISH);
  const key = body.lastIndexOf(USAGE);
  if (key === -1) return { usage: undefined, finishReason };
  const found = usageValue(body, key);
  if (found) return { usage: usageOf(found.usage), finishReason };
  // not the shape searched for: parsed whole
  try {
    const parsed = JSON.parse(body.toString('utf8')) as { usage?: unknown; choices?: { finish_reason?: unknown }[] };
    const finish = Array.isArray(parsed.choices) ? parsed.choices[0]?.finish_reason : undefined;
    return { usage: usageOf(parsed.usage), finishReason: typeof finish === 'string' ? finish : undefined };
  } catch {
    return { usage: undefined, finishReason: undefined };
  }
}

const isSpace = (byte: number | undefined) => byte === 0x20 || byte === 0x0a || byte === 0x0d || byte === 0x09;

/** Where the value of the key that ends at `afterKey` starts (past the colon and any spaces), or -1. */
function valueStart(body: Buffer, afterKey: number): number {
  let at = afterKey;
  while (isSpace(body[at])) at++;
  if (body[at] !== 0x3a) return -1;
  at++;
  while (isSpace(body[at])) at++;
  return at < body.length ? at : -1;
}

/** The string value of the key ending at `afterKey` (finish reasons have no escapes), or undefined. */
function stringValue(body: Buffer, afterKey: number): string | undefined {
  const start = valueStart(body, afterKey);
  if (start === -1 || body[start] !== 0x22) return undefined;
  const end = body.indexOf(0x22, start + 1);
  return end === -1 ? undefined : body.toString('latin1', start + 1, end);
}

function firstStringValue(body: Buffer, key: Buffer): string | undefined {
  for (let at = body.indexOf(key); at !== -1; at = body.indexOf(key, at + 1)) {
    const value = stringValue(body, at + key.length);
    if (value !== undefined) return value;
  }
  return undefined;
}

/** The last string value of `key` (a stream's chunks say `null` until the choice ends). */
function lastStringValue(body: Buffer, key: Buffer): string | undefined {
  for (let at = body.lastIndexOf(key); at !== -1; at = at === 0 ? -1 : body.lastIndexOf(key, at - 1)) {
    const value = stringValue(body, at + key.length);
    if (value !== undefined) return value;
  }
  return undefined;
}

/** Where the JSON object opening at `start` ends (one past its closing brace), strings skipped; -1 if it does not. */
function objectEnd(body: Buffer, start: number): number {
  let depth = 0;
  for (let at = start; at < body.length; at++) {
    const byte = body[at];
    if (byte === 0x22) {
      // a string: to its closing quote, past escaped ones
      for (at++; at < body.length && body[at] !== 0x22; at++) if (body[at] === 0x5c) at++;
    } else if (byte === 0x7b || byte === 0x5b) {
      depth++;
    } else if (byte === 0x7d || byte === 0x5d) {
      depth--;
      if (depth === 0) return at + 1;
    }
  }
  return -1;
}
