import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { BatchedLogDestination } from '../../src/http/log-destination.js';
import { tempDir } from '../support/server.js';

/** The server's log destination: every line written whole and in order, whatever its size or script. */

async function fileHolds(file: string, expected: string): Promise<string> {
  const deadline = Date.now() + 5000;
  let text = '';
  while (Date.now() < deadline) {
    text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
    if (text.length >= expected.length) return text;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return text;
}

describe('BatchedLogDestination', () => {
  it('writes lines of any script and size whole and in order, within its flush interval', async () => {
    const file = path.join(tempDir('log-destination-'), 'out.log');
    const destination = new BatchedLogDestination(file);
    const lines = [
      '{"msg":"plain"}\n',
      '{"msg":"ünïcödé — 日本語 — 🦙"}\n',
      `{"msg":"${'x'.repeat(20_000)}"}\n`, // more than what is left of a batch after the others
      `{"msg":"${'é'.repeat(40_000)}"}\n`, // longer than a whole batch
      ...Array.from({ length: 500 }, (_, i) => `{"n":${i},"msg":"many small lines ☃"}\n`),
    ];
    for (const line of lines) destination.write(line);
    const expected = lines.join('');
    // Nothing asks for a flush: the last, partial batch goes out on the timer.
    expect(await fileHolds(file, expected)).toBe(expected);
  });
});
