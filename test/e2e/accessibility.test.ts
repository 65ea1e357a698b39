import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { postJson, startServer, TEST_MODEL, type RunningServer } from '../support/server.js';
import { axeViolations, LAPTOP, launchBrowser, openPage, PHONE, screenshot, type OpenedPage } from './browser.js';

/**
 * Every page in Chromium, in light and dark mode, checked by axe-core: no violation, a heading on
 * each page, and a page background of its own in both schemes.
 */

const TOKEN = 'a11y-e2e-token-5d21';
let server: RunningServer;
let browser: Browser;
let runId: string;
const opened: OpenedPage[] = [];

beforeAll(async () => {
  server = await startServer({ WEB_CHAT_TOKEN: TOKEN });
  browser = await launchBrowser();
  // A saved run and a voted battle, so the run page, the history and the leaderboard have content.
  const response = await postJson(
    `${server.url}/api/stream_chat`,
    { history: [{ role: 'user', content: 'Once upon a time' }], model_instances: [{ model: TEST_MODEL, num_predict: 16, seed: 3 }] },
    { authorization: `Bearer ${TOKEN}` },
  );
  runId = response.headers.get('x-run-id')!;
  await response.text();
  const battle = await postJson(`${server.url}/api/battles`, { history: [{ role: 'user', content: 'Hello' }], pool: [TEST_MODEL] }, { authorization: `Bearer ${TOKEN}` });
  const battleId = battle.headers.get('x-battle-id')!;
  await battle.text();
  await postJson(`${server.url}/api/battles/${battleId}/vote`, { winner: 'a' }, { authorization: `Bearer ${TOKEN}` });
});
afterAll(async () => {
  for (const o of opened) await o.context.close().catch(() => undefined);
  await browser?.close();
  await server?.close();
});

async function open(path: string, viewport = LAPTOP): Promise<OpenedPage> {
  const o = await openPage(browser, `${server.url}/leaderboard`, viewport);
  opened.push(o);
  await o.page.evaluate((token) => localStorage.setItem('ollama-arena-token', token), TOKEN);
  await o.page.goto(`${server.url}${path}`);
  return o;
}

/** Waits until the page has rendered what it loads (its heading, and no "Loading" left). */
async function settled(page: Page): Promise<void> {
  await page.locator('main h1').first().waitFor({ timeout: 30_000 });
  await expect.poll(() => page.locator('main').innerText(), { timeout: 30_000 }).not.toMatch(/Loading/);
}

const PAGES = ['/', '/battle', '/leaderboard', '/runs', '/models', '/admin/api-keys', '/admin/usage', '/admin/playground'];

describe('accessibility', () => {
  for (const scheme of ['light', 'dark'] as const) {
    it(`has no axe-core violation on any page in ${scheme} mode, a page heading and a page background`, async () => {
      const o = await open('/');
      await o.page.emulateMedia({ colorScheme: scheme });
      const found: Record<string, unknown> = {};
      for (const path of [...PAGES, `/runs/${runId}`]) {
        await o.page.goto(`${server.url}${path}`);
        await settled(o.page);
        // One model's configurations battle each other: their ratings are in the configuration table.
        if (path === '/leaderboard') {
          await o.page.getByRole('tab', { name: 'By configuration' }).click();
          await o.page.getByTestId('leaderboard').waitFor({ timeout: 30_000 });
          expect(await o.page.getByTestId('provisional').count()).toBeGreaterThan(0);
        }
        expect(await o.page.locator('main').innerText(), path).not.toMatch(/seed 0\d\d|SPEC/);
        const violations = await axeViolations(o.page);
        if (violations.length > 0) found[path] = violations;
        expect(await o.page.locator('main h1').count(), path).toBeGreaterThan(0);
        const background = await o.page.evaluate(() => getComputedStyle(document.body).backgroundColor);
        expect(background, path).not.toBe('rgba(0, 0, 0, 0)');
        if (scheme === 'dark') expect(background, path).not.toBe('rgb(255, 255, 255)');
      }
      expect(found).toEqual({});
      await o.page.goto(`${server.url}/leaderboard`);
      await settled(o.page);
      await o.page.getByRole('tab', { name: 'By configuration' }).click();
      await o.page.getByTestId('leaderboard').waitFor({ timeout: 30_000 });
      await screenshot(o.page, `leaderboard-${scheme}`);
      expect(o.errors).toEqual([]);
    }, 400_000);
  }

  it('says when the kept token was refused instead of showing it as accepted', async () => {
    const o = await openPage(browser, `${server.url}/leaderboard`, LAPTOP);
    opened.push(o);
    await o.page.evaluate(() => localStorage.setItem('ollama-arena-token', 'a-wrong-token'));
    await o.page.reload();
    await expect.poll(() => o.page.getByTestId('token-button').textContent(), { timeout: 30_000 }).toBe('Token refused');
  }, 120_000);

  it('reaches and works the compare page by keyboard alone, at phone width too', async () => {
    for (const viewport of [LAPTOP, PHONE]) {
      const { page } = await open('/', viewport);
      await settled(page);
      // Tab from the top until the prompt field has focus: every control before it takes focus in turn.
      await page.locator('body').focus();
      let reached = false;
      for (let i = 0; i < 120 && !reached; i++) {
        await page.keyboard.press('Tab');
        reached = await page.evaluate(() => document.activeElement?.getAttribute('aria-label') === 'prompt');
      }
      expect(reached).toBe(true);
      await page.keyboard.type('Once upon a time');
      await page.keyboard.press('Control+Enter');
      await page.getByTestId('stop-reason').first().waitFor({ timeout: 60_000 });
    }
  }, 240_000);
});
