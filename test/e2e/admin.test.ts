import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { startServer, TEST_MODEL, type RunningServer } from '../support/server.js';
import { launchBrowser, openPage, screenshot } from './browser.js';
import { buildRequest, curlCommand, readAnswer, type PlaygroundForm } from '../../web/src/pages/admin/playgroundRequest.js';

const ADMIN_TOKEN = 'admin-e2e-token-7f3c9a';
const run = promisify(execFile);

function form(overrides: Partial<PlaygroundForm> = {}): PlaygroundForm {
  return {
    api: 'ollama-chat',
    model: TEST_MODEL,
    system: '',
    prompt: 'Once upon a time',
    stream: false,
    events: false,
    params: { temperature: '0', top_p: '', top_k: '', repeat_penalty: '', max_tokens: '16', seed: '7', stop: '' },
    ...overrides,
  };
}

describe('playground requests', () => {
  it('puts every parameter where each API expects it and leaves empty ones out', () => {
    const params = { temperature: '0.5', top_p: '0.9', top_k: '40', repeat_penalty: '1.1', max_tokens: '32', seed: '3', stop: '\n\nThe end\nfoo, bar\n\\n\\n' };
    const chat = buildRequest(form({ system: 'Be brief.', params, stream: true }));
    expect(chat).toEqual({
      method: 'POST',
      path: '/api/chat',
      headers: { 'Content-Type': 'application/json' },
      body: {
        model: TEST_MODEL,
        messages: [
          { role: 'system', content: 'Be brief.' },
          { role: 'user', content: 'Once upon a time' },
        ],
        stream: true,
        options: { temperature: 0.5, top_p: 0.9, top_k: 40, repeat_penalty: 1.1, seed: 3, num_predict: 32, stop: ['The end', 'foo, bar', '\n\n'] },
      },
    });
    const generate = buildRequest(form({ api: 'ollama-generate', system: 'Be brief.' }));
    expect(generate.path).toBe('/api/generate');
    expect(generate.body).toEqual({ model: TEST_MODEL, prompt: 'Once upon a time', system: 'Be brief.', stream: false, options: { temperature: 0, seed: 7, num_predict: 16 } });
    const openai = buildRequest(form({ api: 'openai-chat', params }));
    expect(openai.path).toBe('/v1/chat/completions');
    expect(openai.body).toMatchObject({ max_tokens: 32, temperature: 0.5, top_k: 40, repeat_penalty: 1.1, stop: ['The end', 'foo, bar', '\n\n'], stream: false });
    expect(openai.body).not.toHaveProperty('options');
    // The extended Ollama API's SSE is asked with Accept, on the Ollama routes only, and only when streamed.
    expect(buildRequest(form({ stream: true, events: true })).headers).toEqual({ 'Content-Type': 'application/json', Accept: 'text/event-stream' });
    expect(buildRequest(form({ stream: false, events: true })).headers).not.toHaveProperty('Accept');
    expect(buildRequest(form({ api: 'openai-chat', stream: true, events: true })).headers).not.toHaveProperty('Accept');
    const bare = buildRequest(form({ params: { temperature: '', top_p: '', top_k: '', repeat_penalty: '', max_tokens: '', seed: '', stop: '' } }));
    expect(bare.body).toEqual({ model: TEST_MODEL, messages: [{ role: 'user', content: 'Once upon a time' }], stream: false });
  });

  it('writes a curl line whose arguments survive the shell, quotes included', async () => {
    const request = buildRequest(form({ prompt: `It's Tom's "day" $HOME \\ done`, stream: true }));
    const line = curlCommand('http://127.0.0.1:7860', request, '<your key>');
    expect(line.startsWith('curl -N -X POST ')).toBe(true);
    // The shell splits the line into arguments; they must be exactly what curl is meant to get.
    const { stdout } = await run('sh', ['-c', `set -- ${line.slice('curl '.length)}; for a in "$@"; do printf '%s\\0' "$a"; done`]);
    expect(stdout.split('\0').slice(0, -1)).toEqual([
      '-N', '-X', 'POST', 'http://127.0.0.1:7860/api/chat',
      '-H', 'Authorization: Bearer <your key>',
      '-H', 'Content-Type: application/json',
      '-d', JSON.stringify(request.body),
    ]);
    expect(curlCommand('http://h', request, undefined)).not.toContain('Authorization');
  });

  it('reads the answer of each API, streamed or not, and their errors', () => {
    expect(readAnswer('{"message":{"role":"assistant","content":"Hi"},"done":false}\n{"message":{"role":"assistant","content":" there"},"done":true}\n').text).toBe('Hi there');
    expect(readAnswer('{"response":"Once","done":false}\n{"response":" more","done":true}').text).toBe('Once more');
    expect(readAnswer('data: {"choices":[{"delta":{"content":"A"}}]}\n\ndata: {"choices":[{"delta":{"content":"B"}}]}\n\ndata: [DONE]\n').text).toBe('AB');
    expect(readAnswer(JSON.stringify({ choices: [{ message: { content: 'whole' } }] }, null, 2)).text).toBe('whole');
    expect(readAnswer('data: {"token":"Once","done":false}\n\ndata: {"token":" upon","done":false}\n\ndata: {"done":true,"full_text":"Once upon"}\n').text).toBe('Once upon');
    expect(readAnswer('{"error":"Invalid API key"}').error).toBe('Invalid API key');
    expect(readAnswer('{"error":{"message":"Rate limit","type":"rate_limit_error"}}').error).toBe('Rate limit');
  });
});

describe('admin pages in Chromium', () => {
  let server: RunningServer;
  let browser: Browser;
  let page: Page;
  let errors: string[];

  beforeAll(async () => {
    server = await startServer({ WEB_CHAT_TOKEN: ADMIN_TOKEN });
    browser = await launchBrowser();
    const opened = await openPage(browser, `${server.url}/admin/api-keys`);
    ({ page, errors } = opened);
    // The copy button uses the asynchronous clipboard API, which asks the user; the test says yes.
    await opened.context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.url });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  const keyRow = (name: string) => page.locator('table[aria-label="API keys"] tbody tr', { hasText: name });

  it('creates a key, shows its secret once, uses it from the playground, shows its usage and revokes it', async () => {
    // The token is asked once, on the first 401, and kept for the next pages.
    await page.getByLabel('token').fill(ADMIN_TOKEN);
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByText('No keys yet').waitFor();

    await page.getByLabel('key name').fill('playground-e2e');
    await page.getByLabel('tier').selectOption('premium');
    await page.getByLabel('tpm').fill('100000');
    await page.getByRole('checkbox', { name: TEST_MODEL }).check();
    await page.getByRole('checkbox', { name: /May load and unload models/ }).check();
    await page.getByRole('button', { name: 'Create key' }).click();
    const secretField = page.getByTestId('secret');
    await secretField.waitFor();
    const secret = await secretField.inputValue();
    expect(secret).toMatch(/^oa-/);

    await page.getByRole('button', { name: 'Copy', exact: true }).click();
    await page.getByRole('button', { name: 'Copied ✓' }).waitFor();
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(secret);

    // Listed with its prefix, tier and limits; once the box is closed the secret is nowhere on the page.
    const row = keyRow('playground-e2e');
    await row.waitFor();
    const listedPrefix = (await row.locator('code.prefix').innerText()).replace('…', '');
    expect(secret.startsWith(listedPrefix)).toBe(true);
    await expect.poll(() => row.innerText()).toContain('premium');
    expect(await row.innerText()).toMatch(/300 req\/min[\s\S]*100,000 tok\/min/);
    expect(await row.getByTestId('key-state').innerText()).toBe('active');
    // The manage scope ticked in the form is the key's, shown beside its tier.
    expect(await row.locator('.badge.manage').innerText()).toBe('manage');
    await page.getByRole('button', { name: 'I have saved it' }).click();
    await secretField.waitFor({ state: 'detached' });
    expect(await page.content()).not.toContain(secret);

    // The playground, with the new key, streams an answer from the real model.
    await page.getByRole('link', { name: 'Playground' }).click();
    await expect.poll(() => page.getByLabel('model').inputValue()).toBe(TEST_MODEL);
    await page.getByLabel('API key').fill(secret);
    await page.getByLabel('temperature').fill('0');
    await page.getByLabel('max_tokens').fill('24');
    await page.getByLabel('seed').fill('42');
    await page.getByRole('button', { name: 'Send' }).click();
    await expect.poll(() => page.getByTestId('response-status').innerText(), { timeout: 30_000 }).toMatch(/HTTP 200.*total/);
    const streamedAnswer = await page.getByTestId('answer').innerText();
    expect(streamedAnswer.trim().length).toBeGreaterThan(0);
    const rawLines = (await page.getByTestId('raw-response').innerText()).split('\n').filter(Boolean);
    expect(rawLines.length).toBeGreaterThan(1);
    expect(JSON.parse(rawLines.at(-1)!)).toMatchObject({ done: true, model: TEST_MODEL });
    // The key's limit shows in the answer's headers: the request was made with the key, not the admin token.
    expect(await page.locator('pre.headers').innerText()).toContain('x-ratelimit-limit: 300');
    const rawRequest = await page.getByTestId('raw-request').innerText();
    expect(rawRequest).toContain('Authorization: Bearer <your key>');
    expect(JSON.parse(rawRequest.slice(rawRequest.indexOf('{')))).toMatchObject({ model: TEST_MODEL, stream: true, options: { temperature: 0, num_predict: 24, seed: 42 } });
    expect(await page.content()).not.toContain(secret);

    // The curl line copied "with the key in use" reproduces the request: run it and get the same answer.
    await page.getByLabel('stream').uncheck();
    await page.getByRole('button', { name: 'Copy curl with the key in use' }).click();
    const curl = await page.evaluate(() => navigator.clipboard.readText());
    expect(curl).toContain(`Authorization: Bearer ${secret}`);
    expect((await page.getByTestId('curl').innerText())).toContain('Bearer <your key>');
    const { stdout } = await run('sh', ['-c', `${curl} --silent --show-error`]);
    expect(readAnswer(stdout).text.trim()).toBe(streamedAnswer.trim());

    // The OpenAI API, not streamed, with the same key and settings gives an answer too.
    await page.getByLabel('API', { exact: true }).selectOption('openai-chat');
    await page.getByRole('button', { name: 'Send' }).click();
    await expect.poll(() => page.getByTestId('response-status').innerText(), { timeout: 30_000 }).toMatch(/HTTP 200.*total/);
    expect(JSON.parse(await page.getByTestId('raw-response').innerText())).toMatchObject({ object: 'chat.completion', model: TEST_MODEL });
    const openAiAnswer = await page.getByTestId('answer').innerText();
    expect(openAiAnswer.trim().length).toBeGreaterThan(0);
    await screenshot(page, 'admin-playground');

    // Streamed, the OpenAI API answers server-sent events, shown raw, and the same text.
    await page.getByLabel('stream').check();
    await page.getByRole('button', { name: 'Send' }).click();
    await expect.poll(() => page.getByTestId('response-status').innerText(), { timeout: 30_000 }).toMatch(/HTTP 200.*total/);
    const sseLines = (await page.getByTestId('raw-response').innerText()).split('\n').filter(Boolean);
    expect(sseLines.every((line) => line.startsWith('data: '))).toBe(true);
    expect(sseLines.at(-1)).toBe('data: [DONE]');
    expect(await page.getByTestId('answer').innerText()).toBe(openAiAnswer);

    // Usage: the key's requests (three from the page, one from curl) in the charts and the totals.
    await page.getByRole('link', { name: 'Usage' }).click();
    const byKey = page.locator('table[aria-label="Totals by key"]');
    await expect.poll(() => byKey.innerText()).toMatch(/playground-e2e \(oa-[^)]*\)\s+4\b/);
    expect(await page.locator('svg[aria-label="Requests per day, by key"] rect').count()).toBeGreaterThan(0);
    expect(await page.locator('table[aria-label="Totals by model"]').innerText()).toContain(TEST_MODEL);
    await screenshot(page, 'admin-usage');

    // Revoke, after a confirmation; the key is marked revoked and refused from then on.
    await page.getByRole('link', { name: 'API keys' }).click();
    await expect.poll(() => keyRow('playground-e2e').getByTestId('key-requests').innerText()).toBe('4');
    await keyRow('playground-e2e').getByRole('button', { name: 'Revoke' }).click();
    await keyRow('playground-e2e').getByRole('button', { name: 'Yes, revoke' }).click();
    await expect.poll(() => keyRow('playground-e2e').getByTestId('key-state').innerText()).toBe('revoked');
    const refused = await fetch(`${server.url}/api/models`, { headers: { authorization: `Bearer ${secret}` } });
    expect(refused.status).toBe(401);

    // A key's "by day" link opens the usage page filtered to that key.
    const keyId = await keyRow('playground-e2e').getAttribute('data-key-id');
    await keyRow('playground-e2e').getByRole('link', { name: 'by day →' }).click();
    await expect.poll(() => page.getByLabel('key filter').inputValue()).toBe(keyId);
    await expect.poll(() => page.locator('table[aria-label="Totals by key"] tbody tr').count()).toBe(1);
    expect(await page.locator('table[aria-label="Totals by key"]').innerText()).toContain('playground-e2e');
  });

  it('rotates a key: the new secret is shown once and the old one stops working', async () => {
    await page.goto(`${server.url}/admin/api-keys`);
    await page.getByLabel('key name').fill('rotate-e2e');
    await page.getByLabel('rpm').fill('120');
    await page.getByLabel('expires').fill('2030-01-02T03:04');
    await page.getByRole('button', { name: 'Create key' }).click();
    const first = await page.getByTestId('secret').inputValue();
    await page.getByRole('button', { name: 'I have saved it' }).click();
    await expect.poll(() => keyRow('rotate-e2e').innerText()).toContain('120 req/min');
    // The expiry was typed in local time and is shown back in local time.
    expect(await keyRow('rotate-e2e').innerText()).toContain(new Date('2030-01-02T03:04').toLocaleString(undefined, { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' }));

    await keyRow('rotate-e2e').getByRole('button', { name: 'Rotate' }).click();
    await keyRow('rotate-e2e').getByRole('button', { name: 'Yes, rotate' }).click();
    await expect.poll(() => page.getByTestId('secret').inputValue()).not.toBe(first);
    const second = await page.getByTestId('secret').inputValue();
    expect(second).toMatch(/^oa-/);
    const status = async (key: string) => (await fetch(`${server.url}/api/models`, { headers: { authorization: `Bearer ${key}` } })).status;
    expect(await status(first)).toBe(401);
    expect(await status(second)).toBe(200);
    await page.getByRole('button', { name: 'I have saved it' }).click();
    await expect.poll(async () => (await page.content()).includes(second)).toBe(false);
    await screenshot(page, 'admin-api-keys');
    expect(errors).toEqual([]);
  });

  it('stops a streamed answer midway', async () => {
    await page.goto(`${server.url}/admin/playground`);
    await expect.poll(() => page.getByLabel('model').inputValue()).toBe(TEST_MODEL);
    await page.getByLabel('max_tokens').fill('400');
    await page.getByRole('button', { name: 'Send' }).click();
    await expect.poll(async () => (await page.getByTestId('raw-response').innerText()).split('\n').length, { timeout: 30_000 }).toBeGreaterThan(3);
    await page.getByRole('button', { name: 'Stop' }).click();
    await page.getByText('stopped', { exact: true }).waitFor();
    const lines = (await page.getByTestId('raw-response').innerText()).split('\n').filter(Boolean);
    expect(lines.length).toBeLessThan(400);
    expect(JSON.parse(lines.at(-1)!)).toMatchObject({ done: false });
    expect(await page.getByRole('button', { name: 'Send' }).isEnabled()).toBe(true);
  });

  it("streams the extended Ollama API's server-sent events from /api/generate", async () => {
    await page.goto(`${server.url}/admin/playground`);
    await expect.poll(() => page.getByLabel('model').inputValue()).toBe(TEST_MODEL);
    await page.getByLabel('API', { exact: true }).selectOption('ollama-generate');
    await page.getByLabel('server-sent events').check();
    await page.getByLabel('max_tokens').fill('16');
    expect(await page.getByTestId('raw-request').innerText()).toContain('Accept: text/event-stream');
    expect(await page.getByTestId('curl').innerText()).toContain(`-H 'Accept: text/event-stream'`);
    await page.getByRole('button', { name: 'Send' }).click();
    await expect.poll(() => page.getByTestId('response-status').innerText(), { timeout: 30_000 }).toMatch(/HTTP 200.*total/);
    expect(await page.locator('pre.headers').innerText()).toContain('content-type: text/event-stream');
    const events = (await page.getByTestId('raw-response').innerText()).split('\n').filter(Boolean);
    expect(events.every((line) => line.startsWith('data: '))).toBe(true);
    const last = JSON.parse(events.at(-1)!.slice('data: '.length)) as { done: boolean; full_text: string };
    expect(last.done).toBe(true);
    expect(last.full_text.length).toBeGreaterThan(0);
    expect((await page.getByTestId('answer').innerText()).trim()).toBe(last.full_text.trim());
  });

  it('says why no key can be created on a server without an admin token', async () => {
    const open = await startServer();
    const { context, page: openPageTab } = await openPage(browser, `${open.url}/admin/api-keys`);
    try {
      await openPageTab.getByText('No keys yet').waitFor();
      await openPageTab.getByLabel('key name').fill('nobody-governs-me');
      await openPageTab.getByRole('button', { name: 'Create key' }).click();
      await openPageTab.getByText(/Set WEB_CHAT_TOKEN before creating API keys/).waitFor();
      expect(await openPageTab.getByTestId('secret').count()).toBe(0);
    } finally {
      await context.close();
      await open.close();
    }
  });

  it('copies the secret with the fallback when the clipboard API is refused', async () => {
    const { context, page: plain } = await openPage(browser, `${server.url}/health`);
    try {
      // Like a page served over plain http on another host: the asynchronous clipboard API refuses.
      await plain.addInitScript(() => {
        Object.defineProperty(navigator.clipboard, 'writeText', { value: () => Promise.reject(new DOMException('refused', 'NotAllowedError')) });
      });
      await context.grantPermissions(['clipboard-read'], { origin: server.url });
      await plain.goto(`${server.url}/admin/api-keys`);
      await plain.evaluate((token) => localStorage.setItem('ollama-arena-token', token), ADMIN_TOKEN);
      await plain.reload();
      await plain.getByLabel('key name').fill('fallback-e2e');
      await plain.getByRole('button', { name: 'Create key' }).click();
      const secret = await plain.getByTestId('secret').inputValue();
      await plain.getByRole('button', { name: 'Copy', exact: true }).click();
      await plain.getByRole('button', { name: 'Copied ✓' }).waitFor();
      expect(await plain.evaluate(() => navigator.clipboard.readText())).toBe(secret);
    } finally {
      await context.close();
    }
  });
});
