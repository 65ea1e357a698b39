import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { SHARED_MODELS, startServer, tempDir, type RunningServer } from '../support/server.js';
import { launchBrowser, openPage, type OpenedPage } from './browser.js';

/**
 * "Save as model" from a compare column, in Chromium against the real server: the column's model,
 * settings and system prompt become a model of its own through /api/create. The models directory is a
 * temp copy, since creating a model writes into it.
 */

let server: RunningServer;
let browser: Browser;
const opened: OpenedPage[] = [];

beforeAll(async () => {
  const modelsDir = tempDir('save-as-model-');
  fs.copyFileSync(path.join(SHARED_MODELS, 'stories260K.gguf'), path.join(modelsDir, 'stories260K.gguf'));
  server = await startServer({ MODELS_DIR: modelsDir });
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser?.close();
  await server?.close();
});

describe('save as model', () => {
  it("saves a compare column's configuration as a model that /api/show describes", async () => {
    const o = await openPage(browser, server.url + '/');
    opened.push(o);
    const { page } = o;
    const column = page.getByTestId('column').first();
    await column.getByTestId('save-as-model').click();
    await column.getByTestId('model-name').fill('saved-story');
    await column.getByRole('button', { name: 'Save', exact: true }).click();
    await expect.poll(async () => (await column.getByTestId('saved-model').textContent()) ?? '', { timeout: 10_000 }).toBe('Saved as saved-story:latest');
    const shown = (await (await fetch(`${server.url}/api/show`, { method: 'POST', body: JSON.stringify({ model: 'saved-story' }), headers: { 'content-type': 'application/json' } })).json()) as { parameters: string };
    // The Arena's defaults travel with the model: temperature 0.7, top_k 40 and the rest.
    expect(shown.parameters).toMatch(/temperature\s+0\.7/);
    expect(shown.parameters).toMatch(/top_k\s+40/);
    const tags = (await (await fetch(`${server.url}/api/tags`)).json()) as { models: { name: string }[] };
    expect(tags.models.map((m) => m.name)).toContain('saved-story:latest');
  });
});
