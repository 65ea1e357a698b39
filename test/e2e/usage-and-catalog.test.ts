import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { postJson, startServer, TEST_MODEL, type RunningServer } from '../support/server.js';
import { LAPTOP, launchBrowser, openPage, screenshot, type OpenedPage } from './browser.js';
import { CannedBackend } from './canned-backend.js';

/**
 * The usage charts give a model one colour in every chart, explain the requests that named no model
 * and why requests by model may add up to more than the total; the catalog form speaks plainly.
 */

let server: RunningServer;
let browser: Browser;
const opened: OpenedPage[] = [];

beforeAll(async () => {
  // Many words: the canned model has few requests but the most tokens, so the two charts rank differently.
  server = await startServer({}, [new CannedBackend('word '.repeat(300))]);
  browser = await launchBrowser();
  const ask = async (model_instances: object[]) => {
    const response = await postJson(`${server.url}/api/stream_chat`, { history: [{ role: 'user', content: 'Hi' }], model_instances });
    await response.text();
  };
  for (const seed of [1, 2, 3]) await ask([{ model: TEST_MODEL, num_predict: 2, seed }]);
  // One request with both models: it counts once in the total, once for each model.
  await ask([{ model: 'canned:latest' }, { model: TEST_MODEL, num_predict: 2, seed: 4 }]);
});
afterAll(async () => {
  for (const o of opened) await o.context.close().catch(() => undefined);
  await browser?.close();
  await server?.close();
});

async function open(path: string): Promise<Page> {
  const o = await openPage(browser, server.url + path, LAPTOP);
  opened.push(o);
  return o.page;
}

/** Each legend entry's colour, per chart title. */
async function legendColours(page: Page, title: string): Promise<Record<string, string>> {
  const chart = page.locator('figure', { hasText: title });
  return chart.locator('.legend li').evaluateAll((items) =>
    Object.fromEntries(items.map((li) => [li.textContent!.trim(), getComputedStyle(li.querySelector('.swatch')!).backgroundColor])),
  );
}

describe('usage charts', () => {
  it('colours each model alike in every chart and explains the no-model series and the sums', async () => {
    const page = await open('/admin/usage');
    const requests = page.locator('figure', { hasText: 'Requests per day, by model' });
    await requests.locator('.legend li', { hasText: 'canned:latest' }).waitFor({ timeout: 60_000 });
    const byRequests = await legendColours(page, 'Requests per day, by model');
    const byTokens = await legendColours(page, 'Tokens per day, by model');
    expect(Object.keys(byRequests)).toEqual(expect.arrayContaining([TEST_MODEL, 'canned:latest']));
    for (const name of Object.keys(byTokens)) if (name in byRequests) expect(byTokens[name], name).toBe(byRequests[name]);
    expect(new Set(Object.values(byRequests)).size).toBe(Object.keys(byRequests).length);
    // Requests that named no model are labelled for what they are.
    expect(Object.keys(byRequests).some((name) => name === '(no model)')).toBe(false);
    expect(await page.getByTestId('usage-note').textContent()).toMatch(/counts once for each/);
    await screenshot(page, 'usage-colours');
  }, 180_000);
});

describe('catalog form', () => {
  it('explains max_tokens without internal references', async () => {
    const page = await open('/models');
    const row = page.getByTestId('model-row').first();
    await row.waitFor({ timeout: 60_000 });
    await row.getByRole('button', { name: 'Edit catalog' }).click();
    const form = page.locator('.catalog-form');
    await form.waitFor();
    const text = await form.innerText();
    expect(text).toContain('the same as num_predict');
    expect(text).not.toMatch(/seed 0\d\d|SPEC/);
  }, 120_000);
});
