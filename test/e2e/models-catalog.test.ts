import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { SHARED_MODELS, startServer, TEST_MODEL, tempDir, type RunningServer } from '../support/server.js';
import { launchBrowser, openPage, PHONE, screenshot, type OpenedPage } from './browser.js';

/**
 * The admin's model catalog on the Models page, in Chromium against the real server with
 * WEB_CHAT_TOKEN: description and defaults saved and kept, a model switched off (still on Models,
 * gone from Compare) and on again, reset; at a phone's width and by keyboard; and an API key's user,
 * whom the admin API refuses, gets the plain list without broken controls.
 */

const TOKEN = 'catalog-e2e-token-5d1e';
const OTHER_MODEL = 'tiny-tale:latest';
// Markup that must stay text: rendered as HTML, it would make a <b> element.
const DESCRIPTION = 'TinyStories, 260K parameters: <b>short</b> bedtime tales for tests.\nNot for facts.';

let server: RunningServer;
let browser: Browser;
const opened: OpenedPage[] = [];

beforeAll(async () => {
  // Two names for the test model (links, never copies), so Compare keeps a model once one is switched off.
  const modelsDir = tempDir('arena-catalog-');
  const file = path.join(SHARED_MODELS, 'stories260K.gguf');
  fs.symlinkSync(file, path.join(modelsDir, 'stories260K.gguf'));
  fs.symlinkSync(file, path.join(modelsDir, 'tiny-tale.gguf'));
  server = await startServer({ MODELS_DIR: modelsDir, WEB_CHAT_TOKEN: TOKEN });
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser?.close();
  await server?.close();
});

const asAdmin = { authorization: `Bearer ${TOKEN}` };
const row = (page: Page, name: string) => page.locator(`[data-testid="model-row"][data-model="${name}"]`);
const catalogForm = (page: Page, name: string) => page.getByRole('form', { name: `catalog of ${name}` });
const focusedText = (page: Page) => page.evaluate(() => document.activeElement?.textContent ?? null);

async function catalogEntry(name: string) {
  const body = (await (await fetch(`${server.url}/api/admin/models`, { headers: asAdmin })).json()) as { models: { name: string; description: string; is_active: boolean; parameters: unknown }[] };
  return body.models.find((m) => m.name === name);
}

/** The models Compare offers an instance (a saved instance's unlisted model shows, but is not offered). */
/** Opens the compare page; `choices` then reads its first picker's models. */
async function openCompare(page: Page): Promise<void> {
  await page.goto(`${server.url}/`);
  await page.getByLabel('model of instance 1', { exact: true }).waitFor();
}

/**
 * The models the first picker offers. Read by polling: until /api/models has answered, the picker
 * holds only the instance's saved model, so a single read can come too early.
 */
const choices = (page: Page) => () => page.getByLabel('model of instance 1', { exact: true }).locator('option:not([disabled])').allTextContents();

async function setActive(page: Page, name: string, active: boolean): Promise<void> {
  await row(page, name).getByRole('button', { name: 'Edit catalog' }).click();
  const form = catalogForm(page, name);
  await form.getByLabel(/^active/).setChecked(active);
  await form.getByRole('button', { name: 'Save' }).click();
  await form.waitFor({ state: 'detached' });
}

describe('model catalog on the Models page', () => {
  it('lets an admin describe a model, set its defaults, switch it off and on, and reset it', async () => {
    const o = await openPage(browser, `${server.url}/models`);
    opened.push(o);
    const { page } = o;
    // The token is given once; the page reloads with it and shows the catalog's controls.
    await page.getByLabel('token', { exact: true }).fill(TOKEN);
    await page.getByLabel('token', { exact: true }).press('Enter');
    const stories = row(page, TEST_MODEL);
    await stories.getByRole('button', { name: 'Edit catalog' }).click();
    const form = catalogForm(page, TEST_MODEL);
    expect(await form.getByLabel('description').evaluate((field) => field === document.activeElement)).toBe(true);

    // Out of range: the Arena's range shows as a hint, the server's 400 beside the buttons, nothing saved.
    await form.getByLabel('description').fill(DESCRIPTION);
    await form.getByLabel('temperature', { exact: true }).fill('5');
    expect(await form.getByText('outside the Arena’s 0.01–2').count()).toBe(1);
    await form.getByRole('button', { name: 'Save' }).click();
    expect(await form.getByRole('alert').textContent()).toBe('parameters.temperature must be a number from 0 to 2');
    expect((await catalogEntry(TEST_MODEL))?.description).toBe('');

    await form.getByLabel('temperature', { exact: true }).fill('0.3');
    await form.getByLabel('top_k', { exact: true }).fill('20');
    await form.getByLabel('num_predict', { exact: true }).fill('48');
    await form.getByLabel('seed', { exact: true }).fill('7');
    await form.getByLabel(/^stop/).fill('The end\n\\n\\n');
    await form.getByRole('button', { name: 'Save' }).click();
    await form.waitFor({ state: 'detached' });
    expect(await focusedText(page)).toBe('Edit catalog');
    const saved = { temperature: 0.3, top_k: 20, num_predict: 48, seed: 7, stop: ['The end', '\n\n'] };
    expect(await catalogEntry(TEST_MODEL)).toMatchObject({ description: DESCRIPTION, is_active: true, parameters: saved });

    // Shown at once and after a reload, the description as text: its markup is not HTML.
    for (const reload of [false, true]) {
      if (reload) await page.reload();
      expect(await stories.getByTestId('description').textContent()).toBe(DESCRIPTION);
      expect(await stories.getByTestId('defaults').textContent()).toBe('defaults: temperature 0.3 · top_k 20 · num_predict 48 · seed 7 · stop ["The end","\\n\\n"]');
    }
    expect(await stories.locator('b').count()).toBe(0);
    await stories.getByRole('button', { name: 'Edit catalog' }).click();
    expect(await form.getByLabel('temperature', { exact: true }).inputValue()).toBe('0.3');
    expect(await form.getByLabel(/^stop/).inputValue()).toBe('The end\n\\n\\n');
    await form.getByRole('button', { name: 'Cancel' }).click();

    // Switched off: still on Models (greyed, marked inactive), gone from Compare's picker and /api/models.
    await openCompare(page);
    await expect.poll(choices(page)).toEqual(expect.arrayContaining([TEST_MODEL, OTHER_MODEL]));
    await page.goto(`${server.url}/models`);
    await setActive(page, TEST_MODEL, false);
    expect(await stories.getByTestId('active').textContent()).toBe('inactive');
    expect(await stories.getAttribute('class')).toBe('inactive');
    const listed = (await (await fetch(`${server.url}/api/models`, { headers: asAdmin })).json()) as { models: string[] };
    expect(listed.models).toEqual([OTHER_MODEL]);
    await page.reload();
    expect(await stories.getByTestId('active').textContent()).toBe('inactive');
    await stories.getByRole('button', { name: 'Edit catalog' }).click();
    await form.waitFor();
    await screenshot(page, 'models-catalog');
    await form.getByRole('button', { name: 'Cancel' }).click();
    await openCompare(page);
    await expect.poll(choices(page)).toEqual([OTHER_MODEL]);
    // The first instance, saved on the visit before, keeps its model, marked, so it is not silently changed.
    expect(await page.getByLabel('model of instance 1', { exact: true }).locator('option[disabled]').textContent()).toBe(`${TEST_MODEL} (not listed)`);

    // Switched on again, from the same page.
    await page.goto(`${server.url}/models`);
    await setActive(page, TEST_MODEL, true);
    expect(await stories.getByTestId('active').textContent()).toBe('active');
    expect(await stories.getAttribute('class')).toBeNull();
    await openCompare(page);
    await expect.poll(choices(page)).toEqual(expect.arrayContaining([TEST_MODEL, OTHER_MODEL]));

    // Reset to defaults asks first, then clears the entry.
    await page.goto(`${server.url}/models`);
    await stories.getByRole('button', { name: 'Edit catalog' }).click();
    await form.getByRole('button', { name: 'Reset to defaults' }).click();
    await form.getByRole('button', { name: 'Yes, reset' }).click();
    await form.waitFor({ state: 'detached' });
    expect(await stories.getByTestId('description').count()).toBe(0);
    expect(await stories.getByTestId('defaults').count()).toBe(0);
    expect(await catalogEntry(TEST_MODEL)).toMatchObject({ description: '', is_active: true, parameters: {} });
  });

  it('fits a phone and works from the keyboard', async () => {
    const o = await openPage(browser, `${server.url}/models`, PHONE);
    opened.push(o);
    const { page } = o;
    await page.evaluate((token) => localStorage.setItem('ollama-arena-token', token), TOKEN);
    await page.reload();
    const edit = row(page, TEST_MODEL).getByRole('button', { name: 'Edit catalog' });
    await edit.focus();
    await page.keyboard.press('Enter');
    const form = catalogForm(page, TEST_MODEL);
    await form.waitFor();
    expect(await edit.getAttribute('aria-expanded')).toBe('true');
    // Nothing wider than the screen, the open form included.
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(PHONE.width);
    await page.keyboard.type('Typed without a mouse');
    await page.keyboard.press('Escape');
    await form.waitFor({ state: 'detached' });
    expect(await focusedText(page)).toBe('Edit catalog');
    expect((await catalogEntry(TEST_MODEL))?.description).toBe('');
  });

  it('shows an API key user the models without catalog controls', async () => {
    const created = await fetch(`${server.url}/api/admin/keys`, { method: 'POST', headers: { ...asAdmin, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'catalog-reader' }) });
    const { key } = (await created.json()) as { key: string };
    const { page, errors, context } = await openPage(browser, `${server.url}/models`);
    try {
      await page.evaluate((secret) => localStorage.setItem('ollama-arena-token', secret), key);
      const before = errors.length;
      await page.reload();
      await row(page, TEST_MODEL).waitFor();
      expect(await page.getByRole('button', { name: 'Edit catalog' }).count()).toBe(0);
      expect(await page.getByRole('alert').count()).toBe(0);
      expect(await page.locator('.models-page .error').count()).toBe(0);
      expect(await page.getByLabel('token', { exact: true }).count()).toBe(0);
      expect(await row(page, TEST_MODEL).getByTestId('active').textContent()).toBe('active');
      // The admin API's 403 is all the browser logs (once per mount; React's StrictMode mounts twice in
      // the test build): nothing else failed.
      const logged = errors.slice(before);
      expect(logged.length).toBeGreaterThan(0);
      expect(logged.filter((e) => !/status of 403 .*\/api\/admin\/models\)$/.test(e))).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('raised no errors in any page but the 400 the test asked for', () => {
    const expected = /status of 400 .*\/api\/admin\/models\/stories260K%3Alatest/;
    expect(opened.flatMap((o) => o.errors).filter((e) => !expected.test(e))).toEqual([]);
  });
});
