import { ensureWebBuilt } from '../../src/web-build.js';
import { ensureServerBuilt } from '../../bin/server-build.mjs';

/**
 * Vitest global setup, once before any test file runs: the browser tests need the built web app, and
 * the tests that start the server as a process of its own run the build `npm start` runs (dist/).
 * Each is built only when it is not the build of the current sources (the check `npm start` makes too).
 */
export default async function setup(): Promise<void> {
  ensureWebBuilt(() => console.log('building the web UI for the browser tests (first run or its sources changed)…'));
  await ensureServerBuilt(() => console.log('building the server for the tests that spawn it (first run or its sources changed)…'));
}
