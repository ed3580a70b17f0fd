import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadConfig, settingsDoc } from '../lib/config.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const compose = parse(readFileSync(`${root}docker-compose.yml`, 'utf8'), { merge: true }) as { services: Record<string, { environment?: Record<string, string>; command?: string | string[] }> };
const readme = readFileSync(`${root}README.md`, 'utf8');

describe('docker-compose.yml stays in step with the configuration and the README', () => {
  it('has every service of the topology', () => {
    expect(Object.keys(compose.services).sort()).toEqual(['api', 'mail', 'postgres', 'temporal', 'worker']);
  });

  it('gives api and worker only settings the config knows, and they parse', () => {
    for (const name of ['api', 'worker']) {
      const env = compose.services[name]!.environment!;
      for (const key of Object.keys(env)) expect(Object.keys(settingsDoc), `${name}: ${key}`).toContain(key);
      expect(() => loadConfig({ ...env, DEMO_PASSWORD: undefined })).not.toThrow();
    }
  });

  it('registers the search attributes the workflows use', () => {
    const cmd = String(compose.services.temporal!.command);
    for (const sa of ['WorkspaceId', 'MiniProgramId', 'ReleaseState']) expect(cmd).toContain(`${sa}=Keyword`);
  });

  it('documents every setting in the README table', () => {
    for (const key of Object.keys(settingsDoc)) expect(readme, key).toContain(`| \`${key}\``);
  });
});
