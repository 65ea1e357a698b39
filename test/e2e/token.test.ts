import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { startServer, TEST_MODEL, type RunningServer } from '../support/server.js';
import { launchBrowser, openPage, screenshot } from './browser.js';
import { configureInstances, sendPrompt } from './arena-page.js';

/** A server with WEB_CHAT_TOKEN: the app asks for the token once, keeps it, and every page then works. */

const TOKEN = 'web-chat-token-e2e-41c7';
let server: RunningServer;
let browser: Browser;

beforeAll(async () => {
  server = await startServer({ WEB_CHAT_TOKEN: TOKEN });
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser?.close();
  await server?.close();
});

describe('WEB_CHAT_TOKEN in the browser', () => {
  it('asks for the token once, keeps it across reloads, and sends it with every request', async () => {
    const { page, errors } = await openPage(browser, `${server.url}/`);
    const prompt = page.getByLabel('token', { exact: true });
    await prompt.waitFor();
    await screenshot(page, 'token-prompt', false);

    await prompt.fill(TOKEN);
    await prompt.press('Enter');
    await page.getByTestId('instance-editor').first().waitFor();
    expect(await page.evaluate(() => localStorage.getItem('ollama-arena-token'))).toBe(TOKEN);

    // Kept: a reload and the other pages ask nothing, and the streaming requests are authorised too.
    await page.reload();
    await configureInstances(page, [{ model: TEST_MODEL, num_predict: 24, seed: 2 }]);
    expect(await prompt.count()).toBe(0);
    await sendPrompt(page, 'Once upon a time');
    await page.getByTestId('run-links').waitFor();
    expect(await page.getByTestId('column-error').count()).toBe(0);
    expect(Number(await page.locator('[data-metric="tokens"]').textContent())).toBeGreaterThan(0);

    await page.goto(`${server.url}/models`);
    await page.locator('[data-testid="model-row"]').first().waitFor();
    expect(await prompt.count()).toBe(0);
    // Only the 401s before the token was given are allowed as console noise (openPage filters them).
    expect(errors).toEqual([]);
  });

  it('asks again when the kept token is wrong', async () => {
    const { page, context } = await openPage(browser, `${server.url}/leaderboard`);
    await page.evaluate(() => localStorage.setItem('ollama-arena-token', 'stale-token'));
    await page.reload();
    await page.getByLabel('token', { exact: true }).waitFor();
    await context.close();
  });
});
