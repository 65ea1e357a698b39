import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { startServer, TEST_MODEL, type RunningServer } from '../support/server.js';
import { launchBrowser, openPage, PHONE, screenshot, type OpenedPage } from './browser.js';
import { configureInstances, sendPrompt } from './arena-page.js';
import { CannedBackend } from './canned-backend.js';

/** Blind battles and the leaderboard in Chromium, against the real model and a second, canned one. */

let server: RunningServer;
let browser: Browser;
const opened: OpenedPage[] = [];

beforeAll(async () => {
  server = await startServer({}, [new CannedBackend('Once upon a time there was a canned story. The end.', 5)]);
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser?.close();
  await server?.close();
});

async function open(path: string, viewport?: typeof PHONE): Promise<Page> {
  const o = await openPage(browser, server.url + path, viewport);
  opened.push(o);
  return o.page;
}

async function battlesOnBoard(page: Page): Promise<Record<string, number>> {
  await page.getByTestId('leaderboard').or(page.getByText('No votes yet.')).first().waitFor();
  const rows = page.getByTestId('leaderboard').locator('tbody tr');
  const out: Record<string, number> = {};
  for (let i = 0; i < (await rows.count()); i++) {
    out[(await rows.nth(i).locator('.name').textContent())!] = Number(await rows.nth(i).getByTestId('battles').textContent());
  }
  return out;
}

/** Starts a battle between the pool's models and waits until both answers are in. */
async function battle(page: Page, prompt: string): Promise<void> {
  await sendPrompt(page, prompt);
  await expect.poll(() => page.locator('.column.streaming').count(), { timeout: 30_000 }).toBe(0);
  await expect.poll(() => page.getByRole('button', { name: /A better/ }).isEnabled(), { timeout: 30_000 }).toBe(true);
}

describe('battle page', () => {
  it('hides the contestants until the vote, takes one vote by keyboard, and the leaderboard counts it', async () => {
    const board = await open('/leaderboard');
    expect(await battlesOnBoard(board)).toEqual({});

    const page = await open('/battle');
    await page.getByText(/^Pool:/).click();
    await page.getByLabel(TEST_MODEL).check();
    await page.getByLabel('canned:latest').check();
    await battle(page, 'Tell me a story about a cat');

    // Anonymous while voting: no model name anywhere in the columns.
    const heads = (await page.locator('.column-head').allTextContents()).join(' ');
    expect(heads).toContain('Model A');
    expect(heads).toContain('Model B');
    expect(heads).not.toMatch(/stories260K|canned/);
    for (const side of ['a', 'b']) expect((await page.getByTestId(`battle-${side}`).getByTestId('answer').textContent())!.length).toBeGreaterThan(0);
    await screenshot(page, 'battle');

    // "1" votes A better; the answer reveals both names, and the buttons are done.
    await page.keyboard.press('1');
    await page.getByTestId('reveal').waitFor();
    const reveal = (await page.getByTestId('reveal').textContent())!;
    expect(reveal).toContain('A better');
    expect(reveal).toMatch(/A was (stories260K:latest|canned:latest), B was (stories260K:latest|canned:latest)/);
    const winnerHead = (await page.getByTestId('battle-a').locator('.column-head').textContent())!;
    expect(winnerHead).toMatch(/A: (stories260K|canned)/);
    expect(winnerHead).toContain('winner');
    expect(await page.getByRole('button', { name: /B better/ }).isDisabled()).toBe(true);
    await page.keyboard.press('2'); // a second vote is not sent
    expect(await page.getByTestId('reveal').textContent()).toContain('You voted A better');
    await screenshot(page, 'battle-voted');

    await board.reload();
    const counted = await battlesOnBoard(board);
    expect(counted).toEqual({ [TEST_MODEL]: 1, 'canned:latest': 1 });
    const winnerName = reveal.match(/A was (\S+),/)![1]!;
    expect(await board.locator('tbody tr').first().locator('.name').textContent()).toBe(winnerName);

    // A tie by letter, then the leaderboard by configuration lists each configuration.
    await battle(page, 'Another story, please');
    expect(await page.getByTestId('reveal').count()).toBe(0);
    await page.keyboard.press('t');
    await page.getByTestId('reveal').waitFor();
    expect(await page.getByTestId('reveal').textContent()).toContain('Tie');
    await board.reload();
    expect(Object.values(await battlesOnBoard(board))).toEqual([2, 2]);
    await board.getByRole('tab', { name: 'By configuration' }).click();
    await expect.poll(() => board.locator('tbody tr small.config').count()).toBeGreaterThan(0);
    await board.getByRole('tab', { name: 'By model' }).click();
    await board.locator('tbody tr').first().waitFor();
    await screenshot(board, 'leaderboard');

    // The battle's saved run shows the vote and, now that it is cast, who answered.
    await page.getByRole('link', { name: 'Saved run' }).click();
    await page.getByTestId('run-prompt').waitFor();
    expect(await page.locator('h1').textContent()).toContain('Battle');
    expect(await page.getByText('Vote:').textContent()).toContain('Tie');
    expect(await page.getByTestId('run-prompt').textContent()).toContain('Another story, please');
    const titles = (await page.locator('.column-title strong').allTextContents()).join(' ');
    expect(titles).toMatch(/A: (stories260K|canned):latest/);
    expect(titles).toMatch(/B: (stories260K|canned):latest/);
  });

  it('votes with the buttons at a phone width', async () => {
    const page = await open('/battle', PHONE);
    await page.getByText(/^Pool:/).click();
    await page.getByLabel(TEST_MODEL).check();
    await page.getByLabel('canned:latest').check();
    await page.getByText(/^Pool:/).click();
    await battle(page, 'A short story');
    await page.getByRole('button', { name: /Both bad/ }).click();
    await page.getByTestId('reveal').waitFor();
    expect(await page.getByTestId('reveal').textContent()).toContain('Both bad');
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(PHONE.width);
    await screenshot(page, 'battle-phone');
  });

  it("pits the compare page's configurations against each other", async () => {
    const page = await open('/');
    await configureInstances(page, [{ model: TEST_MODEL, temperature: 0.3, num_predict: 30, seed: 5 }, { temperature: 1.5 }]);
    await page.getByRole('link', { name: 'Battle' }).click();
    await page.getByText(/^Pool:/).click();
    await page.getByLabel(/the 2 instances set up on the Compare page/).check();
    await battle(page, 'Once upon a time');
    await page.keyboard.press('b');
    await page.getByTestId('reveal').waitFor();
    const subtitles = await page.locator('.column-title small').allTextContents();
    expect(subtitles.sort()).toEqual(['T 0.3 · p 0.9 · k 40 · rep 1.1 · max 30 · seed 5', 'T 1.5 · p 0.9 · k 40 · rep 1.1 · max 30 · seed 5']);
    const board = await (await fetch(`${server.url}/api/leaderboard?by=config`)).json();
    const keys = board.rows.map((r: { contestant: string }) => r.contestant);
    expect(keys).toEqual(expect.arrayContaining(['stories260K_latest__0.3_0.9_40_1.1_30_5', 'stories260K_latest__1.5_0.9_40_1.1_30_5']));
  });

  it('raised no errors in any page', () => {
    expect(opened.flatMap((o) => o.errors)).toEqual([]);
  });
});
