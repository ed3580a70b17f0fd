import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, testPassword, type Stack } from '../helpers/stack.js';
import { launchChromium } from '../helpers/browser.js';

const shots = fileURLToPath(new URL('../../test-artifacts/screens/', import.meta.url));
let stack: Stack;
let browser: Browser;

async function shot(page: Page, name: string) {
  await page.screenshot({ path: path.join(shots, `tokens-${name}.png`), fullPage: true });
}

const whoami = (token: string) => fetch(`${stack.baseUrl}/api/v1/me`, { headers: { authorization: `Bearer ${token}` } });

beforeAll(async () => {
  mkdirSync(shots, { recursive: true });
  stack = await startStack({ web: true });
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
  await stack?.stop();
});

describe('access tokens in the console', () => {
  it('a developer generates tokens (shown once, with a copy button), sees them listed by prefix and status, and revokes one', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: stack.baseUrl });
    const page = await context.newPage();
    await page.goto(`${stack.baseUrl}/login`);
    await page.getByLabel('Email').fill(stack.users.developer.email);
    await page.getByLabel('Password').fill(testPassword);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL((u) => !u.pathname.startsWith('/login'));

    // From the account menu.
    await page.getByRole('button', { name: 'Account menu' }).click();
    await page.getByRole('link', { name: 'Access tokens' }).click();
    await page.waitForURL(/\/account\/tokens$/);
    await expect.poll(() => page.getByText('No access tokens yet').isVisible()).toBe(true);
    await shot(page, '01-empty');

    // A name is needed; nothing is created without one.
    await page.getByRole('button', { name: 'Generate token' }).click();
    await expect.poll(() => page.getByRole('alert').textContent()).toContain('Give the token a name');

    // A token for 90 days: shown once, with a warning and a copy button.
    await page.getByLabel('Name').fill('Laptop');
    await page.getByLabel('Expires').selectOption({ label: 'In 90 days' });
    await page.getByRole('button', { name: 'Generate token' }).click();
    const secret = page.getByLabel('Personal access token');
    await expect.poll(() => secret.inputValue()).toMatch(/^mpdp_pat_[\w-]{43}$/);
    const laptop = await secret.inputValue();
    expect(await page.getByTestId('new-token').textContent()).toContain('you will not be able to see it again');
    await page.getByRole('button', { name: 'Copy' }).click();
    await expect.poll(() => page.getByRole('button', { name: 'Copied' }).isVisible()).toBe(true);
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(laptop);
    await shot(page, '02-created');
    // It works as a bearer token at once.
    expect((await (await whoami(laptop)).json()).user.email).toBe(stack.users.developer.email);

    // Dismissed, the secret is gone from the page; the list shows its prefix only.
    await page.getByRole('button', { name: 'I have stored it' }).click();
    await expect.poll(() => page.getByTestId('new-token').count()).toBe(0);
    expect(await page.content()).not.toContain(laptop);
    const laptopRow = page.locator('tr', { hasText: 'Laptop' });
    expect(await laptopRow.textContent()).toContain(`${laptop.slice(0, 15)}…`);
    expect(await laptopRow.textContent()).toContain('Active');

    // A CI token that never expires, and an old one that has expired.
    await page.getByLabel('Name').fill('GitHub Actions');
    await page.getByLabel('Expires').selectOption({ label: 'No expiry' });
    await page.getByRole('button', { name: 'Generate token' }).click();
    await expect.poll(() => page.getByTestId('new-token').textContent()).toContain('never expires');
    const ci = await page.getByLabel('Personal access token').inputValue();
    await page.getByRole('button', { name: 'I have stored it' }).click();
    const old = await (await stack.agent('developer')).post('/api/v1/me/tokens', { name: 'Old build box', expiresInDays: 30 });
    await stack.sequelize.query("UPDATE api_tokens SET expires_at = now() - interval '2 days', created_at = now() - interval '32 days' WHERE id = :id", { replacements: { id: old.body.id } });
    expect((await whoami(old.body.token)).status).toBe(401);

    // After a reload (nothing secret left anywhere): every token with its status.
    await page.reload();
    await expect.poll(() => page.locator('tbody tr').count()).toBe(3);
    expect(await page.content()).not.toContain(laptop);
    expect(await page.content()).not.toContain(ci);
    expect(await page.locator('tr', { hasText: 'Old build box' }).textContent()).toContain('Expired');
    expect(await page.locator('tr', { hasText: 'GitHub Actions' }).textContent()).toMatch(/Never.*Active/);
    await expect.poll(() => page.locator('tr', { hasText: 'Laptop' }).textContent()).toMatch(/just now/);
    await shot(page, '03-list');

    // Revoking asks first; dismissing the question changes nothing.
    page.once('dialog', (d) => void d.dismiss());
    await page.getByRole('button', { name: 'Revoke Laptop' }).click();
    expect((await whoami(laptop)).status).toBe(200);
    page.once('dialog', (d) => {
      expect(d.message()).toContain('Revoke the token "Laptop"?');
      void d.accept();
    });
    await page.getByRole('button', { name: 'Revoke Laptop' }).click();
    await expect.poll(() => page.locator('tr', { hasText: 'Laptop' }).textContent()).toContain('Revoked');
    expect(await page.getByRole('button', { name: 'Revoke Laptop' }).count()).toBe(0);
    const refused = await whoami(laptop);
    expect(refused.status).toBe(401);
    expect((await refused.json()).error.code).toBe('invalid_token');
    expect((await whoami(ci)).status).toBe(200);
    await shot(page, '04-revoked');
    await context.close();
  });
});
