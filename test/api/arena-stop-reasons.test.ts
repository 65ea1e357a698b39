import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ndjsonLines, postJson, startServer, TEST_MODEL, type RunningServer } from '../support/server.js';

/**
 * The comparison stream says why each answer ended, times token lines on the server's clock, and
 * answers a conversation longer than the model's context by leaving out its oldest exchanges.
 */

interface Line {
  instance_id?: string;
  token: string;
  done: boolean;
  eval_s?: number;
  done_reason?: string;
  trimmed_turns?: number;
  error?: string;
  metrics?: { tokens: number; eval_tokens_per_sec: number };
}

let server: RunningServer;
beforeAll(async () => {
  server = await startServer();
});
afterAll(async () => {
  await server?.close();
});

async function stream(history: { role: string; content: string }[], num_predict: number): Promise<Line[]> {
  const response = await postJson(`${server.url}/api/stream_chat`, { history, model_instances: [{ model: TEST_MODEL, num_predict, seed: 4 }] });
  expect(response.status).toBe(200);
  const lines: Line[] = [];
  for await (const line of ndjsonLines<Line>(response)) lines.push(line);
  return lines;
}

const prompt = [{ role: 'user', content: 'Once upon a time' }];

describe('stop reasons', () => {
  it('says length when an answer reached its num_predict, with server-clock times on token lines', async () => {
    const lines = await stream(prompt, 8);
    const done = lines.at(-1)!;
    expect(done).toMatchObject({ done: true, done_reason: 'length' });
    expect(done.trimmed_turns).toBeUndefined();
    const times = lines.filter((l) => !l.done).map((l) => l.eval_s);
    expect(times.length).toBeGreaterThan(0);
    expect(times[0]).toBe(0);
    for (let i = 1; i < times.length; i++) expect(times[i]!).toBeGreaterThanOrEqual(times[i - 1]!);
  });

  it('says context when an answer without a limit filled the context', async () => {
    const lines = await stream(prompt, -1);
    expect(lines.at(-1)).toMatchObject({ done: true, done_reason: 'context' });
  });

  it('leaves out the oldest exchanges of a conversation longer than the context, and says how many', async () => {
    const long = 'The little dog ran to the park and played with a ball all day long. '.repeat(30);
    const history = [
      { role: 'user', content: 'Tell me about the dog.' },
      { role: 'assistant', content: long },
      { role: 'user', content: 'And then?' },
      { role: 'assistant', content: 'Then it slept.' },
      { role: 'user', content: 'What happened next?' },
    ];
    const lines = await stream(history, 16);
    const done = lines.at(-1)!;
    expect(done.error).toBeUndefined();
    expect(done.trimmed_turns).toBe(1);
    expect(['stop', 'length']).toContain(done.done_reason);
    expect(lines.filter((l) => !l.done).length).toBeGreaterThan(0);
  });

  it('still refuses a single message longer than the context, with the reason error', async () => {
    // About 900 tokens in 1,500 characters: only tokenising tells that it cannot fit.
    const lines = await stream([{ role: 'user', content: 'word '.repeat(300) }], 8);
    expect(lines.at(-1)).toMatchObject({ done: true, done_reason: 'error' });
    expect(lines.at(-1)!.error).toMatch(/context/);
  });

  it('refuses a newest message too long by its length alone before starting, but not long earlier exchanges', async () => {
    const huge = 'word '.repeat(20_000);
    const refused = await postJson(`${server.url}/api/stream_chat`, { history: [{ role: 'user', content: huge }], model_instances: [{ model: TEST_MODEL, num_predict: 4 }] });
    expect(refused.status).toBe(400);
    expect(((await refused.json()) as { error: string }).error).toMatch(/more than the 512-token context/);
    const history = [
      { role: 'user', content: huge },
      { role: 'assistant', content: 'It was long.' },
      { role: 'user', content: 'Once upon a time' },
    ];
    const lines = await stream(history, 4);
    expect(lines.at(-1)).toMatchObject({ done: true, trimmed_turns: 1 });
    expect(lines.at(-1)!.error).toBeUndefined();
  });
});
