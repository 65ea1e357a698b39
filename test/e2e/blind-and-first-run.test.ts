import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Response } from 'playwright-core';
import { startServer, tempDir, TEST_MODEL, type RunningServer } from '../support/server.js';
import { LAPTOP, launchBrowser, openPage, PHONE, screenshot, type OpenedPage } from './browser.js';
import { sendPrompt } from './arena-page.js';

/**
 * Blind battles show nothing that could tell a contestant before the vote; a server with no model
 * says where models come from and pulls one; a finished pull stops moving and can be dismissed; a
 * model name stays whole in the delete confirmation.
 */

let server: RunningServer;
let empty: RunningServer;
let browser: Browser;
const opened: OpenedPage[] = [];

beforeAll(async () => {
  server = await startServer();
  // No model at all; loopback pulls allowed, so that a pull from a closed local port fails for real.
  empty = await startServer({ MODELS_DIR: tempDir('arena-no-models-'), PULL_ALLOW_HOSTS: '127.0.0.1' });
  browser = await launchBrowser();
});
afterAll(async () => {
  for (const o of opened) await o.context.close().catch(() => undefined);
  await browser?.close();
  await server?.close();
  await empty?.close();
});

async function open(url: string, viewport = LAPTOP): Promise<OpenedPage> {
  const o = await openPage(browser, url, viewport);
  opened.push(o);
  return o;
}

/** A local port nothing listens on. */
async function closedPort(): Promise<number> {
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as net.AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

describe('blind battles', () => {
  it('shows no speed, length or timing before the vote, and all of it after', async () => {
    const { page, errors } = await open(`${server.url}/battle`);
    const streams: Response[] = [];
    page.on('response', (r) => r.url().endsWith('/api/battles') && streams.push(r));
    await page.getByText(/^Pool:/).click();
    await page.getByLabel(TEST_MODEL).check();
    await sendPrompt(page, 'Tell me a story');
    await expect.poll(() => page.locator('.column.streaming').count(), { timeout: 60_000 }).toBe(0);
    await expect.poll(() => page.getByRole('button', { name: /A better/ }).isEnabled(), { timeout: 60_000 }).toBe(true);

    expect(await page.getByTestId('metrics').count()).toBe(0);
    // The pool lists the model names; the answers' columns and the vote bar name none of them.
    expect(await page.locator('.columns').innerText()).not.toMatch(/tok\/s|TTFT|stories260K/);
    expect(await page.locator('.vote-bar').innerText()).not.toMatch(/stories260K/);
    // Nor does the stream itself carry any timing.
    const lines = (await streams[0]!.text()).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.some((l) => 'eval_s' in l)).toBe(false);
    await screenshot(page, 'battle-blind');

    await page.keyboard.press('1');
    await page.getByTestId('reveal').waitFor();
    await expect.poll(() => page.getByTestId('metrics').count()).toBe(2);
    expect(await page.locator('.columns').innerText()).toMatch(/tok\/s/);
    expect(errors).toEqual([]);
  }, 180_000);
});

describe('first run with no models', () => {
  it('says where models are read from, refuses battles, and pulls with progress that stops and can be dismissed', async () => {
    for (const [name, viewport] of [['laptop', LAPTOP], ['phone', PHONE]] as const) {
      const { page } = await open(`${empty.url}/`, viewport);
      await page.getByTestId('first-run').waitFor({ timeout: 30_000 });
      const text = await page.getByTestId('first-run').innerText();
      expect(text).toContain('MODELS_DIR');
      expect(text).toMatch(/hf:owner\/repo\/file\.gguf/);
      await screenshot(page, `first-run-${name}`);
    }
    const { page, errors } = await open(`${empty.url}/`);
    await page.getByTestId('first-run').waitFor({ timeout: 30_000 });
    await page.getByLabel('model source', { exact: true }).fill(`http://127.0.0.1:${await closedPort()}/tiny.gguf`);
    await page.getByRole('button', { name: 'Pull' }).click();
    const pull = page.getByTestId('pull').first();
    await expect.poll(() => pull.getAttribute('data-state'), { timeout: 60_000 }).toBe('error');
    // A failed download's bar is still: full, not the sliding "size unknown" one.
    const bar = pull.getByRole('progressbar');
    expect(await bar.getAttribute('class')).not.toContain('indeterminate');
    // Filling up may take a short transition; an endless animation never settles within the deadline.
    const running = () => bar.evaluate((b) => b.getAnimations({ subtree: true }).filter((a) => a.playState === 'running').length);
    await expect.poll(running, { timeout: 5_000 }).toBe(0);
    await screenshot(page, 'first-run-failed-pull');
    await pull.getByRole('button', { name: 'Dismiss' }).click();
    await expect.poll(() => page.getByTestId('pull').count()).toBe(0);
    await page.reload();
    await page.getByTestId('first-run').waitFor({ timeout: 30_000 });
    // The server still lists the job; the page keeps it dismissed.
    const jobs = (await (await fetch(`${empty.url}/api/pulls`)).json()) as { pulls: unknown[] };
    expect(jobs.pulls.length).toBeGreaterThan(0);
    await page.getByLabel('model source', { exact: true }).waitFor();
    expect(await page.getByTestId('pull').count()).toBe(0);
    expect(errors).toEqual([]);

    // Battle: nothing to send without a model.
    const battle = await open(`${empty.url}/battle`);
    await battle.page.getByTestId('no-models').waitFor({ timeout: 30_000 });
    await battle.page.getByLabel('prompt', { exact: true }).fill('Hello');
    expect(await battle.page.getByRole('button', { name: /Send/ }).isDisabled()).toBe(true);
  }, 240_000);
});

describe('delete confirmation', () => {
  it('keeps a model name whole at phone width', async () => {
    const { page } = await open(`${server.url}/models`, PHONE);
    const row = page.getByTestId('model-row').first();
    await row.waitFor({ timeout: 30_000 });
    await row.getByRole('button', { name: 'Delete' }).click();
    const name = row.locator('.whole-name');
    await name.waitFor();
    expect(await name.textContent()).toBe(TEST_MODEL);
    expect(await name.evaluate((n) => n.getClientRects().length)).toBe(1);
    await screenshot(page, 'models-delete-confirm', false);
    await row.getByRole('button', { name: 'Cancel' }).click();
  }, 120_000);
});
