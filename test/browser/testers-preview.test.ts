import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashPassword } from '../../api/passwords.js';
import { loadConfig } from '../../lib/config.js';
import { signPreviewToken } from '../../lib/preview-token.js';
import { realisticPackage } from '../fixtures/packages.js';
import { startStack, testPassword, type Agent, type Stack } from '../helpers/stack.js';
import { uid } from '../helpers/workflow-env.js';
import { launchChromium } from '../helpers/browser.js';

const shots = fileURLToPath(new URL('../../test-artifacts/screens/', import.meta.url));
let stack: Stack;
let browser: Browser;
let dev: Agent;
let mp: { id: string; name: string };
let versionId: string;

async function shot(page: Page, name: string) {
  await page.screenshot({ path: path.join(shots, `testers-${name}.png`), fullPage: true });
}

async function newPage(): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  return context.newPage();
}

/** Signs in on the login page; `next` is where the console should land afterwards. */
async function signIn(page: Page, email: string, next?: string) {
  await page.goto(`${stack.baseUrl}/login${next ? `?next=${encodeURIComponent(next)}` : ''}`);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(testPassword);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL((u) => !u.pathname.startsWith('/login'));
}

async function outsider(name: string) {
  const email = `${name.toLowerCase()}-${uid()}@outside.example.test`;
  await stack.sequelize.query('INSERT INTO users (id, email, name, password_hash) VALUES (:id, :email, :name, :hash)', {
    replacements: { id: `usr_o_${uid()}`, email, name, hash: await hashPassword(testPassword) },
  });
  return email;
}

beforeAll(async () => {
  mkdirSync(shots, { recursive: true });
  stack = await startStack({ web: true });
  browser = await launchChromium();
  dev = await stack.agent('developer');
  const res = await dev.post(`/api/v1/workspaces/${stack.workspaceId}/mini-programs`, { name: 'Lantern Market', description: 'Night market stalls', category: 'food', icon: '🏮' });
  mp = { id: res.body.id, name: res.body.name };
  const up = await dev.upload(`/api/v1/workspaces/${stack.workspaceId}/mini-programs/${mp.id}/versions`, realisticPackage({ version: '1.2.0' }), '1.2.0', 'Pickup codes and a faster cart.\nFixes the stall map on small phones.');
  versionId = up.body.id;
});
afterAll(async () => {
  await browser?.close();
  await stack?.stop();
});

describe('testers and preview in the console', () => {
  it('an admin sets testers (one by email, many from CSV); a developer opens a preview QR; the tester opens it; others get a clear page', async () => {
    const tester = await outsider('Tess');
    const stranger = await outsider('Stan');
    const ws = stack.workspaceId;

    // The admin: an empty whitelist, one tester by email for the mini program, then a CSV.
    const admin = await newPage();
    await signIn(admin, stack.users.admin.email);
    await admin.getByRole('link', { name: 'Testers' }).click();
    await admin.waitForURL(/\/testers$/);
    await expect.poll(() => admin.getByText('No testers yet').isVisible()).toBe(true);
    await shot(admin, '01-empty');
    await admin.getByLabel('Email addresses').fill(tester.toUpperCase());
    await admin.getByLabel('Can preview').selectOption({ label: `Only ${mp.name}` });
    await admin.getByRole('button', { name: 'Add', exact: true }).click();
    await expect.poll(() => admin.getByTestId('tester-total').textContent()).toBe('1 tester');
    await expect.poll(() => admin.getByRole('button', { name: `Remove ${tester}` }).isVisible()).toBe(true);

    const csv = ['email,mini program', ...Array.from({ length: 40 }, (_, i) => `qa${i}@lantern.example.test${i % 4 ? '' : `,${mp.name}`}`), 'not an email', 'qa1@lantern.example.test', 'zed@lantern.example.test,Nowhere App'].join('\n');
    const csvPath = path.join(mkdtempSync(path.join(os.tmpdir(), 'mpdp-csv-')), 'testers.csv');
    writeFileSync(csvPath, csv);
    await admin.getByLabel('CSV file').setInputFiles(csvPath);
    await admin.getByRole('button', { name: 'Import' }).click();
    const report = admin.getByTestId('import-report');
    await expect.poll(() => report.textContent()).toContain('40 added');
    expect(await report.textContent()).toContain('3 refused');
    for (const reason of ['Not a valid email address', 'Duplicate of row 3', 'No mini program "Nowhere App" in this workspace']) {
      expect(await report.getByText(reason).isVisible()).toBe(true);
    }
    await expect.poll(() => admin.getByTestId('tester-total').textContent()).toBe('41 testers');
    await shot(admin, '02-import-report');
    await admin.getByLabel('Search').fill('qa1');
    await expect.poll(() => admin.getByTestId('tester-total').textContent()).toBe('11 testers');
    await shot(admin, '03-search');

    // The developer issues a preview link on the version page.
    const devPage = await newPage();
    await signIn(devPage, stack.users.developer.email, `/w/${ws}/mini-programs/${mp.id}/versions/${versionId}`);
    await devPage.getByRole('button', { name: 'Preview', exact: true }).click();
    await expect.poll(() => devPage.getByTestId('preview-qr').evaluate((img) => (img as HTMLImageElement).naturalWidth)).toBeGreaterThan(0);
    expect(await devPage.getByTestId('preview-expiry').textContent()).toMatch(/Expires in 1[45]:\d\d/);
    await devPage.getByTestId('preview-qr').scrollIntoViewIfNeeded();
    await shot(devPage, '04-version-preview-panel');
    const previewPath = await devPage.getByTestId('open-preview').getAttribute('href');
    expect(previewPath).toMatch(/^\/preview\/[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/);

    // The tester (no workspace of their own) signs in through the link and sees the build.
    const testerPage = await newPage();
    await testerPage.goto(stack.baseUrl + previewPath!);
    await testerPage.waitForURL(/\/login\?next=/);
    await signIn(testerPage, tester, previewPath!);
    await testerPage.waitForURL((u) => u.pathname === previewPath);
    await expect.poll(() => testerPage.getByTestId('preview-manifest').isVisible()).toBe(true);
    expect(await testerPage.getByText('You are a tester of this mini program.').isVisible()).toBe(true);
    expect(await testerPage.getByTestId('preview-notes').textContent()).toContain('Pickup codes');
    expect(await testerPage.getByText('pages/index/index').first().isVisible()).toBe(true);
    await expect.poll(() => testerPage.getByTestId('preview-page-qr').evaluate((img) => (img as HTMLImageElement).naturalWidth)).toBeGreaterThan(0);
    await shot(testerPage, '05-preview-as-tester');

    // Someone signed in but not a tester; a link that was altered; a link that expired.
    const strangerPage = await newPage();
    await signIn(strangerPage, stranger, previewPath!);
    await expect.poll(() => strangerPage.getByTestId('preview-refused').getAttribute('data-code')).toBe('not_a_tester');
    expect(await strangerPage.getByText('You are not a tester of this mini program').isVisible()).toBe(true);
    await shot(strangerPage, '06-refused-not-a-tester');

    await testerPage.goto(`${stack.baseUrl}${previewPath!.slice(0, -2)}AA`);
    await expect.poll(() => testerPage.getByTestId('preview-refused').getAttribute('data-code')).toBe('preview_token_invalid');
    await shot(testerPage, '07-refused-altered');
    const expired = signPreviewToken({ versionId, workspaceId: ws, expiresAt: Date.now() - 60_000 }, loadConfig({ MPDP_MODE: 'test' }).secretKey);
    await testerPage.goto(`${stack.baseUrl}/preview/${expired}`);
    await expect.poll(() => testerPage.getByTestId('preview-refused').getAttribute('data-code')).toBe('preview_expired');
    expect(await testerPage.getByText('This preview link has expired').isVisible()).toBe(true);
    await shot(testerPage, '08-refused-expired');
  });
});
