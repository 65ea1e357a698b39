import { describe, expect, it } from 'vitest';
import { OpenAiStreamMeter, meterOpenAiAnswer } from '../../src/providers/openai/relay-meter.js';

/** What the gateway reads off an OpenAI answer it passes through, whatever the network's chunking. */

const event = (value: unknown, eol = '\n') => `data: ${JSON.stringify(value)}${eol}${eol}`;
const piece = (content: string) => event({ id: 'c1', object: 'chat.completion.chunk', choices: [{ index: 0, delta: { content }, finish_reason: null }] });
const finish = event({ id: 'c1', object: 'chat.completion.chunk', choices: [{ index: 0, delta: {}, finish_reason: 'length' }] });
const usage = event({ id: 'c1', object: 'chat.completion.chunk', choices: [], usage: { prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 } });
const done = 'data: [DONE]\n\n';

/** Feeds `body` in pieces of `size` bytes; returns what the meter passed on and the meter. */
function meter(body: string, size: number, dropUsageEvent: boolean): { passed: string; meter: OpenAiStreamMeter } {
  const bytes = Buffer.from(body, 'utf8');
  const reading = new OpenAiStreamMeter(dropUsageEvent);
  const out: Buffer[] = [];
  for (let at = 0; at < bytes.length; at += size) out.push(reading.read(bytes.subarray(at, at + size)));
  out.push(reading.end());
  return { passed: Buffer.concat(out).toString('utf8'), meter: reading };
}

describe('OpenAiStreamMeter', () => {
  const body = piece('Once') + piece(' upon data: a') + piece(' tïme') + finish + usage + done;

  it.each([1, 3, 17, 10_000])('reads usage, finish and pieces in chunks of %i bytes, passing every byte on', (size) => {
    const { passed, meter: read } = meter(body, size, false);
    expect(passed).toBe(body);
    expect(read.usage).toEqual({ promptTokens: 7, completionTokens: 3 });
    expect(read.finishReason).toBe('length');
    expect(read.pieces).toBe(5); // three pieces, the finish and the usage event; [DONE] is none
  });

  it.each([1, 5, 10_000])('leaves out the usage-only event the client did not ask for (chunks of %i bytes)', (size) => {
    const { passed, meter: read } = meter(body, size, true);
    expect(passed).toBe(piece('Once') + piece(' upon data: a') + piece(' tïme') + finish + done);
    expect(read.usage).toEqual({ promptTokens: 7, completionTokens: 3 });
    expect(read.pieces).toBe(4);
  });

  it.each([1, 3, 17, 10_000])('reads a stream framed with CRLF in chunks of %i bytes, and leaves out its usage-only event', (size) => {
    const crlf = (text: string) => text.replaceAll('\n', '\r\n');
    const kept = meter(crlf(body), size, false);
    expect(kept.passed).toBe(crlf(body));
    expect(kept.meter).toMatchObject({ usage: { promptTokens: 7, completionTokens: 3 }, finishReason: 'length', pieces: 5 });
    const dropped = meter(crlf(body), size, true);
    expect(dropped.passed).toBe(crlf(piece('Once') + piece(' upon data: a') + piece(' tïme') + finish + done));
    expect(dropped.meter.pieces).toBe(4);
  });

  it('reads events separated by CRLF, and keeps usage that rides on a choice', () => {
    const crlf = event({ choices: [{ index: 0, delta: { content: 'x' }, finish_reason: 'stop' }], usage: { prompt_tokens: 2, completion_tokens: 1 } }, '\r\n') + 'data: [DONE]\r\n\r\n';
    const { passed, meter: read } = meter(crlf, 4, true);
    expect(passed).toBe(crlf);
    expect(read).toMatchObject({ usage: { promptTokens: 2, completionTokens: 1 }, finishReason: 'stop', pieces: 1 });
  });

  it('reads the finish reason of spaced JSON, and the last one given when a later chunk says null', () => {
    const spaced = (value: unknown) => `data: ${JSON.stringify(value, null, 1).replaceAll('\n', '')}\n\n`;
    const body =
      spaced({ choices: [{ index: 0, delta: { content: 'x' }, finish_reason: null }] }) +
      spaced({ choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] }) +
      spaced({ choices: [{ index: 1, delta: {}, finish_reason: null }] }) +
      done;
    for (const size of [1, 7, body.length]) expect(meter(body, size, false).meter.finishReason).toBe('stop');
  });

  it('reads spaced usage events, usage null on every chunk, and an event whose data spans lines', () => {
    const spaced = (value: unknown) => `data: ${JSON.stringify(value, null, 1).replaceAll('\n', '')}\n\n`;
    const chunk = (content: string) => spaced({ choices: [{ index: 0, delta: { content }, finish_reason: null }], usage: null });
    const usageOnly = spaced({ choices: [], usage: { prompt_tokens: 5, completion_tokens: 2, prompt_tokens_details: { cached_tokens: 0 } } });
    const body = chunk('a') + chunk('b') + usageOnly + done;
    for (const size of [1, 9, body.length]) {
      const { passed, meter: read } = meter(body, size, true);
      expect(passed).toBe(chunk('a') + chunk('b') + done);
      expect(read.usage).toEqual({ promptTokens: 5, completionTokens: 2 });
      expect(read.pieces).toBe(2);
    }
    // Server-sent events may split one event's data over several `data:` lines: it is read whole.
    const split = 'data: {"choices": [],\ndata:  "usage": {"prompt_tokens": 8,\ndata: "completion_tokens": 4}}\n\n' + done;
    const read = meter(split, 6, true);
    expect(read.meter.usage).toEqual({ promptTokens: 8, completionTokens: 4 });
    expect(read.passed).toBe(done);
  });

  it('passes on a last event that lacks its blank line at the end of the body', () => {
    const { passed, meter: read } = meter(piece('a') + 'data: {"choices":[]', 7, false);
    expect(passed).toBe(piece('a') + 'data: {"choices":[]');
    expect(read.usage).toBeUndefined();
  });
});

describe('meterOpenAiAnswer', () => {
  it('reads a whole answer’s usage and finish reason, and nothing from a body that is not JSON', () => {
    const answer = { choices: [{ index: 0, message: { content: 'hi' }, finish_reason: 'stop' }], usage: { prompt_tokens: 4, completion_tokens: 2 } };
    expect(meterOpenAiAnswer(Buffer.from(JSON.stringify(answer)))).toEqual({ usage: { promptTokens: 4, completionTokens: 2 }, finishReason: 'stop' });
    expect(meterOpenAiAnswer(Buffer.from('<html>'))).toEqual({});
  });

  it('reads spaced and indented JSON, key order of any server, and details nested in the usage', () => {
    const answer = {
      usage: { prompt_tokens: 9, completion_tokens: 5, total_tokens: 14, prompt_tokens_details: { cached_tokens: 2 }, completion_tokens_details: { reasoning_tokens: 1 } },
      choices: [
        { index: 0, message: { content: 'a' }, finish_reason: 'length' },
        { index: 1, message: { content: 'b' }, finish_reason: 'stop' },
      ],
    };
    const expected = { usage: { promptTokens: 9, completionTokens: 5 }, finishReason: 'length' };
    for (const text of [JSON.stringify(answer), JSON.stringify(answer, null, 2), JSON.stringify(answer).replaceAll(':', ' : ')]) {
      expect(meterOpenAiAnswer(Buffer.from(text))).toEqual(expected);
    }
  });

  it('is not fooled by the keys written inside an answer’s text, and reads a null usage as none', () => {
    const text = 'he wrote "usage": {"prompt_tokens": 999} and "finish_reason": "evil" {{';
    const answer = { choices: [{ index: 0, message: { content: text }, finish_reason: 'stop' }], usage: { prompt_tokens: 4, completion_tokens: 2 } };
    expect(meterOpenAiAnswer(Buffer.from(JSON.stringify(answer)))).toEqual({ usage: { promptTokens: 4, completionTokens: 2 }, finishReason: 'stop' });
    const withoutUsage = { choices: [{ index: 0, message: { content: text }, finish_reason: 'stop' }], usage: null };
    expect(meterOpenAiAnswer(Buffer.from(JSON.stringify(withoutUsage)))).toEqual({ usage: undefined, finishReason: 'stop' });
    expect(meterOpenAiAnswer(Buffer.from(JSON.stringify({ choices: [{ finish_reason: 'stop' }] })))).toEqual({ finishReason: 'stop' });
  });
});

describe('token counts a server reports', () => {
  it('are read only as whole numbers that are not negative: anything else counts as not reported', () => {
    const answer = (usage: unknown) => Buffer.from(`{"choices":[{"index":0,"finish_reason":"stop"}],"usage":${JSON.stringify(usage)}}`);
    expect(meterOpenAiAnswer(answer({ prompt_tokens: -5, completion_tokens: 2 })).usage).toEqual({ promptTokens: 0, completionTokens: 2 });
    expect(meterOpenAiAnswer(answer({ prompt_tokens: 1.5, completion_tokens: '7' })).usage).toBeUndefined();
    // JSON reads 1e400 as Infinity: a total it was added to would never be a number again.
    expect(meterOpenAiAnswer(Buffer.from('{"choices":[],"usage":{"prompt_tokens":1e400,"completion_tokens":3}}')).usage).toEqual({ promptTokens: 0, completionTokens: 3 });
    const streamed = meter(event({ choices: [], usage: { prompt_tokens: -1, completion_tokens: -1 } }) + done, 7, false).meter;
    expect(streamed.usage).toBeUndefined();
  });
});
