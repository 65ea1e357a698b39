import { describe, expect, it } from 'vitest';
import type { Request } from 'playwright-core';
import { TEST_MODEL } from '../support/server.js';
import { answered, browserSuite, screenshot } from './browser.js';
import { configureInstances, sendPrompt } from './arena-page.js';

/**
 * A conversation on the compare page is one saved run: the follow-up names the run of the first
 * question, History lists the conversation once with its two turns, and its permalink shows both.
 * Chromium against the real server and model.
 */

const suite = browserSuite();
const open = (path = '/') => suite.open(path);

/** Waits until no column streams any more and the run link is shown. */
/** The NDJSON a stream_chat request produced, as each instance's whole answer. */
async function answersOf(request: Request): Promise<Record<string, string>> {
  const lines = (await (await request.response())!.text()).trim().split('\n').map((l) => JSON.parse(l) as { instance_id: string; token: string });
  const answers: Record<string, string> = {};
  for (const line of lines) answers[line.instance_id] = (answers[line.instance_id] ?? '') + line.token;
  return answers;
}


describe('a conversation is one saved run', () => {
  it('saves a question and its follow-up in two columns as one run of two turns', async () => {
    const { page, errors } = await open('/');
    const requests: Request[] = [];
    page.on('request', (r) => r.url().endsWith('/api/stream_chat') && requests.push(r));
    await configureInstances(page, [{ model: TEST_MODEL, num_predict: 12, seed: 3, temperature: 0.2 }, { temperature: 1.3 }]);
    await expect.poll(() => page.getByTestId('column').count()).toBe(2);

    await sendPrompt(page, 'Once upon a time');
    await answered(page);
    const link = page.getByTestId('run-links').locator('a');
    await expect.poll(() => link.count()).toBe(1);
    const runHref = (await link.getAttribute('href'))!;
    const runId = runHref.split('/').pop()!;
    const firstAnswers = await page.getByTestId('answer').allTextContents();
    const firstRaw = await answersOf(requests[0]!);

    await sendPrompt(page, 'What did the cat do next?');
    // The follow-up is one request naming the run; the link stays the conversation's.
    await expect.poll(() => requests.length).toBe(2);
    await expect.poll(() => page.locator('[data-testid="column"] .turn').count(), { timeout: 60_000 }).toBe(4);
    await answered(page);
    const followUp = JSON.parse(requests[1]!.postData()!);
    expect(followUp.run_id).toBe(runId);
    const ids: string[] = followUp.model_instances.map((i: { id: string }) => i.id);
    expect(ids).toEqual(JSON.parse(requests[0]!.postData()!).model_instances.map((i: { id: string }) => i.id));
    // Each column continues its own conversation: its own earlier answer, then the follow-up.
    ids.forEach((id, column) => {
      const instance = followUp.model_instances[column];
      const history = instance.history ?? followUp.history;
      expect(history, id).toEqual([
        { role: 'user', content: 'Once upon a time' },
        { role: 'assistant', content: firstRaw[id] },
        { role: 'user', content: 'What did the cat do next?' },
      ]);
    });
    expect(await (await requests[1]!.response())!.headerValue('x-run-id')).toBe(runId);
    await expect.poll(() => link.count()).toBe(1);
    expect(await link.getAttribute('href')).toBe(runHref);
    const secondAnswers = await page.getByTestId('answer').allTextContents();

    // History: one row for the conversation, with its two turns.
    const history = (await open('/runs')).page;
    const rows = history.getByTestId('runs').locator('tbody tr');
    await rows.first().waitFor();
    expect(await rows.count()).toBe(1);
    expect(await rows.first().getByTestId('turn-count').textContent()).toBe('2');
    await screenshot(history, 'history-conversation');

    // Its permalink shows both turns, in order, in every column.
    await rows.first().getByRole('link').click();
    await history.waitForURL((url) => url.pathname === runHref);
    const turns = history.getByTestId('run-turn');
    await expect.poll(() => turns.count()).toBe(2);
    expect(await turns.allTextContents()).toEqual(['Once upon a time', 'What did the cat do next?']);
    const columns = history.getByTestId('column');
    await expect.poll(() => columns.count()).toBe(2);
    for (const column of [0, 1]) {
      const shown = columns.nth(column).locator('.turn');
      expect(await shown.count()).toBe(2);
      expect(await shown.locator('.turn-prompt').allTextContents()).toEqual(['Once upon a time', 'What did the cat do next?']);
      expect(await shown.nth(0).locator('.col-answer').textContent()).toBe(firstAnswers[column]);
      expect(await shown.nth(1).locator('.col-answer').textContent()).toBe(secondAnswers[column]);
    }
    await screenshot(history, 'run-conversation');

    // "New conversation" starts a run of its own.
    await page.getByRole('button', { name: 'New conversation' }).click();
    await sendPrompt(page, 'A new story');
    await expect.poll(() => requests.length).toBe(3);
    await answered(page);
    expect(JSON.parse(requests[2]!.postData()!).run_id).toBeUndefined();
    await expect.poll(async () => (await link.getAttribute('href')) !== runHref).toBe(true);
    expect(errors).toEqual([]);
  });
});
