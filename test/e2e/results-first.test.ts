import { describe, expect, it } from 'vitest';
import type { Page, Request } from 'playwright-core';
import { TEST_MODEL } from '../support/server.js';
import { answered, browserSuite, LAPTOP, PHONE, screenshot } from './browser.js';
import { configureInstances, sendPrompt } from './arena-page.js';

/**
 * The compare page puts results first: settings fold away, the prompt stays above the answers, any
 * number of columns share one row, follow-ups survive a full context, each answer says why it
 * stopped, and each column can be copied, answered again alone, or compared word by word.
 */

const suite = browserSuite();
const open = (path = '/', viewport = LAPTOP) => suite.open(path, viewport);


const box = async (page: Page, selector: string, index = 0) => (await page.locator(selector).nth(index).boundingBox())!;

describe('results first', () => {
  for (const [name, viewport] of [['laptop', LAPTOP], ['phone', PHONE]] as const) {
    it(`folds the settings, keeps the prompt above six columns in one scrolling row (${name})`, async () => {
      const { page, errors } = await open('/', viewport);
      await configureInstances(page, [1, 2, 3, 4, 5, 6].map((seed) => (seed === 1 ? { model: TEST_MODEL, num_predict: 16, seed } : { seed })));
      // The prompt field is within the first screen, and a usable size, before anything is sent,
      // however many instances the settings hold.
      const field = await box(page, 'textarea[aria-label="prompt"]');
      expect(field.y + field.height).toBeLessThan(viewport.height);
      expect(field.height).toBeGreaterThanOrEqual(48);

      await sendPrompt(page, 'Once upon a time');
      await answered(page);
      expect(await page.locator('details.instances').evaluate((d) => (d as HTMLDetailsElement).open)).toBe(false);
      const columns = page.getByTestId('column');
      expect(await columns.count()).toBe(6);
      const tops = await columns.evaluateAll((all) => all.map((c) => Math.round(c.getBoundingClientRect().top)));
      expect(new Set(tops).size).toBe(1);
      const row = page.getByTestId('columns');
      expect(await row.evaluate((r) => r.scrollWidth > r.clientWidth)).toBe(true);
      // The prompt box sits above the answers, and the sent prompt shows in every column.
      const prompt = await box(page, '.prompt-box');
      expect(prompt.y + prompt.height).toBeLessThanOrEqual(tops[0]! + (await page.evaluate(() => window.scrollY)) + 1);
      expect(await page.locator('.turn-prompt').allTextContents()).toEqual(Array(6).fill('Once upon a time'));
      // Nothing covers the first column's metrics.
      const metrics = page.getByTestId('metrics').first();
      await metrics.scrollIntoViewIfNeeded();
      expect(
        await metrics.evaluate((m) => {
          const r = m.getBoundingClientRect();
          return m.contains(document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2));
        }),
      ).toBe(true);
      await page.evaluate(() => window.scrollTo(0, 0));
      await screenshot(page, `compare-results-${name}`, false);
      expect(errors).toEqual([]);
    }, 240_000);
  }
});

describe('follow-ups and stop reasons', () => {
  it('starts new instances with a bounded length, says why an answer stopped, and trims a follow-up that no longer fits', async () => {
    const { page, errors } = await open('/');
    await page.getByTestId('instance-editor').first().waitFor();
    await page.getByRole('button', { name: 'Add instance' }).click();
    const added = await page.getByTestId('instance-editor').count();
    expect(Number(await page.getByLabel(`num_predict of instance ${added}`, { exact: true }).inputValue())).toBe(200);

    // No limit: the answer runs until the model's 512-token context is full.
    await configureInstances(page, [{ model: TEST_MODEL, num_predict: -1, seed: 5 }]);
    await sendPrompt(page, 'Once upon a time');
    await answered(page);
    const reason = page.getByTestId('stop-reason');
    expect(await reason.first().getAttribute('data-reason')).toBe('context');
    expect(await reason.first().textContent()).toMatch(/context is full/);

    await sendPrompt(page, 'What happened next?');
    await expect.poll(() => reason.count(), { timeout: 90_000 }).toBe(2);
    expect(await page.getByTestId('column-error').count()).toBe(0);
    expect(await page.getByTestId('trimmed').textContent()).toMatch(/oldest turn was left out/);
    expect(Number(await page.locator('[data-metric="tokens"]').textContent())).toBeGreaterThan(0);
    await screenshot(page, 'compare-follow-up');
    expect(errors).toEqual([]);
  }, 240_000);

  it('names the limit when an answer reached its num_predict', async () => {
    const { page } = await open('/');
    await configureInstances(page, [{ model: TEST_MODEL, num_predict: 12, seed: 5 }]);
    await sendPrompt(page, 'Once upon a time');
    await answered(page);
    const reason = page.getByTestId('stop-reason').first();
    expect(await reason.getAttribute('data-reason')).toBe('length');
    expect(await reason.textContent()).toContain('12 tokens');
  }, 120_000);
});

describe('per-column actions', () => {
  it('copies an answer, regenerates one column alone and diffs two columns word by word', async () => {
    const { page, context, errors } = await open('/');
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: suite.server.url });
    const requests: Request[] = [];
    page.on('request', (r) => r.url().endsWith('/api/stream_chat') && requests.push(r));
    await configureInstances(page, [{ model: TEST_MODEL, num_predict: 30, seed: 1, temperature: 0.9 }, { seed: 2, temperature: 1.3 }]);
    await sendPrompt(page, 'Once upon a time');
    await answered(page);
    const columns = page.getByTestId('column');
    const first = await columns.nth(0).getByTestId('answer').innerText();

    await columns.nth(0).getByRole('button', { name: 'Copy' }).click();
    await expect.poll(() => page.evaluate(() => navigator.clipboard.readText()).then((t) => t.replace(/\s+/g, ' ').trim())).toBe(first.replace(/\s+/g, ' ').trim());

    const before = requests.length;
    await columns.nth(1).getByRole('button', { name: 'Regenerate' }).click();
    await expect.poll(() => requests.length).toBe(before + 1);
    await expect.poll(() => page.locator('[data-testid="column"][aria-busy="true"]').count(), { timeout: 90_000 }).toBe(0);
    const body = JSON.parse(requests.at(-1)!.postData()!);
    expect(body.model_instances).toHaveLength(1);
    expect(body.model_instances[0].seed).toBe(2);
    expect(body.history).toEqual([{ role: 'user', content: 'Once upon a time' }]);
    // The other column kept its answer; the regenerated one still has one turn.
    expect(await columns.nth(0).getByTestId('answer').innerText()).toBe(first);
    expect(await columns.nth(1).locator('.turn').count()).toBe(1);

    await columns.nth(0).getByLabel('compare the answer of #1 with').selectOption({ label: `#2 ${TEST_MODEL}` });
    const diff = columns.nth(0).getByTestId('diff');
    await diff.waitFor();
    expect(await diff.locator('ins, del').count()).toBeGreaterThan(0);
    await screenshot(page, 'compare-diff', false);
    expect(errors).toEqual([]);
  }, 240_000);
});

describe('live tokens per second', () => {
  it('reads as the final figure does and converges to it', async () => {
    const { page, errors } = await open('/');
    await configureInstances(page, [{ model: TEST_MODEL, num_predict: 400, seed: 9 }]);
    await page.evaluate(() => {
      const w = window as unknown as { __live: number[] };
      w.__live = [];
      new MutationObserver(() => {
        const live = document.querySelector('.metrics.live [data-metric="tps"]');
        const value = Number(live?.textContent);
        if (live && Number.isFinite(value) && value > 0) w.__live.push(value);
      }).observe(document.body, { subtree: true, childList: true, characterData: true });
    });
    const streamed = page.waitForResponse((response) => response.url().endsWith('/api/stream_chat'));
    await sendPrompt(page, 'Once upon a time');
    await answered(page);
    const final = Number(await page.locator('[data-metric="tps"]').textContent());
    const live = await page.evaluate(() => (window as unknown as { __live: number[] }).__live);
    expect(final).toBeGreaterThan(0);
    expect(live.length).toBeGreaterThan(0);
    // The same definition on the same clock: every live figure is tokens so far over the server's
    // seconds since the first token, as some token line of the stream gave them (browser arrival
    // times play no part, however bursty the page or the machine).
    const lines = (await (await streamed).text()).trim().split('\n').map((line) => JSON.parse(line) as { done: boolean; eval_s?: number });
    const rates = lines.filter((line) => !line.done).map((line, i) => (line.eval_s! > 0 ? (i + 1) / line.eval_s! : Infinity));
    for (const value of live) expect(rates.some((rate) => Math.abs(rate - value) <= 0.051), `live ${value}`).toBe(true);
    // And it converges: the last live figure is close to the final one.
    expect(Math.abs(live.at(-1)! - final) / final).toBeLessThan(0.35);
    expect(errors).toEqual([]);
  }, 180_000);
});
