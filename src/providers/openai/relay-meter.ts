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
const FINISH = Buffer.from('"finish_reason":"');
const DATA = Buffer.from('data:');
const DONE = Buffer.from('[DONE]');
/** An event held back for its end beyond this size is passed on unread: no real event is that large. */
const MAX_HELD_BYTES = 1 << 20;

function usageOf(value: unknown): MeteredUsage | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const { prompt_tokens: prompt, completion_tokens: completion } = value as Record<string, unknown>;
  if (typeof prompt !== 'number' && typeof completion !== 'number') return undefined;
  return { promptTokens: typeof prompt === 'number' ? prompt : 0, completionTokens: typeof completion === 'number' ? completion : 0 };
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
      if (!events.subarray(value, value + DONE.length).equals(DONE)) this.pieces++;
    }
    const finish = events.lastIndexOf(FINISH);
    if (finish !== -1) {
      const from = finish + FINISH.length;
      const to = events.indexOf('"', from);
      if (to !== -1) this.finishReason = events.toString('latin1', from, to);
    }
    return events.includes(USAGE) ? this.readUsage(events) : events;
  }

  /** Parses each event that carries usage; drops a usage-only event the client did not ask for. */
  private readUsage(events: Buffer): Buffer {
    let kept = events;
    for (let at = kept.indexOf(USAGE); at !== -1; at = kept.indexOf(USAGE, at + 1)) {
      const start = eventStart(kept, at);
      const end = nextEventEnd(kept, at);
      const payload = kept
        .toString('utf8', start, end)
        .split(/\r?\n/)
        .filter((line) => line.startsWith('data:'))
        .map((line) => line.slice(line.charCodeAt(5) === 32 ? 6 : 5))
        .join('\n');
      let parsed: Record<string, unknown> | undefined;
      try {
        parsed = JSON.parse(payload) as Record<string, unknown>;
      } catch {
        continue;
      }
      const usage = usageOf(parsed.usage);
      if (usage) this.usage = usage;
      if (usage && this.dropUsageEvent && Array.isArray(parsed.choices) && parsed.choices.length === 0) {
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

/** Where the event around `at` begins: after the blank line before it, or at the start of `events`. */
function eventStart(events: Buffer, at: number): number {
  const lf = events.lastIndexOf('\n\n', at);
  const crlf = events.lastIndexOf('\r\n\r\n', at);
  return Math.max(lf === -1 ? 0 : lf + 2, crlf === -1 ? 0 : crlf + 4);
}

/** Where the event around `at` ends (after its blank line), or the end of `events`. */
function nextEventEnd(events: Buffer, at: number): number {
  const lf = events.indexOf('\n\n', at);
  const crlf = events.indexOf('\r\n\r\n', at);
  const ends = [lf === -1 ? -1 : lf + 2, crlf === -1 ? -1 : crlf + 4].filter((end) => end !== -1);
  return ends.length === 0 ? events.length : Math.min(...ends);
}

/** A whole answer (`stream: false`): its usage and its first choice's finish reason. */
export function meterOpenAiAnswer(body: Buffer): { usage?: MeteredUsage; finishReason?: string } {
  try {
    const parsed = JSON.parse(body.toString('utf8')) as { usage?: unknown; choices?: { finish_reason?: unknown }[] };
    const finish = Array.isArray(parsed.choices) ? parsed.choices[0]?.finish_reason : undefined;
    return { usage: usageOf(parsed.usage), ...(typeof finish === 'string' ? { finishReason: finish } : {}) };
  } catch {
    return {};
  }
}
