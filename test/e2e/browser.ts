import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, expect } from 'vitest';
import { REPO_ROOT, startServer, type RunningServer } from '../support/server.js';

/**
 * Every e2e test saves the page it checked. With UPDATE_SCREENSHOTS=1 they become the README's
 * (docs/screenshots); otherwise they go to test-results/, so that a test run never edits tracked files.
 */
const SCREENSHOTS = path.join(REPO_ROOT, process.env.UPDATE_SCREENSHOTS === '1' ? 'docs/screenshots' : 'test-results/screenshots');
const DESKTOP = { width: 1280, height: 860 };
export const PHONE = { width: 390, height: 844 };
/** The laptop size the web UI is judged at. */
export const LAPTOP = { width: 1440, height: 900 };

/** Debian's Chromium as this machine runs it: headless, no sandbox (root), no background traffic. */
export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
}

export interface OpenedPage {
  context: BrowserContext;
  page: Page;
  /** Uncaught exceptions and console errors of the page, which a test expects to stay empty. */
  errors: string[];
}

/** A fresh browser profile (its own localStorage) with one page at `url`. */
export async function openPage(browser: Browser, url: string, viewport = DESKTOP): Promise<OpenedPage> {
  const context = await browser.newContext({ viewport, acceptDownloads: true });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(error.message));
  page.on('console', (message) => {
    // 401s are expected where a test checks the token prompt; anything else is a real error.
    if (message.type() === 'error' && !/status of 401/.test(message.text())) errors.push(`${message.text()} (${message.location().url})`);
  });
  await page.goto(url);
  return { context, page, errors };
}

export async function screenshot(page: Page, name: string, fullPage = true): Promise<void> {
  fs.mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage });
}

const AXE = path.join(REPO_ROOT, 'node_modules/axe-core/axe.min.js');

/** axe-core's violations on the page as it is now: rule id, impact and the elements it names. */
export async function axeViolations(page: Page): Promise<{ id: string; impact: string | null; targets: string[]; summary: string }[]> {
  if (!(await page.evaluate(() => 'axe' in window))) await page.addScriptTag({ path: AXE });
  return page.evaluate(async () => {
    const axe = (window as unknown as { axe: { run: (context: Document, options: object) => Promise<{ violations: { id: string; impact: string | null; nodes: { target: string[]; failureSummary?: string }[] }[] }> } }).axe;
    const result = await axe.run(document, { resultTypes: ['violations'] });
    return result.violations.map((v) => ({ id: v.id, impact: v.impact, targets: v.nodes.map((n) => n.target.join(' ')), summary: v.nodes[0]?.failureSummary ?? '' }));
  });
}

/**
 * A test file's real server and browser, started before its tests and closed after them with every
 * page they opened.
 */
export function browserSuite(env: Record<string, string> = {}) {
  let server: RunningServer | undefined;
  let browser: Browser | undefined;
  const opened: OpenedPage[] = [];
  beforeAll(async () => {
    server = await startServer(env);
    browser = await launchBrowser();
  });
  afterAll(async () => {
    for (const o of opened) await o.context.close().catch(() => undefined);
    await browser?.close();
    await server?.close();
  });
  return {
    get server(): RunningServer {
      return server!;
    },
    async open(path = '/', viewport = DESKTOP): Promise<OpenedPage> {
      const o = await openPage(browser!, server!.url + path, viewport);
      opened.push(o);
      return o;
    },
  };
}

/** Waits until no column of the Arena page streams any more and the run is saved. */
export async function answered(page: Page, timeout = 90_000): Promise<void> {
  await page.getByTestId('run-links').waitFor({ timeout });
  await expect.poll(() => page.locator('[data-testid="column"][aria-busy="true"]').count(), { timeout }).toBe(0);
}
