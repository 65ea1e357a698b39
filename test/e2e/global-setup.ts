import { ensureWebBuilt } from '../../src/web-build.js';

/**
 * Vitest global setup: the browser tests need the built web app, so it is built once before any test
 * file runs, unless web/dist is the build of the current sources (the check `npm start` makes too).
 */
export default function setup(): void {
  ensureWebBuilt(() => console.log('building the web UI for the browser tests (first run or its sources changed)…'));
}
