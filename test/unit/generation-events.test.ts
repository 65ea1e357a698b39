import { describe, expect, it } from 'vitest';
import type { StreamPart } from '../../src/providers/provider.js';
import { toGenerationEvents } from '../../src/gateway/generation-events.js';

async function* stream(...parts: StreamPart[]) {
  yield* parts;
}

const stats = { promptTokens: 4, completionTokens: 2, loadDurationNs: 0, promptEvalDurationNs: 1, evalDurationNs: 2, totalDurationNs: 3, doneReason: 'tool_calls' as const };

describe('toGenerationEvents', () => {
  it('passes text and thoughts on, tells the prompt size aside and gathers tool calls into the done stats', async () => {
    const told: number[] = [];
    const events = [];
    const call = { function: { name: 'f', arguments: { a: 1 } } };
    for await (const event of toGenerationEvents(
      stream({ type: 'prompt-tokens', count: 4 }, { type: 'thinking', text: 'hm' }, { type: 'token', text: 'x' }, { type: 'tool-call', call }, { type: 'finish', stats }),
      (count) => told.push(count),
    )) {
      events.push(event);
    }
    expect(told).toEqual([4]);
    expect(events).toEqual([
      { type: 'thinking', text: 'hm' },
      { type: 'token', text: 'x' },
      { type: 'done', stats: { ...stats, toolCalls: [call] } },
    ]);
  });

  it('gives a done without tool calls when there were none', async () => {
    const events = [];
    for await (const event of toGenerationEvents(stream({ type: 'finish', stats: { ...stats, doneReason: 'stop' } }))) events.push(event);
    expect(events).toEqual([{ type: 'done', stats: { ...stats, doneReason: 'stop' } }]);
    expect('toolCalls' in (events[0] as { stats: object }).stats).toBe(false);
  });
});
