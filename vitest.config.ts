import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The browser tests need web/dist: built once, before any file runs, when the sources are newer.
    globalSetup: ['test/e2e/global-setup.ts'],
    // Each file starts real servers and runs the real model; two cores fit two files at a time.
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
