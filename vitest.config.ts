import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    // The local server allows 100 connections and tests open real sessions: few files at once.
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // A failing test tells more than a retried one; flaky database tests must be fixed, not retried.
    retry: 0,
  },
});
