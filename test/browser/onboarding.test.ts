import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureOperator } from '../../db/seed.js';
import { Agent, startStack, testPassword, type Stack } from '../helpers/stack.js';
import { uid } from '../helpers/workflow-env.js';

const shots = fileURLToPath(new URL('../../test-artifacts/screens/', import.meta.url));
let stack: Stack;
let browser: Browser;
let step = 0;
let operatorEmail: string;
/** Every console message that reports a Content-Security-Policy violation, per page. */
const cspViolations: string[] = [];

async function shot(page: Page, name: string) {
  await page.screenshot({ path: path.join(shots, `onboarding-${String(++step).padStart(2, '0')}-${name}.png`), fullPage: true });
}

async function newPage(): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  const page = await context.newPage();
  page.on('console', (m) => {
    if (/Content.Security.Policy|Refused to (execute|load|apply|frame)/i.test(m.text())) cspViolations.push(`${page.url()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => cspViolations.push(`${page.url()}: page error ${e.message}`));
  return { context, page };
}

beforeAll(async () => {
  mkdirSync(shots, { recursive: true });
  stack = await startStack({ web: true, devMailbox: true, env: { APPLICATION_REMINDER_MS: '0' } });
  operatorEmail = `operator-${uid()}@example.test`;
  await ensureOperator(stack.sequelize, { email: operatorEmail, password: testPassword, name: 'Olga Operator' });
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});
afterAll(async () => {
  await browser?.close();
  await stack?.stop();
});

describe('onboarding in the console, under its Content-Security-Policy', () => {
  it('apply → the operator approves in the inbox → the applicant opens the invitation from the dev mailbox', async () => {
    const applicantEmail = `founder-${uid()}@example.test`;
    const { page: applicant } = await newPage();

    // Sign-in page links to the application form.
    await applicant.goto(`${stack.baseUrl}/login`);
    await expect.poll(() => applicant.getByRole('link', { name: 'Apply for an account' }).isVisible()).toBe(true);
    await shot(applicant, 'login');
    await applicant.getByRole('link', { name: 'Apply for an account' }).click();
    await applicant.waitForURL(/\/apply$/);
    await applicant.getByLabel('Company').fill('Lantern Tea House');
    await applicant.getByLabel('Contact name').fill('Mei Lantern');
    await applicant.getByLabel('Work email').fill(applicantEmail);
    await applicant.getByLabel('Intended use').fill('Ordering and loyalty stamps for our twelve tea houses.');
    await shot(applicant, 'apply-form');
    await applicant.getByRole('button', { name: 'Send application' }).click();
    await expect.poll(() => applicant.getByRole('heading', { name: 'Application received' }).isVisible()).toBe(true);
    await shot(applicant, 'apply-done');
    await applicant.getByRole('link', { name: 'Open the status page' }).click();
    await applicant.waitForURL(/\/applications\/app_/);
    const statusUrl = applicant.url();
    await expect.poll(() => applicant.getByRole('heading', { name: 'Lantern Tea House' }).isVisible()).toBe(true);
    await expect.poll(() => applicant.getByText('Waiting for a platform operator').isVisible()).toBe(true);
    await shot(applicant, 'status-pending');

    // The operator signs in, lands in the inbox and approves.
    await stack.waitForMail({ to: operatorEmail, subject: 'Lantern Tea House' });
    const { page: op } = await newPage();
    await op.goto(`${stack.baseUrl}/login`);
    await op.getByLabel('Email').fill(operatorEmail);
    await op.getByLabel('Password', { exact: true }).fill(testPassword);
    await op.getByRole('button', { name: 'Sign in' }).click();
    await op.waitForURL(/\/operator\/applications/);
    const row = op.locator('li.app', { hasText: 'Lantern Tea House' });
    await expect.poll(() => row.isVisible()).toBe(true);
    expect(await op.getByRole('link', { name: 'Applications' }).isVisible()).toBe(true);
    await shot(op, 'operator-inbox');
    await row.getByRole('button', { name: 'Approve' }).click();
    await expect.poll(() => row.getByText('Admin invitation sent').isVisible()).toBe(true);
    await op.getByRole('tab', { name: /Approved/ }).click();
    await expect.poll(() => op.locator('li.app', { hasText: 'Lantern Tea House' }).isVisible()).toBe(true);
    await shot(op, 'operator-approved');

    // The applicant's invitation is in the dev mailbox; its link opens the invitation page.
    await stack.waitForMail({ to: applicantEmail });
    await applicant.goto(`${stack.baseUrl}/dev/mail`);
    const mailRow = applicant.locator('button.mail-row', { hasText: applicantEmail }).first();
    await expect.poll(() => mailRow.isVisible(), { timeout: 15_000 }).toBe(true);
    await mailRow.click();
    await expect.poll(() => applicant.locator('iframe').isVisible()).toBe(true);
    await shot(applicant, 'dev-mailbox');
    await applicant.locator('.links a', { hasText: 'invitations/' }).click();
    await applicant.waitForURL(/\/invitations\/inv_/);
    await expect.poll(() => applicant.getByText('Lantern Tea House').first().isVisible()).toBe(true);
    await shot(applicant, 'invitation');

    await applicant.goto(statusUrl);
    await expect.poll(() => applicant.getByText(/Approved/).first().isVisible()).toBe(true);
    await shot(applicant, 'status-approved');
    expect(cspViolations).toEqual([]);
  });

  it('forgot password → mailed link → new password; sessions list ends another browser', async () => {
    const email = stack.users.developer.email;
    const { page } = await newPage();
    await page.goto(`${stack.baseUrl}/login`);
    await page.getByRole('link', { name: 'Forgot password?' }).click();
    await page.waitForURL(/\/forgot-password/);
    await page.getByLabel('Email').fill(email);
    await shot(page, 'forgot');
    await page.getByRole('button', { name: 'Mail me a reset link' }).click();
    await expect.poll(() => page.getByRole('heading', { name: 'Check your mail' }).isVisible()).toBe(true);
    const [mail] = await stack.waitForMail({ to: email, subject: 'Reset your mpdp password' });
    const token = /reset-password\?token=3D([A-Za-z0-9_-]+)|reset-password\?token=([A-Za-z0-9_-]+)/.exec(mail!.raw.replace(/=\r?\n/g, ''));
    await page.goto(`${stack.baseUrl}/reset-password?token=${token![1] ?? token![2]}`);
    await page.getByLabel('New password').fill('lanterns all night long');
    await page.getByLabel('Repeat it').fill('lanterns all night long');
    await shot(page, 'reset-form');
    await page.getByRole('button', { name: 'Set password' }).click();
    await expect.poll(() => page.getByRole('heading', { name: 'Password changed' }).isVisible()).toBe(true);
    await shot(page, 'reset-done');

    // Two browsers signed in; the first ends the second from its sessions page.
    const signIn = async (p: Page) => {
      await p.goto(`${stack.baseUrl}/login`);
      await p.getByLabel('Email').fill(email);
      await p.getByLabel('Password', { exact: true }).fill('lanterns all night long');
      await p.getByRole('button', { name: 'Sign in' }).click();
      await p.waitForURL(/\/w\/.+\/mini-programs/);
    };
    const { page: first } = await newPage();
    const { page: second } = await newPage();
    await signIn(first);
    await signIn(second);
    await first.locator('a.user').click();
    await first.waitForURL(/\/account\/sessions/);
    await expect.poll(() => first.locator('tbody tr').count()).toBe(2);
    await shot(first, 'sessions');
    await first.locator('tbody tr', { hasNotText: 'This browser' }).getByRole('button', { name: 'End session' }).click();
    await expect.poll(() => first.locator('tbody tr').count()).toBe(1);
    await second.reload();
    await second.waitForURL(/\/login/);
    expect(cspViolations).toEqual([]);
  });

  it('the operator denies with a reason; the applicant is told by mail', async () => {
    const { page: op } = await newPage();
    await op.goto(`${stack.baseUrl}/login`);
    await op.getByLabel('Email').fill(operatorEmail);
    await op.getByLabel('Password', { exact: true }).fill(testPassword);
    await op.getByRole('button', { name: 'Sign in' }).click();
    await op.waitForURL(/\/operator\/applications/);
    await expect.poll(() => op.getByText('Inbox zero').isVisible()).toBe(true);
    await shot(op, 'operator-inbox-empty');

    const email = `shady-${uid()}@example.test`;
    const res = await new Agent(stack.baseUrl).post('/api/v1/applications', { company: 'Shady Widgets', contactName: 'Sam Shady', email, intendedUse: 'Selling widgets of unclear origin.' });
    expect(res.status).toBe(201);
    await op.reload();
    const row = op.locator('li.app', { hasText: 'Shady Widgets' });
    await expect.poll(() => row.isVisible()).toBe(true);
    await row.getByRole('button', { name: 'Deny…' }).click();
    await row.getByRole('button', { name: 'Deny application' }).click();
    await expect.poll(() => row.getByText('at least 3 characters').isVisible()).toBe(true);
    await row.getByLabel(/Reason/).fill('We could not verify the company registration.');
    await shot(op, 'operator-deny');
    await row.getByRole('button', { name: 'Deny application' }).click();
    await expect.poll(() => row.getByText('Reason: We could not verify the company registration.').isVisible()).toBe(true);
    const [mail] = await stack.waitForMail({ to: email, subject: 'not approved' });
    expect(mail!.raw).toContain('We could not verify the company registration.');

    const { page: applicant } = await newPage();
    await applicant.goto(`${stack.baseUrl}${res.body.statusUrl}`);
    await expect.poll(() => applicant.getByText('Reason: We could not verify the company registration.').isVisible()).toBe(true);
    await shot(applicant, 'status-denied');
    expect(cspViolations).toEqual([]);
  });
});
