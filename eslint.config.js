import tseslint from 'typescript-eslint';

const nodeBuiltins = ['assert', 'buffer', 'child_process', 'cluster', 'crypto', 'dgram', 'dns', 'events', 'fs', 'fs/promises', 'http', 'http2', 'https', 'module', 'net', 'os', 'path', 'perf_hooks', 'process', 'readline', 'stream', 'timers', 'tls', 'url', 'util', 'v8', 'vm', 'worker_threads', 'zlib'];

export default tseslint.config(
  { ignores: ['node_modules/**', 'web/**', 'data/**', '.tools/**', 'test-artifacts/**', 'workflows/__histories__/**', 'cli/bin.mjs', 'eslint.config.js'] },
  {
    files: ['**/*.ts'],
    languageOptions: { parser: tseslint.parser, parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    plugins: { '@typescript-eslint': tseslint.plugin },
    rules: {
      // Every promise is awaited, returned or explicitly voided.
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: false }],
    },
  },
  {
    // Workflow code is replayed: no Node built-ins, no I/O packages, only the workflow SDK and
    // type imports of activities.
    files: ['workflows/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        paths: nodeBuiltins.map((name) => ({ name, message: 'Node built-ins are not deterministic; use activities.' })),
        patterns: [
          { group: ['node:*'], message: 'Node built-ins are not deterministic; use activities.' },
          { regex: '^(?!@temporalio/(workflow|common)$|\\.\\.?/)', message: 'Workflow code may import only @temporalio/workflow, @temporalio/common and its own modules.' },
          { group: ['../activities/*', '../../activities/*'], allowTypeImports: true, message: 'Import only the activity types (import type).' },
          { group: ['../lib/*', '../api/*', '../db/*', '../temporal/*'], message: 'Workflow code may not import server modules.' },
        ],
      }],
      'no-restricted-globals': ['error', { name: 'setTimeout', message: 'Use sleep() or condition() from @temporalio/workflow.' }, { name: 'process', message: 'No process access in workflows.' }],
    },
  },
);
