import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, settingsDoc } from './config.js';

const kek = 'a-key-encryption-key-of-32-characters-at-least';

describe('loadConfig', () => {
  it('has defaults for local use', () => {
    const c = loadConfig({});
    expect(c.port).toBe(8080);
    expect(c.databaseUrl).toBe('postgres://postgres@127.0.0.1:5432/mpdp');
    expect(c.temporal.address).toBeUndefined();
    expect(c.temporal.taskQueue).toBe('mpdp');
    expect(c.publicUrl).toBe('http://127.0.0.1:8080');
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('names every bad value in one error', () => {
    let err: unknown;
    try {
      loadConfig({ PORT: 'eighty', DATABASE_URL: 'mysql://x', TEMPORAL_ADDRESS: 'nohostport', MPDP_MODE: 'staging' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const problems = (err as ConfigError).problems.join('\n');
    for (const key of ['PORT', 'DATABASE_URL', 'TEMPORAL_ADDRESS', 'MPDP_MODE']) expect(problems).toContain(key);
    expect(problems).toContain('"eighty"');
  });

  it('refuses demo data without a password in production', () => {
    expect(() => loadConfig({ MPDP_MODE: 'production', SECRET_KEY: 'a-long-enough-secret', KEY_ENCRYPTION_KEY: kek })).toThrow(/DEMO_PASSWORD/);
    expect(loadConfig({ MPDP_MODE: 'production', DEMO_DATA: 'false', SECRET_KEY: 'a-long-enough-secret', KEY_ENCRYPTION_KEY: kek }).demoData).toBe(false);
  });

  it('needs a secret key in production, and the operator email and password together; names every problem at once', () => {
    const err = (() => {
      try {
        loadConfig({ MPDP_MODE: 'production', OPERATOR_EMAIL: 'ops@example.com' });
      } catch (e) {
        return e as Error;
      }
      return null;
    })();
    expect(err?.message).toMatch(/DEMO_PASSWORD/);
    expect(err?.message).toMatch(/SECRET_KEY/);
    expect(err?.message).toMatch(/OPERATOR_PASSWORD/);
    expect(err?.message).toMatch(/KEY_ENCRYPTION_KEY/);
    expect(loadConfig({ MPDP_MODE: 'development' }).secretKey.length).toBeGreaterThanOrEqual(16);
  });

  it('needs its own key-encryption key in production; elsewhere derives one from the secret key', () => {
    const base = { MPDP_MODE: 'production', DEMO_DATA: 'false', SECRET_KEY: 'a-long-enough-secret' };
    expect(() => loadConfig(base)).toThrow(/KEY_ENCRYPTION_KEY: production mode needs its own/);
    expect(() => loadConfig({ ...base, KEY_ENCRYPTION_KEY: 'too short' })).toThrow(/KEY_ENCRYPTION_KEY: must be at least 32 characters/);
    expect(loadConfig({ ...base, KEY_ENCRYPTION_KEY: kek }).keyEncryptionKey).toBe(kek);
    const dev = loadConfig({ MPDP_MODE: 'development', SECRET_KEY: 'a-long-enough-secret' });
    expect(dev.keyEncryptionKey).toContain('a-long-enough-secret');
    expect(dev.keyEncryptionKey).not.toBe(dev.secretKey);
  });

  it('treats empty strings as unset and parses numbers and durations', () => {
    const c = loadConfig({ PORT: '', REVIEW_REMINDER_MS: '250', MAX_PACKAGE_BYTES: '2048' });
    expect(c.port).toBe(8080);
    expect(c.release.reviewReminderMs).toBe(250);
    expect(c.maxPackageBytes).toBe(2048);
  });

  it('documents every setting', () => {
    expect(Object.keys(settingsDoc).length).toBeGreaterThanOrEqual(20);
  });
});
