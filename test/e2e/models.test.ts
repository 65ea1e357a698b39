import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { SHARED_MODELS, startServer, tempDir, type RunningServer } from '../support/server.js';
import { serveFile, type FileServer } from '../support/file-server.js';
import { launchBrowser, openPage, screenshot, type OpenedPage } from './browser.js';

/** The models page in Chromium: details, load/unload, delete, and a pull watched from two browsers. */

const MODEL_FILE = path.join(SHARED_MODELS, 'stories260K.gguf');

let server: RunningServer;
let modelsDir: string;
let host: FileServer;
let browser: Browser;
const opened: OpenedPage[] = [];

beforeAll(async () => {
  // A models directory of its own, holding a link to the shared model (never a copy in the repo).
  modelsDir = tempDir('arena-models-');
  fs.symlinkSync(MODEL_FILE, path.join(modelsDir, 'stories260K.gguf'));
  server = await startServer({ MODELS_DIR: modelsDir, PULL_ALLOW_HOSTS: '127.0.0.1' });
  // ~1 MB in 16 KB chunks, 60 ms apart: about four seconds of download to watch.
  host = await serveFile(MODEL_FILE, { chunkSize: 16 * 1024, delayMs: 60 });
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser?.close();
  await host?.close();
  await server?.close();
});

async function open(): Promise<Page> {
  const o = await openPage(browser, `${server.url}/models`);
  opened.push(o);
  return o.page;
}

const row = (page: Page, name: string) => page.locator(`[data-testid="model-row"][data-model="${name}"]`);
const percentOf = async (page: Page) => Number((await page.getByRole('progressbar').first().getAttribute('aria-valuenow')) ?? -1);

describe('models page', () => {
  it('lists every model with its details', async () => {
    const page = await open();
    const stories = row(page, 'stories260K:latest');
    await stories.waitFor();
    const text = (await stories.textContent())!;
    expect(text).toContain('llama'); // family
    expect(text).toContain('512'); // context
    expect(text).toContain('embedded'); // backend
    expect(await stories.getByTestId('loaded').textContent()).toBe('not loaded');
  });

  it('loads and unloads a model', async () => {
    const page = await open();
    const stories = row(page, 'stories260K:latest');
    await stories.getByRole('button', { name: 'Load' }).click();
    await expect.poll(() => stories.getByTestId('loaded').textContent(), { timeout: 20_000 }).toBe('loaded');
    expect((await (await fetch(`${server.url}/api/models/stories260K:latest`)).json()).loaded).toBe(true);
    await stories.getByRole('button', { name: 'Unload' }).click();
    await expect.poll(() => stories.getByTestId('loaded').textContent(), { timeout: 20_000 }).toBe('not loaded');
  });

  it('pulls a model with a server-side progress bar that every browser sees and a reload keeps', async () => {
    const first = await open();
    const second = await open();
    await first.getByLabel('model source').fill(`${host.url}/models/tiny-tale.gguf`);
    await first.getByRole('button', { name: 'Pull' }).click();

    // Both pages follow the job; one is reloaded mid-download and picks it up again.
    for (const page of [first, second]) {
      await page.getByTestId('pull').first().waitFor();
      await expect.poll(() => percentOf(page), { timeout: 20_000 }).toBeGreaterThan(0);
    }
    expect(await percentOf(second)).toBeLessThan(100);
    await screenshot(first, 'models-pull');
    const before = await percentOf(second);
    await second.reload();
    await second.getByTestId('pull').first().waitFor();
    expect(await percentOf(second)).toBeGreaterThanOrEqual(before);

    // Both watch it climb to 100%, then the model shows in both lists.
    const seen = new Set<number>();
    await expect
      .poll(
        async () => {
          const value = await percentOf(first);
          seen.add(value);
          return value;
        },
        { timeout: 30_000, interval: 100 },
      )
      .toBe(100);
    expect(seen.size).toBeGreaterThan(3);
    await expect.poll(() => percentOf(second), { timeout: 10_000 }).toBe(100);
    for (const page of [first, second]) {
      // 100% of the bytes comes before the digest and GGUF checks, so success may follow a moment later.
      await expect.poll(() => page.getByTestId('pull').first().getAttribute('data-state'), { timeout: 10_000 }).toBe('success');
      await row(page, 'tiny-tale:latest').waitFor();
    }
    await screenshot(first, 'models');
  });

  it('deletes a model only once the deletion is confirmed', async () => {
    const page = await open();
    const tale = row(page, 'tiny-tale:latest');
    await tale.getByRole('button', { name: 'Delete' }).click();
    await tale.getByRole('button', { name: 'Cancel' }).click();
    expect(await tale.count()).toBe(1);
    await tale.getByRole('button', { name: 'Delete' }).click();
    expect(await tale.textContent()).toContain('Delete tiny-tale:latest?');
    await tale.getByRole('button', { name: 'Yes, delete' }).click();
    await expect.poll(() => tale.count()).toBe(0);
    expect(fs.existsSync(path.join(modelsDir, 'tiny-tale.gguf'))).toBe(false);
    expect(await row(page, 'stories260K:latest').count()).toBe(1);
  });

  it('shows a failed pull as failed', async () => {
    const page = await open();
    await page.getByLabel('model source').fill(`${host.url}/missing.bin?x=.gguf`);
    await page.getByRole('button', { name: 'Pull' }).click();
    await expect.poll(() => page.getByTestId('pull').first().getAttribute('data-state'), { timeout: 20_000 }).toBe('error');
  });

  it('raised no errors in any page', () => {
    expect(opened.flatMap((o) => o.errors)).toEqual([]);
  });
});
