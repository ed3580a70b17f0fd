import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { QueryTypes } from 'sequelize';
import { type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from '../helpers/browser.js';
import { startStack, testPassword, type Stack } from '../helpers/stack.js';

/**
 * Settings → Mail and Terms of service in the console: an Admin sets the sender name and
 * publishes terms v1; a Developer signing in meets the terms gate, accepts, reaches the page, and
 * turns off review request mails.
 */

const shots = fileURLToPath(new URL('../../test-artifacts/screens/', import.meta.url));
let stack: Stack;
let browser: Browser;

async function shot(page: Page, name: string) {
  // Toasts float over the content: dismiss them so the page itself shows.
  for (const close of await page.getByRole('button', { name: 'Dismiss notification' }).all()) await close.click().catch(() => {});
  await expect.poll(() => page.locator('.toast').count()).toBe(0);
  await page.screenshot({ path: path.join(shots, `settings-${name}.png`), fullPage: true });
}

async function newPage(): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  const page = await context.newPage();
  page.on('dialog', (d) => void d.accept());
  return page;
}

async function signIn(page: Page, email: string) {
  await page.goto(`${stack.baseUrl}/login`);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(testPassword);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL((u) => !u.pathname.startsWith('/login'));
}

const settingsTab = (page: Page, name: string) => page.getByRole('navigation', { name: 'Workspace settings' }).getByRole('link', { name });

const termsText = `# 1. Scope
These terms apply to every mini program built, reviewed or released in this workspace.

# 2. Your duties
- Keep **user data** safe and collect only what a feature needs.
- Submit only packages you have the right to publish.
- Report security problems to security@acme.test within 24 hours.

# 3. Changes
We may publish a new version of these terms. You accept it before making further changes.`;

beforeAll(async () => {
  mkdirSync(shots, { recursive: true });
  stack = await startStack({ web: true });
  browser = await launchChromium();
}, 180_000);
afterAll(async () => {
  await browser?.close();
  await stack?.stop();
});

describe('mail and terms settings in the console', () => {
  it('an Admin sets the sender name and publishes terms v1; a Developer accepts at the gate and turns off review requests', async () => {
    const ws = stack.workspaceId;
    const admin = await newPage();
    await signIn(admin, stack.users.admin.email);

    // Mail: sender name and reply-to.
    await admin.getByRole('link', { name: 'Settings' }).click();
    await settingsTab(admin, 'Mail').click();
    await admin.waitForURL(/\/settings\/mail$/);
    await admin.getByLabel('Sender name').fill('Acme Mini Programs');
    await admin.getByLabel(/^Reply-to/).fill('support@acme.test');
    await expect.poll(() => admin.getByTestId('mail-from-preview').textContent()).toBe('Acme Mini Programs <no-reply@mpdp.local>');
    await admin.getByRole('button', { name: 'Save' }).click();
    await expect.poll(() => admin.getByText('Mail settings saved').isVisible()).toBe(true);
    await expect.poll(() => admin.getByText(/Changed .* by Alice Admin/).isVisible()).toBe(true);
    await shot(admin, '41-mail-admin');
    const [stored] = await stack.sequelize.query<{ sender_name: string; reply_to: string }>('SELECT sender_name, reply_to FROM workspace_mail_settings WHERE workspace_id = :ws', { replacements: { ws }, type: QueryTypes.SELECT });
    expect(stored).toEqual({ sender_name: 'Acme Mini Programs', reply_to: 'support@acme.test' });

    // Terms: write, preview, publish v1.
    await settingsTab(admin, 'Terms of service').click();
    await admin.waitForURL(/\/settings\/terms$/);
    await expect.poll(() => admin.getByText('No terms yet').isVisible()).toBe(true);
    await admin.getByTestId('terms-new-version').click();
    await admin.getByLabel('Title').fill('Acme workspace terms');
    await admin.getByLabel('Text').fill(termsText);
    await admin.getByTestId('terms-preview-tab').click();
    await expect.poll(() => admin.getByTestId('terms-preview').getByRole('heading', { name: '2. Your duties' }).isVisible()).toBe(true);
    await shot(admin, '42-terms-preview');
    await admin.getByTestId('terms-publish').click();
    await expect.poll(() => admin.getByText('Version 1 published').isVisible()).toBe(true);
    await expect.poll(() => admin.getByTestId('terms-current').getByText('Version 1 ·').isVisible()).toBe(true);
    await expect.poll(() => admin.getByTestId('terms-pending-count').textContent()).toBe('2 members still to accept');
    await shot(admin, '43-terms-admin');

    // The Developer signs in: the terms stand in front of the workspace.
    const dev = await newPage();
    await signIn(dev, stack.users.developer.email);
    await expect.poll(() => dev.getByTestId('terms-gate').isVisible(), { timeout: 15_000 }).toBe(true);
    await expect.poll(() => dev.getByRole('heading', { name: 'Acme workspace terms' }).isVisible()).toBe(true);
    expect(await dev.getByText(/Version 1 · published/).isVisible()).toBe(true);
    expect(await dev.getByRole('heading', { name: 'Mini programs', exact: true }).count()).toBe(0);
    expect(await dev.getByRole('button', { name: 'Sign out' }).isVisible()).toBe(true);
    await shot(dev, '44-terms-gate');
    await dev.getByTestId('terms-accept').click();
    await expect.poll(() => dev.getByRole('heading', { name: 'Mini programs', exact: true }).isVisible()).toBe(true);
    expect(await dev.getByTestId('terms-gate').count()).toBe(0);
    await shot(dev, '45-after-accept');
    const [acc] = await stack.sequelize.query<{ version: number; user_agent: string }>('SELECT version, user_agent FROM terms_acceptances WHERE workspace_id = :ws AND user_id = :u', { replacements: { ws, u: stack.users.developer.id }, type: QueryTypes.SELECT });
    expect(acc).toMatchObject({ version: 1, user_agent: expect.stringContaining('Chrome') });

    // The Developer reads the sender (not editable) and turns off review requests.
    await dev.getByRole('link', { name: 'Settings' }).click();
    await settingsTab(dev, 'Mail').click();
    await dev.waitForURL(/\/settings\/mail$/);
    await expect.poll(() => dev.getByLabel('Sender name').inputValue()).toBe('Acme Mini Programs');
    expect(await dev.getByLabel('Sender name').isDisabled()).toBe(true);
    expect(await dev.getByRole('button', { name: 'Save' }).count()).toBe(0);
    const toggle = dev.getByRole('switch', { name: 'Review requests' });
    expect(await toggle.isChecked()).toBe(true);
    await toggle.click();
    await expect.poll(() => dev.getByText('Turned off').isVisible()).toBe(true);
    await dev.reload();
    await expect.poll(() => dev.getByRole('switch', { name: 'Review requests' }).isChecked()).toBe(false);
    expect(await dev.getByRole('switch', { name: 'Decisions' }).isChecked()).toBe(true);
    await shot(dev, '46-mail-developer');
    const [prefs] = await stack.sequelize.query<{ muted: string[] }>('SELECT muted FROM notification_preferences WHERE workspace_id = :ws AND user_id = :u', { replacements: { ws, u: stack.users.developer.id }, type: QueryTypes.SELECT });
    expect(prefs!.muted).toEqual(['review_requests']);

    // The Admin sees the Developer's acceptance.
    await admin.reload();
    await expect.poll(() => admin.getByTestId('terms-pending-count').textContent()).toBe('1 member still to accept');
    const row = admin.getByTestId('terms-acceptances').getByRole('row', { name: /Dan Developer/ });
    expect(await row.getByText('Accepted', { exact: true }).isVisible()).toBe(true);
    await shot(admin, '47-terms-acceptances');

    // A newer version: the Developer meets the gate again on their next page.
    await admin.getByTestId('terms-new-version').click();
    await admin.getByLabel('Title').fill('Acme workspace terms (2027)');
    await admin.getByLabel('Text').fill(`${termsText}\n\n# 4. Data retention\nLogs are kept for 90 days.`);
    await admin.getByTestId('terms-publish').click();
    await expect.poll(() => admin.getByText('Version 2 published').isVisible()).toBe(true);
    await dev.getByRole('link', { name: 'Mini programs' }).click();
    await expect.poll(() => dev.getByTestId('terms-gate').isVisible(), { timeout: 15_000 }).toBe(true);
    await expect.poll(() => dev.getByText(/Version 2 · published/).isVisible()).toBe(true);
    await shot(dev, '48-terms-gate-v2');
    await dev.getByTestId('terms-accept').click();
    await expect.poll(() => dev.getByRole('heading', { name: 'Mini programs', exact: true }).isVisible()).toBe(true);
  }, 240_000);
});
