import { TestWorkflowEnvironment } from '@temporalio/testing';
import type { TestProject } from 'vitest/node';
import { randomBytes } from 'node:crypto';
import { dropDatabase, migrate } from '../../db/index.js';
import { findOrBuildTemporal } from '../../temporal/binary.js';
import { dynamicConfigArgs, lowLatencyDynamicConfig } from '../../temporal/dev-server.js';
import { customSearchAttributes } from '../../workflows/contracts/search-attributes.js';

declare module 'vitest' {
  export interface ProvidedContext {
    temporalAddress: string;
    databaseUrl: string;
  }
}

/**
 * One real Temporal dev server (in memory) and one freshly migrated PostgreSQL database for the
 * whole run, handed to test files through provide/inject.
 */
export default async function setup(project: TestProject) {
  const binary = findOrBuildTemporal({ cli: process.env.TEMPORAL_CLI });
  const env = await TestWorkflowEnvironment.createLocal({
    server: {
      executable: { type: 'existing-path', path: binary }, searchAttributes: customSearchAttributes, ip: '127.0.0.1', ui: false,
      log: { format: 'pretty', level: 'warn' }, extraArgs: dynamicConfigArgs(lowLatencyDynamicConfig),
    },
  });
  const base = process.env.TEST_DATABASE_BASE ?? 'postgres://postgres@127.0.0.1:5432';
  const databaseUrl = `${base}/mpdp_test_${randomBytes(4).toString('hex')}`;
  await migrate(databaseUrl);
  project.provide('temporalAddress', env.address);
  project.provide('databaseUrl', databaseUrl);
  return async () => {
    await env.teardown();
    if (process.env.KEEP_DB !== '1') await dropDatabase(databaseUrl);
  };
}
