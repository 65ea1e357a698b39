import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { startServer, type RunningServer } from '../support/server.js';
import { launchBrowser, openPage, screenshot, type OpenedPage } from './browser.js';
import { configureInstances } from './arena-page.js';

/**
 * The evaluations journey in Chromium against the real server and model: settings handed over from
 * the compare page fill the form, the evaluation starts, its matrix fills live with a progress bar,
 * the summary shows pass rates, a cell opens, and the CSV export downloads.
 */

let server: RunningServer;
let browser: Browser;
const opened: OpenedPage[] = [];

beforeAll(async () => {
  server = await startServer();
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser?.close();
  await server?.close();
});

describe('evaluations page', () => {
  it('evaluates the compare page settings: form, live progress, summary, a cell, export', { timeout: 120_000 }, async () => {
    const o = await openPage(browser, `${server.url}/`);
    opened.push(o);
    const { page } = o;
    await configureInstances(page, [
      { model: 'stories260K:latest', temperature: 0.5, seed: 1, num_predict: 12 },
      { temperature: 1.3, seed: 2 },
    ]);
    await page.getByRole('button', { name: 'Evaluate these settings' }).click();
    await page.waitForURL(/\/evals$/);
    await expect.poll(() => page.getByTestId('handed-settings').textContent()).toContain('2 configurations from Compare');
    const suite = JSON.parse(await page.getByLabel('Suite', { exact: true }).inputValue());
    expect(suite.model_instances).toMatchObject([
      { model: 'stories260K:latest', temperature: 0.5, seed: 1, num_predict: 12 },
      { model: 'stories260K:latest', temperature: 1.3, seed: 2, num_predict: 12 },
    ]);
    expect(suite.grid).toBeUndefined();

    await page.getByLabel('Prompts', { exact: true }).fill('Once upon a time\nThe little dog\nA big tree');
    await page.getByLabel('Must not contain', { exact: true }).fill('zebra');
    await page.getByRole('button', { name: 'Start evaluation' }).click();
    await page.waitForURL(/\/evals\/[0-9a-f-]+$/);
    await page.getByTestId('eval-progress').waitFor();
    await expect.poll(() => page.getByTestId('eval-status').textContent(), { timeout: 90_000 }).toBe('done');
    await expect.poll(() => page.getByTestId('eval-progress').textContent()).toContain('6/6');
    expect(await page.getByTestId('eval-matrix').locator('button.cell').count()).toBe(6);
    const summary = (await page.getByTestId('eval-summary').textContent()) ?? '';
    expect(summary).toContain('100.0% (3/3)');

    await page.getByTestId('eval-matrix').locator('button.cell').first().click();
    const detail = page.getByTestId('cell-detail');
    await detail.waitFor();
    expect(await detail.textContent()).toMatch(/✓ not_contains[\s\S]*✓ regex/);
    await screenshot(page, 'evals');

    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Export CSV' }).click()]);
    const csv = fs.readFileSync((await download.path())!, 'utf8').trim().split('\r\n');
    expect(csv).toHaveLength(7);
    expect(o.errors, o.errors.join("\n")).toEqual([]);
  });
});
