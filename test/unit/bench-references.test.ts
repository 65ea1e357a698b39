import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnMockProcess, startMockUpstream, type MockUpstream } from '../support/mock-upstream.js';

/**
 * The reference processes the proxy benchmarks measure the gateway against (a bare proxy and the two
 * stack floors) must answer as the mock does, JSON and SSE alike: a reference that drops a stream or
 * mangles a body would make every ratio against it meaningless.
 */
const KINDS = ['proxy', 'floor', 'rawfloor'] as const;

let mock: MockUpstream;
let child: ChildProcess;
/** The URL of each reference, by the argument that started it (`proxy=<the mock's URL>`...). */
let urls: Record<string, string>;

beforeAll(async () => {
  mock = await startMockUpstream({ models: ['mock-openai:latest'] });
  ({ child, urls } = await spawnMockProcess(KINDS.map((kind) => `${kind}=${mock.url}`)));
});

afterAll(async () => {
  child?.kill();
  await mock?.close();
});

async function chat(base: string, stream: boolean): Promise<{ status: number; type: string | null; text: string }> {
  const response = await fetch(`${base}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'mock-openai:latest', messages: [{ role: 'user', content: 'Tell me a story' }], stream }),
  });
  return { status: response.status, type: response.headers.get('content-type'), text: await response.text() };
}

/** The answer with the parts that differ between two calls (ids, times) taken out. */
const comparable = (text: string) => text.replace(/"created":\d+/g, '"created":0').replace(/"id":"[^"]*"/g, '"id":""');

describe.each(KINDS)('the benchmark reference %s', (kind) => {
  it.each([false, true])('answers as the mock does (stream: %s)', async (stream) => {
    const direct = await chat(mock.url, stream);
    const through = await chat(urls[`${kind}=${mock.url}`]!, stream);
    expect(direct.status).toBe(200);
    expect(through.status).toBe(200);
    expect(through.type).toBe(direct.type);
    expect(comparable(through.text)).toBe(comparable(direct.text));
    if (stream) expect(through.text).toContain('data: [DONE]');
  });
});
