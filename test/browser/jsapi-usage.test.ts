import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildPackage, realisticPackageFiles } from '../fixtures/packages.js';
import { launchChromium } from '../helpers/browser.js';
import { startStack, testPassword, type Stack } from '../helpers/stack.js';
import { uid } from '../helpers/workflow-env.js';

const shots = fileURLToPath(new URL('../../test-artifacts/screens/', import.meta.url));
let stack: Stack;
let browser: Browser;
let versionUrl: string;
let mpId: string;

async function shot(page: Page, name: string) {
  await page.screenshot({ path: path.join(shots, `jsapi-usage-${name}.png`), fullPage: true });
}

beforeAll(async () => {
  mkdirSync(shots, { recursive: true });
  stack = await startStack({ web: true });
  browser = await launchChromium();
  const dev = await stack.agent('developer');
  const mp = await dev.post(`/api/v1/workspaces/${stack.workspaceId}/mini-programs`, { name: 'Lantern Maps', description: 'Find the night market', category: 'food', icon: '🏮' });
  mpId = mp.body.id;
  // The shop demo plus a store finder that locates the user and declares tradePay in app.json.
  const files = realisticPackageFiles({ version: '1.0.0' });
  files['pages/index/index.js'] = `${files['pages/index/index.js'] as string}\n// Store finder\nfunction locate(page) {\n  my.getLocation({ type: 1, success: (res) => page.setData({ city: res.city }) });\n}\nfunction share() { my.shareToFriends({ title: 'Lantern' }); }\n`;
  files['app.json'] = JSON.stringify({ ...JSON.parse(files['app.json'] as string), jsapis: ['tradePay'] }, null, 2);
  const up = await dev.upload(`/api/v1/workspaces/${stack.workspaceId}/mini-programs/${mpId}/versions`, buildPackage(files), '1.0.0', 'Store finder');
  expect(up.status).toBe(201);
  versionUrl = `${stack.baseUrl}/w/${stack.workspaceId}/mini-programs/${mpId}/versions/${up.body.id}`;
  await stack.sequelize.query(
    `INSERT INTO features (id, workspace_id, key, name, description, access_mode, jsapis, status, revision, created_by, created_at, updated_at)
     VALUES (:id, :ws, 'location', 'Location', 'Where the user is', 'direct', ARRAY['getLocation'], 'active', 1, :by, now(), now())`,
    { replacements: { id: `fea_${uid()}`, ws: stack.workspaceId, by: stack.users.admin.id } },
  );
});
afterAll(async () => {
  await browser?.close();
  await stack?.stop();
});

describe('version page: JSAPIs used', () => {
  it('lists each JSAPI with file:line, marks the missing ones, and the refused submit names them', async () => {
    const page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
    await page.goto(`${stack.baseUrl}/login?next=${encodeURIComponent(new URL(versionUrl).pathname)}`);
    await page.getByLabel('Email').fill(stack.users.developer.email);
    await page.getByLabel('Password').fill(testPassword);
    await page.getByRole('button', { name: 'Sign in' }).click();
    const panel = page.getByTestId('jsapi-usage');
    await expect.poll(() => panel.getByTestId('jsapi-row').count(), { timeout: 20_000 }).toBe(8);
    await expect.poll(() => panel.getByTestId('jsapi-missing').textContent()).toContain('3 JSAPIs are not allowed');
    const location = panel.locator('[data-api="getLocation"]');
    expect(await location.textContent()).toContain('pages/index/index.js:');
    expect(await location.textContent()).toContain('Not granted');
    expect(await panel.locator('[data-api="shareToFriends"]').textContent()).toContain('Unknown API');
    expect(await panel.locator('[data-api="tradePay"]').textContent()).toContain('app.json:');
    expect(await panel.locator('[data-api="request"]').textContent()).toContain('Open to all');
    // Missing ones first.
    expect(await panel.getByTestId('jsapi-row').first().getAttribute('data-api')).toBe('getLocation');
    await panel.scrollIntoViewIfNeeded();
    await shot(page, '01-missing');

    await page.getByRole('button', { name: 'Submit for review' }).click();
    const toast = page.getByRole('alert').filter({ hasText: 'may not call' });
    await expect.poll(() => toast.textContent(), { timeout: 10_000 }).toContain('getLocation at pages/index/index.js:');
    await shot(page, '02-submit-refused');

    await stack.sequelize.query(
      `INSERT INTO mini_program_features (mini_program_id, feature_id, workspace_id, status, requested_by, requested_at, decided_by, decided_at, updated_at)
       SELECT :mpId, id, workspace_id, 'active', :by, now(), :by, now(), now() FROM features WHERE workspace_id = :ws AND key = 'location'`,
      { replacements: { mpId, ws: stack.workspaceId, by: stack.users.admin.id } },
    );
    await page.reload();
    await expect.poll(() => panel.locator('[data-api="getLocation"]').textContent(), { timeout: 20_000 }).toContain('Granted');
    expect(await panel.getByTestId('jsapi-missing').textContent()).toContain('2 JSAPIs are not allowed');
    await panel.scrollIntoViewIfNeeded();
    await shot(page, '03-granted');
  });
});
