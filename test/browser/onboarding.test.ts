import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureOperator } from '../../db/seed.js';
import { realisticPackage } from '../fixtures/packages.js';
import { Agent, startStack, testPassword, type Stack } from '../helpers/stack.js';
import { uid } from '../helpers/workflow-env.js';
import { launchChromium } from '../helpers/browser.js';

const shots = fileURLToPath(new URL('../../test-artifacts/screens/', import.meta.url));
let stack: Stack;
let browser: Browser;
let step = 0;
let operatorEmail: string;
const newPassword = 'tea leaves and lanterns';
/** Every console message that reports a Content-Security-Policy violation, per page. */
const cspViolations: string[] = [];

async function shot(page: Page, name: string) {
  // From the top, so the sticky bar is drawn where it belongs in the full-page image.
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: path.join(shots, `onboarding-${String(++step).padStart(2, '0')}-${name}.png`), fullPage: true });
}

/** `expect.poll` with room for a busy machine (two cores shared with other test files). */
function eventually<T>(fn: () => T | Promise<T>) {
  return expect.poll(fn, { timeout: 20_000, interval: 100 });
}

/** The top bar fits on one line: no label wraps, nothing spills past its edges. */
async function expectNavFits(page: Page) {
  const links = page.getByRole('navigation', { name: 'Main' }).getByRole('link');
  await eventually(() => links.count()).toBeGreaterThan(0);
  const heights = await links.evaluateAll((els) => els.map((el) => Math.round(el.getBoundingClientRect().height)));
  expect(Math.max(...heights)).toBeLessThanOrEqual(36);
  const bar = await page.locator('header').first().evaluate((h) => {
    const inner = h.firstElementChild as HTMLElement;
    const r = inner.getBoundingClientRect();
    const spill = [...inner.children].some((c) => {
      const b = c.getBoundingClientRect();
      return b.right > r.right + 0.5 || b.height > r.height;
    });
    return { overflow: inner.scrollWidth > inner.clientWidth, spill };
  });
  expect(bar).toEqual({ overflow: false, spill: false });
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
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
  await stack?.stop();
});

describe('onboarding in the console, under its Content-Security-Policy', () => {
  it('apply → the operator approves → the applicant accepts from the dev mailbox → invites a developer and a reviewer → sets a tester → opens a preview QR', async () => {
    const applicantEmail = `founder-${uid()}@example.test`;
    const developerEmail = `dev-${uid()}@lantern.example.test`;
    const reviewerEmail = `rev-${uid()}@lantern.example.test`;
    const testerEmail = `taster-${uid()}@outside.example.test`;
    const zipPath = path.join(mkdtempSync(path.join(os.tmpdir(), 'mpdp-zip-')), 'lantern-tea-1.0.0.zip');
    writeFileSync(zipPath, realisticPackage({ version: '1.0.0' }));
    const { context: applicantContext, page: applicant } = await newPage();

    // Sign-in page links to the application form.
    await applicant.goto(`${stack.baseUrl}/login`);
    await eventually(() => applicant.getByRole('link', { name: 'Apply for an account' }).isVisible()).toBe(true);
    await shot(applicant, 'login');
    await applicant.getByRole('link', { name: 'Apply for an account' }).click();
    await applicant.waitForURL(/\/apply$/);
    await applicant.getByLabel('Company').fill('Lantern Tea House');
    await applicant.getByLabel('Contact name').fill('Mei Lantern');
    await applicant.getByLabel('Work email').fill(applicantEmail);
    await applicant.getByLabel('Intended use').fill('Ordering and loyalty stamps for our twelve tea houses.');
    await shot(applicant, 'apply-form');
    await applicant.getByRole('button', { name: 'Send application' }).click();
    await eventually(() => applicant.getByRole('heading', { name: 'Application received' }).isVisible()).toBe(true);
    await shot(applicant, 'apply-done');
    await applicant.getByRole('link', { name: 'Open the status page' }).click();
    await applicant.waitForURL(/\/applications\/app_/);
    const statusUrl = applicant.url();
    await eventually(() => applicant.getByRole('heading', { name: 'Lantern Tea House' }).isVisible()).toBe(true);
    await eventually(() => applicant.getByText('Waiting for a platform operator').isVisible()).toBe(true);
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
    await eventually(() => row.isVisible()).toBe(true);
    expect(await op.getByRole('link', { name: 'Applications' }).isVisible()).toBe(true);
    await shot(op, 'operator-inbox');
    await row.getByRole('button', { name: 'Approve' }).click();
    await eventually(() => row.getByText('Admin invitation sent').isVisible()).toBe(true);
    await op.getByRole('tab', { name: /Approved/ }).click();
    await eventually(() => op.locator('li.app', { hasText: 'Lantern Tea House' }).isVisible()).toBe(true);
    await shot(op, 'operator-approved');

    // The applicant's status page says so.
    await applicant.goto(statusUrl);
    await eventually(() => applicant.getByText(/Approved/).first().isVisible()).toBe(true);
    await shot(applicant, 'status-approved');

    // The invitation is in the dev mailbox; its link opens the invitation page.
    await stack.waitForMail({ to: applicantEmail });
    await applicant.goto(`${stack.baseUrl}/dev/mail`);
    const mailRow = applicant.locator('button.mail-row', { hasText: applicantEmail }).first();
    await eventually(() => mailRow.isVisible()).toBe(true);
    await mailRow.click();
    await eventually(() => applicant.locator('iframe').isVisible()).toBe(true);
    await shot(applicant, 'dev-mailbox');
    await applicant.locator('.links a', { hasText: 'invitations/' }).click();
    await applicant.waitForURL(/\/invitations\/inv_/);
    await eventually(() => applicant.getByRole('heading', { name: 'Join Lantern Tea House' }).isVisible()).toBe(true);
    expect(await applicant.getByText(applicantEmail).isVisible()).toBe(true);

    // The applicant has no account yet: name and password on the invitation page, then in.
    await applicant.getByLabel('Your name').fill('Mei Lantern');
    await applicant.getByLabel(/Choose a password/).fill(newPassword);
    await shot(applicant, 'invitation');
    await applicant.getByRole('button', { name: 'Create account and join' }).click();
    await applicant.waitForURL(/\/w\/[^/]+\/mini-programs$/);
    const ws = /\/w\/([^/]+)\//.exec(new URL(applicant.url()).pathname)![1]!;
    await eventually(() => applicant.getByText('Create your first mini program').isVisible()).toBe(true);
    expect(await applicant.locator('#workspace-switcher').evaluate((s) => (s as HTMLSelectElement).selectedOptions[0]?.textContent)).toBe('Lantern Tea House');
    await expectNavFits(applicant);
    await shot(applicant, 'workspace-empty');

    // Members: one bulk invitation for two addresses, then the second becomes a reviewer.
    await applicant.getByRole('link', { name: 'Members' }).click();
    await applicant.waitForURL(/\/members$/);
    await eventually(() => applicant.getByRole('cell', { name: /Mei Lantern \(you\)/ }).isVisible()).toBe(true);
    await shot(applicant, 'members');
    await applicant.getByRole('tab', { name: /Invitations/ }).click();
    await applicant.getByLabel(/Email addresses/).fill(`${developerEmail},\n${reviewerEmail}`);
    await eventually(() => applicant.getByRole('button', { name: 'Invite 2' }).isEnabled()).toBe(true);
    await applicant.getByRole('combobox', { name: 'Role', exact: true }).selectOption('developer');
    await shot(applicant, 'members-invite-form');
    await applicant.getByRole('button', { name: 'Invite 2' }).click();
    await eventually(() => applicant.getByText('2 invited, 0 refused.').isVisible()).toBe(true);
    const reviewerRole = applicant.getByLabel(`Role for ${reviewerEmail}`);
    await eventually(() => reviewerRole.isVisible()).toBe(true);
    await reviewerRole.selectOption('reviewer');
    // The role is saved once the row's controls are enabled again; a reload shows what the server kept.
    await eventually(() => reviewerRole.isEnabled()).toBe(true);
    await applicant.reload();
    await applicant.getByRole('tab', { name: /Invitations/ }).click();
    await eventually(() => applicant.getByLabel(`Role for ${reviewerEmail}`).inputValue()).toBe('reviewer');
    expect(await applicant.getByLabel(`Role for ${developerEmail}`).inputValue()).toBe('developer');
    for (const email of [developerEmail, reviewerEmail]) {
      expect(await applicant.getByRole('row', { name: new RegExp(email) }).getByText('Pending').isVisible()).toBe(true);
    }
    await eventually(() => applicant.getByRole('tab', { name: /Invitations/ }).textContent()).toMatch(/2 pending/);
    await shot(applicant, 'members-pending');
    await stack.waitForMail({ to: developerEmail, subject: 'Lantern Tea House' });
    await stack.waitForMail({ to: reviewerEmail, subject: 'Lantern Tea House' });

    // Testers: one address for every mini program of the workspace.
    await applicant.getByRole('link', { name: 'Testers' }).click();
    await applicant.waitForURL(/\/testers$/);
    await eventually(() => applicant.getByText('No testers yet').isVisible()).toBe(true);
    await applicant.getByLabel('Email addresses').fill(testerEmail);
    await applicant.getByRole('button', { name: 'Add', exact: true }).click();
    await eventually(() => applicant.getByTestId('tester-total').textContent()).toBe('1 tester');
    const testerRow = applicant.getByRole('region', { name: 'Tester list' }).getByRole('row', { name: new RegExp(testerEmail) });
    expect(await testerRow.getByText('Whole workspace').isVisible()).toBe(true);
    await shot(applicant, 'testers');

    // A mini program, its first package, and a preview QR on the version page.
    await applicant.getByRole('link', { name: 'Mini programs' }).click();
    await applicant.waitForURL(/\/mini-programs$/);
    await applicant.getByRole('link', { name: 'New mini program' }).first().click();
    await applicant.getByLabel('Name').fill('Lantern Tea');
    await applicant.getByLabel('Description').fill('Order ahead, collect stamps, find the nearest tea house.');
    await applicant.getByLabel('Category').selectOption('food');
    await shot(applicant, 'create-form');
    await applicant.getByRole('button', { name: 'Create mini program' }).click();
    await applicant.waitForURL(/\/mini-programs\/mp_/);
    await eventually(() => applicant.getByRole('heading', { name: 'Lantern Tea' }).isVisible()).toBe(true);
    await applicant.getByLabel('Package (.zip)').setInputFiles(zipPath);
    await applicant.getByLabel('Version').fill('1.0.0');
    await applicant.getByLabel('Release notes').fill('First release: menu, order ahead and loyalty stamps.');
    await shot(applicant, 'upload-form');
    await applicant.getByRole('button', { name: 'Upload' }).click();
    await applicant.waitForURL(/\/versions\/ver_/);
    await eventually(() => applicant.getByRole('button', { name: 'Submit for review' }).isVisible()).toBe(true);
    await expectNavFits(applicant);
    await shot(applicant, 'version');
    // At 1024 px the bar still holds on one line; the account menu carries docs, mailbox and sign-out.
    await applicant.setViewportSize({ width: 1024, height: 768 });
    await expectNavFits(applicant);
    await applicant.getByRole('button', { name: 'Account menu' }).click();
    await eventually(() => applicant.getByRole('link', { name: 'Dev mailbox' }).isVisible()).toBe(true);
    expect(await applicant.getByRole('link', { name: 'API docs' }).isVisible()).toBe(true);
    expect(await applicant.getByRole('button', { name: 'Sign out' }).isVisible()).toBe(true);
    await shot(applicant, 'version-1024-account-menu');
    await applicant.keyboard.press('Escape');
    await eventually(() => applicant.getByRole('link', { name: 'Your sessions' }).count()).toBe(0);
    await applicant.setViewportSize({ width: 1280, height: 860 });
    await applicant.getByRole('button', { name: 'Preview', exact: true }).click();
    const qr = applicant.getByTestId('preview-qr');
    await eventually(() => qr.evaluate((img) => (img as HTMLImageElement).naturalWidth)).toBeGreaterThan(0);
    expect(await applicant.getByTestId('preview-expiry').textContent()).toMatch(/Expires in \d+:\d\d/);
    // Clear the toasts of the last steps so the QR code is in plain view.
    const toastCloses = applicant.getByRole('button', { name: 'Dismiss notification' });
    // (A toast may expire by itself while it is being clicked: that is fine, it is gone either way.)
    for (const close of await toastCloses.all()) await close.click({ timeout: 2_000 }).catch(() => undefined);
    await eventually(() => toastCloses.count()).toBe(0);
    await shot(applicant, 'version-preview-qr');

    // "Open preview" opens the preview page in a new tab, manifest and all.
    const [preview] = await Promise.all([applicantContext.waitForEvent('page'), applicant.getByTestId('open-preview').click()]);
    await preview.waitForURL(/\/preview\//);
    await eventually(() => preview.getByTestId('preview-manifest').isVisible()).toBe(true);
    expect(await preview.getByRole('heading', { name: /Lantern Tea/ }).first().isVisible()).toBe(true);
    expect(await preview.getByText('pages/index/index').first().isVisible()).toBe(true);
    expect(await preview.getByTestId('preview-notes').textContent()).toContain('loyalty stamps');
    await eventually(() => preview.getByTestId('preview-page-qr').evaluate((img) => (img as HTMLImageElement).naturalWidth)).toBeGreaterThan(0);
    await shot(preview, 'preview');
    expect(cspViolations).toEqual([]);
  }, 240_000);

  it('forgot password → mailed link → new password; sessions list ends another browser', async () => {
    const email = stack.users.developer.email;
    const { page } = await newPage();
    await page.goto(`${stack.baseUrl}/login`);
    await page.getByRole('link', { name: 'Forgot password?' }).click();
    await page.waitForURL(/\/forgot-password/);
    await page.getByLabel('Email').fill(email);
    await shot(page, 'forgot');
    await page.getByRole('button', { name: 'Mail me a reset link' }).click();
    await eventually(() => page.getByRole('heading', { name: 'Check your mail' }).isVisible()).toBe(true);
    const [mail] = await stack.waitForMail({ to: email, subject: 'Reset your mpdp password' });
    const token = /reset-password\?token=3D([A-Za-z0-9_-]+)|reset-password\?token=([A-Za-z0-9_-]+)/.exec(mail!.raw.replace(/=\r?\n/g, ''));
    await page.goto(`${stack.baseUrl}/reset-password?token=${token![1] ?? token![2]}`);
    await page.getByLabel('New password').fill('lanterns all night long');
    await page.getByLabel('Repeat it').fill('lanterns all night long');
    await shot(page, 'reset-form');
    await page.getByRole('button', { name: 'Set password' }).click();
    await eventually(() => page.getByRole('heading', { name: 'Password changed' }).isVisible()).toBe(true);
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
    await first.getByRole('button', { name: 'Account menu' }).click();
    await first.getByRole('link', { name: 'Your sessions' }).click();
    await first.waitForURL(/\/account\/sessions/);
    await eventually(() => first.locator('tbody tr').count()).toBe(2);
    await shot(first, 'sessions');
    await first.locator('tbody tr', { hasNotText: 'This browser' }).getByRole('button', { name: 'End session' }).click();
    await eventually(() => first.locator('tbody tr').count()).toBe(1);
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
    await eventually(() => op.getByText('Inbox zero').isVisible()).toBe(true);
    await shot(op, 'operator-inbox-empty');

    const email = `shady-${uid()}@example.test`;
    const res = await new Agent(stack.baseUrl).post('/api/v1/applications', { company: 'Shady Widgets', contactName: 'Sam Shady', email, intendedUse: 'Selling widgets of unclear origin.' });
    expect(res.status).toBe(201);
    await op.reload();
    const row = op.locator('li.app', { hasText: 'Shady Widgets' });
    await eventually(() => row.isVisible()).toBe(true);
    await row.getByRole('button', { name: 'Deny…' }).click();
    await row.getByRole('button', { name: 'Deny application' }).click();
    await eventually(() => row.getByText('at least 3 characters').isVisible()).toBe(true);
    await row.getByLabel(/Reason/).fill('We could not verify the company registration.');
    await shot(op, 'operator-deny');
    await row.getByRole('button', { name: 'Deny application' }).click();
    await eventually(() => row.getByText('Reason: We could not verify the company registration.').isVisible()).toBe(true);
    const [mail] = await stack.waitForMail({ to: email, subject: 'not approved' });
    expect(mail!.raw).toContain('We could not verify the company registration.');

    const { page: applicant } = await newPage();
    await applicant.goto(`${stack.baseUrl}${res.body.statusUrl}`);
    await eventually(() => applicant.getByText('Reason: We could not verify the company registration.').isVisible()).toBe(true);
    await shot(applicant, 'status-denied');
    expect(cspViolations).toEqual([]);
  });
});
