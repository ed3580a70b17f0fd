import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Browser, type BrowserContext, type Page } from 'playwright-core';
import { QueryTypes } from 'sequelize';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashPassword } from '../../api/passwords.js';
import { launchChromium } from '../helpers/browser.js';
import { startStack, testPassword, type Stack } from '../helpers/stack.js';
import { uid } from '../helpers/workflow-env.js';

const shots = fileURLToPath(new URL('../../test-artifacts/screens/', import.meta.url));
let stack: Stack;
let browser: Browser;
let operatorEmail: string;

async function shot(page: Page, name: string) {
  // Toasts float over the content: dismiss them so the page itself shows.
  for (const close of await page.getByRole('button', { name: 'Dismiss notification' }).all()) await close.click().catch(() => {});
  await expect.poll(() => page.locator('.toast').count()).toBe(0);
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
}

async function newContext(): Promise<BrowserContext> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: stack.baseUrl });
  return context;
}

async function signIn(page: Page, email: string) {
  await page.goto(`${stack.baseUrl}/login`);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(testPassword);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL((u) => !u.pathname.startsWith('/login'));
}

const withKey = (key: string, url: string) => fetch(stack.baseUrl + url, { headers: { authorization: `Bearer ${key}` } });

beforeAll(async () => {
  mkdirSync(shots, { recursive: true });
  stack = await startStack({ web: true });
  browser = await launchChromium();
  operatorEmail = `ops-${uid()}@example.test`;
  await stack.sequelize.query('INSERT INTO users (id, email, name, password_hash, is_operator) VALUES (:id, :email, :name, :hash, true)', {
    replacements: { id: uid('usr_ops_'), email: operatorEmail, name: 'Olga Operator', hash: await hashPassword(testPassword) },
  });
  const dev = await stack.agent('developer');
  await dev.post(`/api/v1/workspaces/${stack.workspaceId}/mini-programs`, { name: 'Harbour Mall', category: 'shopping' });
}, 120_000);
afterAll(async () => {
  await browser?.close();
  await stack?.stop();
});

describe('workspace settings in the console', () => {
  it('an admin edits the general info, creates an API key (shown once) and revokes it', async () => {
    const page = await (await newContext()).newPage();
    await signIn(page, stack.users.admin.email);
    await page.getByRole('link', { name: 'Settings' }).click();
    await page.waitForURL(/\/settings$/);
    await expect.poll(() => page.getByRole('heading', { name: 'General info' }).isVisible()).toBe(true);
    const code = await page.getByTestId('workspace-code').textContent();
    const [ws] = await stack.sequelize.query<{ code: string }>('SELECT code FROM workspaces WHERE id = :id', { replacements: { id: stack.workspaceId }, type: QueryTypes.SELECT });
    expect(code).toBe(ws!.code);
    await shot(page, 'workspace-01-general-info');

    await page.getByLabel('Workspace name').fill('Harbour Retail');
    await page.getByLabel(/^Company/).fill('Harbour Retail Pte. Ltd.');
    await page.getByLabel('Region').selectOption('sg');
    await page.getByLabel(/^Description/).fill('Retail mini programs for the Harbour super app.');
    await page.getByRole('button', { name: '+ Add contact' }).click();
    await page.getByLabel('Name', { exact: true }).fill('Mei Tan');
    await page.getByLabel('Email', { exact: true }).fill('not-an-email');
    await page.getByRole('button', { name: 'Save changes' }).click();
    await expect.poll(() => page.getByText('Must be an email address.').isVisible()).toBe(true);
    await page.getByLabel('Email', { exact: true }).fill('mei@harbour.example');
    await page.getByLabel(/^Phone/).fill('+65 6123 4567');
    await page.getByLabel(/^Role/).fill('Technical contact');
    await page.getByRole('button', { name: 'Save changes' }).click();
    await expect.poll(() => page.getByText('The workspace\'s general info is saved.').isVisible()).toBe(true);
    await expect.poll(() => page.getByRole('button', { name: 'Save changes' }).isDisabled()).toBe(true);
    await page.reload();
    await expect.poll(() => page.getByLabel(/^Company/).inputValue()).toBe('Harbour Retail Pte. Ltd.');
    expect(await page.getByLabel('Email', { exact: true }).inputValue()).toBe('mei@harbour.example');
    expect(await page.getByText('Last changed').locator('..').textContent()).toContain('Alice Admin');
    await shot(page, 'workspace-02-general-saved');

    // A developer reads the same info, without a form.
    const devPage = await (await newContext()).newPage();
    await signIn(devPage, stack.users.developer.email);
    await devPage.goto(`${stack.baseUrl}/w/${stack.workspaceId}/settings`);
    await expect.poll(() => devPage.getByText('Only Admins change these').isVisible()).toBe(true);
    expect(await devPage.getByRole('row', { name: /Mei Tan/ }).textContent()).toContain('mei@harbour.example');
    expect(await devPage.getByRole('link', { name: 'API keys' }).count()).toBe(0);
    await shot(devPage, 'workspace-03-general-read-only');

    // API keys: create one with two scopes; the secret once, with a copy button.
    await page.getByRole('navigation', { name: 'Workspace settings' }).getByRole('link', { name: 'API keys' }).click();
    await page.waitForURL(/\/settings\/api-keys$/);
    await expect.poll(() => page.getByText('No API keys yet').isVisible()).toBe(true);
    await page.getByLabel('Name').fill('Build server');
    await page.getByRole('checkbox', { name: /^Upload/ }).check();
    await shot(page, 'workspace-04-key-form');
    await page.getByRole('button', { name: 'Create key' }).click();
    const box = page.getByTestId('new-api-key');
    await expect.poll(() => box.isVisible()).toBe(true);
    expect(await box.textContent()).toContain('you will not be able to see it again');
    const secret = await page.getByRole('textbox', { name: 'API key' }).inputValue();
    expect(secret).toMatch(/^mpdp_wk_[0-9a-z]+_[A-Za-z0-9_-]{43}$/);
    await page.getByRole('button', { name: 'Copy', exact: true }).click();
    await expect.poll(() => page.getByRole('button', { name: 'Copied' }).isVisible()).toBe(true);
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(secret);
    await shot(page, 'workspace-05-key-once');

    // The key works for its workspace: last used shows after a reload; the secret is nowhere.
    expect((await withKey(secret, `/api/v1/workspaces/${stack.workspaceId}/mini-programs`)).status).toBe(200);
    await page.getByRole('button', { name: 'I have stored it' }).click();
    await page.reload();
    const row = page.getByTestId('api-key-list').getByRole('row', { name: /Build server/ });
    await expect.poll(() => row.textContent()).toMatch(/Read.*Upload/);
    expect(await row.textContent()).not.toContain('Never');
    expect(await page.content()).not.toContain(secret);

    // Revoke (confirmed): refused from the next request.
    page.once('dialog', (d) => void d.accept());
    await page.getByRole('button', { name: 'Revoke Build server' }).click();
    await expect.poll(() => row.textContent()).toContain('Revoked');
    expect((await withKey(secret, `/api/v1/workspaces/${stack.workspaceId}/mini-programs`)).status).toBe(401);
    await shot(page, 'workspace-06-key-revoked');
  }, 240_000);
});

describe('feedback in the console', () => {
  it('a member sends feedback with a screenshot from the footer; the operator triages and replies; the member reads the reply', async () => {
    const devPage = await (await newContext()).newPage();
    await signIn(devPage, stack.users.developer.email);
    await devPage.goto(`${stack.baseUrl}/w/${stack.workspaceId}/mini-programs`);
    await expect.poll(() => devPage.getByText('Harbour Mall').first().isVisible()).toBe(true);
    // A real screenshot of the page the member is on.
    const png = await devPage.screenshot({ type: 'png' });

    await devPage.getByRole('button', { name: 'Send feedback' }).click();
    const dialog = devPage.getByRole('dialog', { name: 'Send feedback' });
    await expect.poll(() => dialog.isVisible()).toBe(true);
    expect(await devPage.getByTestId('feedback-page').textContent()).toBe(`/w/${stack.workspaceId}/mini-programs`);
    // Empty text is refused in place.
    await dialog.getByRole('button', { name: 'Send feedback' }).click();
    await expect.poll(() => dialog.getByText('Tell us what happened').isVisible()).toBe(true);
    await dialog.getByLabel('Bug').check();
    await dialog.getByLabel('Your feedback').fill('The mini program list does not remember my search after I open a mini program and come back.');
    await dialog.getByLabel(/^Screenshot/).setInputFiles({ name: 'list.png', mimeType: 'image/png', buffer: png });
    await expect.poll(() => dialog.getByAltText('Screenshot to send').isVisible()).toBe(true);
    await shot(devPage, 'feedback-01-dialog');
    await dialog.getByRole('button', { name: 'Send feedback' }).click();
    await expect.poll(() => devPage.getByText('Feedback sent').isVisible()).toBe(true);
    expect(await dialog.isVisible()).toBe(false);

    // The operator's inbox: the new feedback with its screenshot and page.
    const opsPage = await (await newContext()).newPage();
    await signIn(opsPage, operatorEmail);
    await opsPage.goto(`${stack.baseUrl}/operator/feedback`);
    await expect.poll(() => opsPage.getByTestId('count-new').textContent()).toBe('1');
    const detail = opsPage.getByTestId('feedback-detail');
    await expect.poll(() => detail.textContent()).toContain('does not remember my search');
    expect(await detail.getByRole('link', { name: `/w/${stack.workspaceId}/mini-programs` }).count()).toBe(1);
    const img = detail.getByAltText('Screenshot sent with the feedback');
    await expect.poll(() => img.evaluate((el) => (el as HTMLImageElement).naturalWidth)).toBe(1280);
    await shot(opsPage, 'feedback-02-inbox');

    await detail.getByRole('button', { name: 'Start work' }).click();
    await expect.poll(() => opsPage.getByTestId('feedback-status').textContent()).toBe('In progress');
    expect(await opsPage.getByTestId('count-in_progress').textContent()).toBe('1');
    await detail.getByLabel(/^Reply to Dan Developer/).fill('Thanks Dan — good catch. The list will keep its search from the next release on.');
    await detail.getByRole('button', { name: 'Send reply' }).click();
    await expect.poll(() => opsPage.getByText('Reply sent').isVisible()).toBe(true);
    const [mail] = await stack.waitForMail({ to: stack.users.developer.email, subject: 'Re: your bug report to mpdp' });
    expect(mail!.raw.replace(/=\r?\n/g, '')).toContain('The list will keep its search');
    await expect.poll(() => detail.getByTestId('reply-mail-status').textContent(), { timeout: 15_000 }).toBe('Mailed');
    await shot(opsPage, 'feedback-03-replied');

    // The member sees the reply in the console too.
    await devPage.goto(`${stack.baseUrl}/account/feedback`);
    await expect.poll(() => devPage.getByText('The list will keep its search').isVisible()).toBe(true);
    expect(await devPage.locator('[data-feedback]').first().textContent()).toContain('In progress');
    await shot(devPage, 'feedback-04-my-feedback');
  }, 240_000);
});
