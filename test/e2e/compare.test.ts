import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page, Request } from 'playwright-core';
import { startServer, TEST_MODEL, type RunningServer } from '../support/server.js';
import { launchBrowser, openPage, PHONE, screenshot, type OpenedPage } from './browser.js';
import { configureInstances, recordAnswerLengths, sendPrompt } from './arena-page.js';
import { CannedBackend } from './canned-backend.js';

/** The compare page in Chromium against the real server and the real model. */

const HOSTILE = [
  'Here is **bold** text and an image: <img src=x onerror="window.__xss=1">',
  '<script>window.__xss=2</script>',
  '```js\nconsole.log("code block");\n```',
  '[click](javascript:window.__xss=3)',
].join('\n\n');

let server: RunningServer;
let canned: CannedBackend;
let browser: Browser;
const opened: OpenedPage[] = [];

beforeAll(async () => {
  canned = new CannedBackend(HOSTILE);
  server = await startServer({}, [canned]);
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser?.close();
  await server?.close();
});

async function open(path = '/', viewport?: typeof PHONE): Promise<Page> {
  const o = await openPage(browser, server.url + path, viewport);
  opened.push(o);
  return o.page;
}

/** The NDJSON a stream_chat request produced, as each instance's whole answer. */
async function answersOf(request: Request): Promise<Record<string, string>> {
  const body = (await (await request.response())!.text()).trim().split('\n').map((l) => JSON.parse(l));
  const answers: Record<string, string> = {};
  for (const line of body) answers[line.instance_id] = (answers[line.instance_id] ?? '') + line.token;
  return answers;
}

async function metricsOf(page: Page, column: number) {
  const metrics = page.getByTestId('column').nth(column).getByTestId('metrics');
  return {
    tokens: Number(await metrics.locator('[data-metric="tokens"]').textContent()),
    tps: Number(await metrics.locator('[data-metric="tps"]').textContent()),
    ttft: (await metrics.locator('[data-metric="ttft"]').textContent()) ?? '',
  };
}

describe('compare page', () => {
  it('streams two instances into two columns at once, with metrics, per-column turns and a run permalink', async () => {
    const page = await open();
    const requests: Request[] = [];
    page.on('request', (r) => r.url().endsWith('/api/stream_chat') && requests.push(r));
    // The second instance is the first, duplicated, with one setting changed.
    await configureInstances(page, [
      { model: TEST_MODEL, num_predict: 120, seed: 7, temperature: 0.2 },
      { temperature: 1.4 },
    ]);
    await expect.poll(() => page.getByTestId('column').count()).toBe(2);
    const lengths = await recordAnswerLengths(page);
    await sendPrompt(page, 'Once upon a time');
    await page.getByTestId('run-links').waitFor();

    // Both columns were being written at the same moment, then both finished.
    const final = (await lengths()).at(-1)!;
    expect(final.every((n) => n > 0)).toBe(true);
    const interleaved = (await lengths()).some(([a, b]) => a! > 0 && b! > 0 && (a! < final[0]! || b! < final[1]!));
    expect(interleaved).toBe(true);
    for (const column of [0, 1]) {
      const m = await metricsOf(page, column);
      expect(m.tokens).toBeGreaterThan(0);
      expect(m.tps).toBeGreaterThan(0);
      expect(m.ttft).toMatch(/^\d+\.\d\d s$/);
    }
    // One request carried both instances, each with its settings, keyed by the instance id of docs/api-contract.md.
    expect(requests).toHaveLength(1);
    const first = JSON.parse(requests[0]!.postData()!);
    expect(first.model_instances).toEqual([
      expect.objectContaining({ id: 'stories260K_latest__0.2_0.9_40_1.1_120_7', model: TEST_MODEL, temperature: 0.2, seed: 7, num_predict: 120 }),
      expect.objectContaining({ id: 'stories260K_latest__1.4_0.9_40_1.1_120_7', temperature: 1.4 }),
    ]);
    const turnOne = await answersOf(requests[0]!);
    const columnTexts = await page.getByTestId('answer').allTextContents();
    const runLink = page.getByTestId('run-links').locator('a');
    await expect.poll(() => runLink.count()).toBe(1);
    const runHref = (await runLink.getAttribute('href'))!;
    await screenshot(page, 'compare');

    // Turn two: each column continues its own conversation, in one request that names the run.
    await sendPrompt(page, 'What happened next?');
    await expect.poll(() => requests.length).toBe(2);
    // The follow-up's turns appear as it starts, busy until answered.
    await expect.poll(() => page.locator('[data-testid="column"] .turn').count()).toBe(4);
    await expect.poll(() => page.locator('[data-testid="column"][aria-busy="true"]').count(), { timeout: 30_000 }).toBe(0);
    const turnTwo = JSON.parse(requests[1]!.postData()!);
    expect(turnTwo.run_id).toBe(runHref.split('/').pop());
    for (const instance of turnTwo.model_instances) {
      expect(instance.history ?? turnTwo.history).toEqual([
        { role: 'user', content: 'Once upon a time' },
        { role: 'assistant', content: turnOne[instance.id] },
        { role: 'user', content: 'What happened next?' },
      ]);
    }
    await expect.poll(() => page.getByTestId('run-links').locator('a').count()).toBe(1);
    expect(await runLink.getAttribute('href')).toBe(runHref);
    const latestTexts = await page.getByTestId('answer').allTextContents();

    // The run's permalink opens in a new tab (the conversation stays) and survives a reload.
    const [popup] = await Promise.all([page.context().waitForEvent('page'), page.getByTestId('run-links').locator('a').first().click()]);
    await popup.getByTestId('run-prompt').waitFor();
    expect(await popup.getByTestId('run-prompt').textContent()).toContain('What happened next?');
    expect(await page.locator('[data-testid="column"] .turn').count()).toBe(4);

    const run = await open(runHref);
    await run.getByTestId('run-prompt').waitFor();
    await run.reload();
    await run.getByTestId('run-prompt').waitFor();
    expect(await run.getByTestId('run-turn').allTextContents()).toEqual(['Once upon a time', 'What happened next?']);
    expect(await run.locator('[data-testid="column"] .turn').count()).toBe(4);
    // Each column's latest answer is the follow-up's; the first is above it.
    expect(await run.getByTestId('answer').allTextContents()).toEqual(latestTexts);
    expect(await run.locator('[data-testid="column"] .turn').first().locator('.col-answer').textContent()).toBe(columnTexts[0]);
    expect(await run.locator('.settings-table tbody tr').count()).toBe(2);
    expect(await run.locator('.settings-table').textContent()).toContain('1.4');
    expect((await metricsOf(run, 0)).tokens).toBeGreaterThan(0);
    await screenshot(run, 'run');

    // Export as JSON downloads the saved run.
    const [download] = await Promise.all([run.waitForEvent('download'), run.getByRole('link', { name: 'JSON' }).click()]);
    const exported = JSON.parse(fs.readFileSync((await download.path())!, 'utf8'));
    expect(exported.id).toBe(runHref.split('/').pop());
    expect(exported.instances).toHaveLength(2);

    // Re-run streams the same instances again (the latest turn) and lands on the new run's permalink.
    await run.getByRole('button', { name: 'Re-run' }).click();
    await run.waitForURL((url) => url.pathname !== runHref, { timeout: 30_000 });
    await run.getByText('re-run of').waitFor();
    expect(await run.getByTestId('answer').count()).toBe(2);
  });

  it('lists the saved runs in the history, newest first, each linking to its permalink', async () => {
    const page = await open('/runs');
    const rows = page.getByTestId('runs').locator('tbody tr');
    await rows.first().waitFor();
    // The two-turn conversation, and the re-run of its latest turn.
    expect(await rows.count()).toBeGreaterThanOrEqual(2);
    expect(await rows.first().textContent()).toContain('re-run');
    await screenshot(page, 'history');
    await page.getByRole('tab', { name: 'Battles' }).click();
    await page.getByText('Nothing saved yet').waitFor();
    await page.getByRole('tab', { name: 'Comparisons' }).click();
    await page.getByRole('link', { name: 'What happened next?' }).first().click();
    await page.getByTestId('run-prompt').waitFor();
    expect(new URL(page.url()).pathname).toMatch(/^\/runs\/[0-9a-f-]{36}$/);
  });

  it('renders Markdown and code from a model, never its HTML, and shows a failing instance in its own column', async () => {
    canned.answer = HOSTILE;
    canned.delayMs = 0;
    const page = await open();
    await configureInstances(page, [{ model: 'canned:latest' }, { model: 'broken:latest' }]);
    await sendPrompt(page, 'Say something dangerous');
    await page.getByTestId('column-error').waitFor();
    await page.getByTestId('run-links').waitFor();

    const good = page.getByTestId('column').nth(0);
    const answer = good.getByTestId('answer');
    expect(await answer.locator('strong').textContent()).toBe('bold');
    expect(await answer.locator('pre code').textContent()).toContain('console.log("code block");');
    expect(await answer.textContent()).toContain('<img src=x onerror="window.__xss=1">');
    expect(await answer.locator('img, script').count()).toBe(0);
    expect(await answer.locator('a[href^="javascript"]').count()).toBe(0);
    expect(await page.evaluate(() => (window as unknown as { __xss?: number }).__xss)).toBeUndefined();

    const bad = page.getByTestId('column').nth(1);
    expect(await bad.getByTestId('column-error').textContent()).toContain('broken on purpose');
    expect(await good.getByTestId('column-error').count()).toBe(0);
  });

  it('stops a comparison: the columns say so and the server stops generating', async () => {
    canned.answer = 'word '.repeat(400);
    canned.delayMs = 40;
    const abortedBefore = canned.aborted;
    const completedBefore = canned.completed;
    const page = await open();
    await configureInstances(page, [{ model: 'canned:latest' }, { model: 'canned:latest', seed: 3 }]);
    await sendPrompt(page, 'Go on and on');
    await expect.poll(async () => ((await page.getByTestId('answer').first().textContent()) ?? '').length).toBeGreaterThan(20);
    await page.getByRole('button', { name: 'Stop' }).click();
    await expect.poll(() => page.getByText('Stopped.').count()).toBe(2);
    await expect.poll(() => canned.aborted - abortedBefore).toBe(2);
    expect(canned.completed).toBe(completedBefore);
  });

  it('sets up a grid of models × temperatures × seeds', async () => {
    const page = await open();
    await page.getByText('Grid: models × temperatures × seeds').click();
    const grid = page.getByTestId('grid-helper');
    await grid.getByLabel(TEST_MODEL).check();
    await grid.getByLabel('canned:latest').check();
    await grid.getByLabel('grid temperatures').fill('0.5, 1.0');
    await grid.getByLabel('grid seeds').fill('1 2');
    await grid.getByRole('button', { name: 'Replace with 8 instances' }).click();
    await expect.poll(() => page.getByTestId('instance-editor').count()).toBe(8);
    expect(await page.getByLabel('temperature of instance 2', { exact: true }).inputValue()).toBe('0.5');
    expect(await page.getByLabel('seed of instance 2', { exact: true }).inputValue()).toBe('2');
    expect(await page.getByLabel('model of instance 5', { exact: true }).inputValue()).toBe('canned:latest');
    // The set-up survives a reload.
    await page.reload();
    await expect.poll(() => page.getByTestId('instance-editor').count()).toBe(8);
  });

  it('is usable at a phone width', async () => {
    canned.answer = 'A short story in **Markdown**, with `code`.';
    canned.delayMs = 10;
    const page = await open('/', PHONE);
    await configureInstances(page, [{ model: TEST_MODEL, num_predict: 40, seed: 3 }, { model: 'canned:latest' }]);
    await page.getByText(/^Instances/).click(); // fold the editors away, as one does on a phone
    await sendPrompt(page, 'Once upon a time');
    await page.getByTestId('run-links').waitFor();
    // Columns stack: nothing is wider than the screen.
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    expect(width).toBeLessThanOrEqual(PHONE.width);
    await screenshot(page, 'compare-phone');
  });

  it('raised no errors in any page', () => {
    expect(opened.flatMap((o) => o.errors)).toEqual([]);
  });
});
