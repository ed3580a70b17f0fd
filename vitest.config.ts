import { svelte } from '@sveltejs/vite-plugin-svelte';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const services = ['./test/setup/global.ts'];

/**
 * Test projects: unit (pure code), workflow (real dev server, plain-function activities),
 * replay (recorded histories), integration (API + worker + Temporal + PostgreSQL + SMTP),
 * browser (all of that + Chromium). One Temporal dev server and one database per run.
 */
export default defineConfig({
  test: {
    // The Temporal native bridge does not survive worker threads.
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 180_000,
    // Pages and pipelines answer within a second on a quiet machine, but CI shares two cores among
    // the server, the worker, PostgreSQL and Chromium: polls wait up to 15 s before failing.
    expect: { poll: { timeout: 15_000 } },
    globalSetup: services,
    projects: [
      { extends: true, test: { name: 'unit', include: ['**/*.unit.test.ts'], exclude: ['node_modules/**', 'web/**'] } },
      // The console's rune modules (*.svelte.ts), compiled by the Svelte plugin; pure code, so no
      // Temporal or database (the project does not extend the root's global setup).
      {
        plugins: [svelte({ configFile: false })],
        resolve: { alias: { $lib: fileURLToPath(new URL('./web/src/lib', import.meta.url)) } },
        test: { name: 'web-unit', include: ['web/src/**/*.unit.test.ts'] },
      },
      { extends: true, test: { name: 'workflow', include: ['test/workflow/**/*.test.ts'] } },
      { extends: true, test: { name: 'replay', include: ['test/replay/**/*.test.ts'] } },
      { extends: true, test: { name: 'integration', include: ['test/integration/**/*.test.ts'] } },
      { extends: true, test: { name: 'browser', include: ['test/browser/**/*.test.ts'] } },
    ],
  },
});
