import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { QueryTypes } from 'sequelize';
import { type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashPassword } from '../../api/passwords.js';
import type { RevocationReport } from '../../workflows/contracts/authorization.js';
import { realisticPackage } from '../fixtures/packages.js';
import { eventually } from '../helpers/eventually.js';
import { Agent, startStack, testPassword, type Stack } from '../helpers/stack.js';
import { uid } from '../helpers/workflow-env.js';
import { launchChromium } from '../helpers/browser.js';

const shots = fileURLToPath(new URL('../../test-artifacts/screens/', import.meta.url));
let stack: Stack;
let browser: Browser;
let merchantCode: string;
let mall: { id: string; name: string };
let cafe: { id: string; name: string };

async function shot(page: Page, name: string) {
  // Toasts fade by themselves; close them so they do not cover the page in the picture.
  const toasts = page.getByRole('button', { name: 'Dismiss notification' });
  for (const close of await toasts.all()) await close.click().catch(() => undefined);
  await expect.poll(() => toasts.count()).toBe(0);
  // Full-page shots of a scrolled page draw the sticky nav mid-page.
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: path.join(shots, `authz-${name}.png`), fullPage: true });
}

async function newPage(): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 }, acceptDownloads: true });
  return context.newPage();
}

async function signIn(page: Page, email: string, next?: string) {
  await page.goto(`${stack.baseUrl}/login${next ? `?next=${encodeURIComponent(next)}` : ''}`);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(testPassword);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL((u) => !u.pathname.startsWith('/login'));
}

/** A user of no workspace yet: the ISV's founder. */
async function newUser(name: string) {
  const email = `${name.toLowerCase().replace(/\W+/g, '-')}-${uid()}@isv.example.test`;
  await stack.sequelize.query('INSERT INTO users (id, email, name, password_hash) VALUES (:id, :email, :name, :hash)', {
    replacements: { id: `usr_isv_${uid()}`, email, name, hash: await hashPassword(testPassword) },
  });
  return email;
}

const inDays = (n: number) => new Date(Date.now() + n * 24 * 3600_000).toISOString().slice(0, 10);

beforeAll(async () => {
  mkdirSync(shots, { recursive: true });
  stack = await startStack({ web: true });
  browser = await launchChromium();
  const dev = await stack.agent('developer');
  const ws = `/api/v1/workspaces/${stack.workspaceId}/mini-programs`;
  mall = (await dev.post(ws, { name: 'Harbor Mall', description: 'Shops by the water', category: 'shopping', icon: '⚓' })).body;
  cafe = (await dev.post(ws, { name: 'Harbor Cafe', description: 'Coffee to go', category: 'food', icon: '☕' })).body;
  const [row] = await stack.sequelize.query<{ code: string }>('SELECT code FROM workspaces WHERE id = :id', { replacements: { id: stack.workspaceId }, type: QueryTypes.SELECT });
  merchantCode = row!.code;
});
afterAll(async () => {
  await browser?.close();
  await stack?.stop();
});

describe('developer workspaces and authorizations in the console', () => {
  it('an ISV creates its workspace and asks; the merchant narrows and approves; the ISV uploads; the merchant revokes and reads the report', async () => {
    const isvEmail = await newUser('Ines Isv');
    const merchantWs = stack.workspaceId;

    // The ISV: a developer workspace from the account menu.
    const isv = await newPage();
    await signIn(isv, isvEmail);
    await isv.getByRole('button', { name: 'Account menu' }).click();
    await isv.getByRole('link', { name: 'Create developer workspace' }).click();
    await isv.waitForURL(/\/developer-workspaces\/new$/);
    await isv.getByLabel('Workspace name').fill('Harbor Apps Studio');
    await shot(isv, '01-new-developer-workspace');
    await isv.getByRole('button', { name: 'Create developer workspace' }).click();
    await isv.waitForURL(/\/w\/[^/]+\/authorizations$/);
    const devWs = decodeURIComponent(new URL(isv.url()).pathname.split('/')[2]!);
    expect(await isv.getByRole('link', { name: 'Authorizations' }).getAttribute('aria-current')).toBe('page');
    expect(await isv.locator('#workspace-switcher option:checked').textContent()).toBe('Harbor Apps Studio · Developer');

    // It asks for both mini programs, to view, upload and submit, until an end date.
    await isv.getByLabel('Merchant workspace code').fill(merchantCode.toLowerCase());
    await isv.getByLabel(/^Mini program ids/).fill(`${mall.id}\n${cafe.id}`);
    await isv.getByRole('checkbox', { name: /^Submit for review/ }).check();
    await isv.getByLabel(/^End date/).fill(inDays(60));
    await isv.getByLabel('Message to the merchant').fill('We are the studio building your autumn campaign.');
    await shot(isv, '02-request-form');
    await isv.getByRole('button', { name: 'Send request' }).click();
    const ownRow = isv.getByRole('row').filter({ hasText: 'Harbor Mall' });
    await expect.poll(() => ownRow.count()).toBe(1);
    expect(await ownRow.textContent()).toContain('Requested');
    await shot(isv, '03-requested');
    await stack.waitForMail({ to: stack.users.admin.email });

    // The merchant's Admin: grants the mall only, and not submit.
    const merchant = await newPage();
    await signIn(merchant, stack.users.admin.email);
    await merchant.getByRole('link', { name: 'Authorizations' }).click();
    await merchant.waitForURL(/\/authorizations$/);
    const request = merchant.getByRole('article', { name: 'Request from Harbor Apps Studio' });
    await expect.poll(() => request.isVisible()).toBe(true);
    expect(await request.textContent()).toContain('autumn campaign');
    await shot(merchant, '04-request-to-decide');
    await request.getByRole('checkbox', { name: 'Harbor Cafe' }).uncheck();
    await request.getByRole('button', { name: 'Approve narrowed' }).click();
    const grantRow = merchant.getByRole('row').filter({ hasText: 'Harbor Apps Studio' });
    await expect.poll(() => grantRow.filter({ hasText: 'Active' }).count()).toBe(1);
    expect(await grantRow.textContent()).toContain('Harbor Mall');
    expect(await grantRow.textContent()).not.toContain('Harbor Cafe');
    expect(await grantRow.textContent()).toContain(`by ${stack.users.admin.name}`);
    await shot(merchant, '05-active-grant');

    // The ISV, through the API (as its CLI would): uploads and submits on the mall; the cafe is not granted.
    const api = new Agent(stack.baseUrl);
    await api.login(isvEmail);
    const mp = `/api/v1/workspaces/${merchantWs}/mini-programs`;
    const up = await api.upload(`${mp}/${mall.id}/versions`, realisticPackage({ version: '2.0.0' }), '2.0.0', 'Autumn campaign');
    expect(up.status).toBe(201);
    // A mini program left out of the grant is not there for the ISV (404, as for any outsider).
    expect([403, 404]).toContain((await api.upload(`${mp}/${cafe.id}/versions`, realisticPackage({ version: '2.0.0' }), '2.0.0')).status);
    expect((await api.post(`${mp}/${mall.id}/versions/${up.body.id}/submit`, {}, { 'Idempotency-Key': uid() })).status).toBe(200);
    await eventually(async () => (await api.get(`${mp}/${mall.id}/versions/${up.body.id}`)).body?.version?.status === 'in_review', { what: 'the ISV version in review' });

    await isv.reload();
    await expect.poll(() => isv.getByRole('row').filter({ hasText: 'Active' }).count()).toBe(1);
    expect(await isv.getByText('Mini programs you can work on').isVisible()).toBe(true);
    await shot(isv, '06-isv-active');
    // The granted mini program opens in the console for the ISV.
    await isv.getByRole('listitem').filter({ hasText: 'Harbor Mall' }).getByRole('link', { name: 'Harbor Mall' }).click();
    await isv.waitForURL((u) => u.pathname === `/w/${merchantWs}/mini-programs/${mall.id}`);
    await expect.poll(() => isv.getByRole('heading', { name: 'Harbor Mall' }).isVisible()).toBe(true);
    await shot(isv, '06b-isv-mini-program');

    // The merchant revokes now, with a reason.
    await merchant.reload();
    await grantRow.getByRole('button', { name: 'Revoke…' }).click();
    await merchant.getByLabel(/^Reason/).fill('The campaign is over.');
    await shot(merchant, '07-revoke-form');
    await merchant.getByRole('button', { name: 'Revoke now' }).click();
    await eventually(async () => (await api.get(`${mp}/${mall.id}/versions/${up.body.id}`)).status === 403, { what: 'the ISV refused after revoke' });

    // The report: what was cut off and withdrawn, each step's time; downloadable as JSON.
    await merchant.getByRole('link', { name: 'Harbor Apps Studio' }).first().click();
    await merchant.waitForURL(/\/authorizations\/[^/]+$/);
    const report = merchant.getByTestId('revocation-report');
    await expect.poll(() => report.textContent(), { timeout: 30_000 }).toContain('complete');
    const text = (await report.textContent())!;
    expect(text).toContain('Revoked by the merchant');
    expect(text).toContain('The campaign is over.');
    expect(text).toMatch(/1\s*submission withdrawn/);
    expect(text).toContain('2.0.0');
    expect(text).toContain('Access cut');
    expect(await merchant.getByText('What Harbor Apps Studio did').isVisible()).toBe(true);
    await shot(merchant, '08-report');

    const [download] = await Promise.all([merchant.waitForEvent('download'), merchant.getByRole('link', { name: 'Download JSON' }).click()]);
    const json = JSON.parse(readFileSync((await download.path())!, 'utf8')) as RevocationReport;
    expect(json.trigger).toBe('merchant');
    expect(json.withdrawn.map((w) => w.versionId)).toEqual([up.body.id]);
    expect(json.cutOff?.miniProgramIds).toEqual([mall.id]);
    expect(json.steps.map((s) => s.name)).toEqual(['cut_access', 'withdraw_submissions', 'remove_testers', 'revoke_preview_links', 'mail']);
    expect(json.completedAt).toBeTruthy();

    // The ISV sees the same end, from its side.
    await isv.goto(`${stack.baseUrl}/w/${encodeURIComponent(devWs)}/authorizations`);
    const past = isv.getByRole('region', { name: 'Past' });
    await expect.poll(() => past.getByText('Revoked').count()).toBeGreaterThan(0);
    expect(await past.textContent()).toContain('The campaign is over.');
    await shot(isv, '09-isv-past');
    await past.getByRole('link', { name: 'Test' }).first().click();
    await expect.poll(() => isv.getByTestId('revocation-report').textContent()).toContain('complete');
    await shot(isv, '10-isv-report');
  }, 150_000);

  it('the merchant denies a request with a reason, schedules a revocation and cancels it', async () => {
    const isvEmail = await newUser('Quinn Quay');
    const api = new Agent(stack.baseUrl);
    await api.login(isvEmail);
    const ask = async (name: string) => {
      const ws = await api.post('/api/v1/developer-workspaces', { name });
      expect(ws.status).toBe(201);
      const res = await api.post(`/api/v1/workspaces/${ws.body.id}/authorizations`, { merchantCode, miniProgramIds: [cafe.id], scope: ['view', 'testers'], message: `${name} would like to help.` });
      expect(res.status).toBe(201);
      return { devWs: ws.body.id as string, id: res.body.id as string };
    };
    const quay = await ask('Quay Labs');
    const pier = await ask('Pier Works');

    const merchant = await newPage();
    await signIn(merchant, stack.users.admin.email, `/w/${encodeURIComponent(stack.workspaceId)}/authorizations`);
    const quayRequest = merchant.getByRole('article', { name: 'Request from Quay Labs' });
    await quayRequest.getByRole('button', { name: 'Deny…' }).click();
    await quayRequest.getByLabel(/^Why are you denying it/).fill('We work with our own team on the cafe.');
    await shot(merchant, '11-deny');
    await quayRequest.getByRole('button', { name: 'Deny request' }).click();
    const past = merchant.getByRole('region', { name: 'Past' });
    await expect.poll(() => past.getByRole('row').filter({ hasText: 'Quay Labs' }).textContent()).toContain('We work with our own team on the cafe.');
    expect((await api.get(`/api/v1/workspaces/${quay.devWs}/authorizations/${quay.id}`)).body.authorization.status).toBe('denied');

    await merchant.getByRole('article', { name: 'Request from Pier Works' }).getByRole('button', { name: 'Approve' }).click();
    const row = merchant.getByRole('row').filter({ hasText: 'Pier Works' });
    await expect.poll(() => row.filter({ hasText: 'Active' }).count()).toBe(1);
    await row.getByRole('button', { name: 'Revoke…' }).click();
    await merchant.getByLabel(/^Reason/).fill('Cafe season ends.');
    await merchant.getByRole('radio', { name: /^On/ }).check();
    const at = new Date(Date.now() + 10 * 24 * 3600_000);
    const local = new Date(at.getTime() - at.getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
    await merchant.getByLabel('Revoke on').fill(local);
    await merchant.getByRole('button', { name: 'Schedule revocation' }).click();
    await expect.poll(() => row.getByRole('button', { name: 'Cancel revocation' }).isVisible()).toBe(true);
    expect(await row.textContent()).toContain('Revocation');
    const scheduled = (await api.get(`/api/v1/workspaces/${pier.devWs}/authorizations/${pier.id}`)).body.authorization;
    expect(scheduled.status).toBe('active');
    expect(Math.abs(new Date(scheduled.revokeScheduledAt).getTime() - at.getTime())).toBeLessThan(60_000);
    await shot(merchant, '12-scheduled');

    await row.getByRole('button', { name: 'Cancel revocation' }).click();
    await expect.poll(() => row.getByRole('button', { name: 'Revoke…' }).isVisible()).toBe(true);
    const after = (await api.get(`/api/v1/workspaces/${pier.devWs}/authorizations/${pier.id}`)).body.authorization;
    expect(after.status).toBe('active');
    expect(after.revokeScheduledAt).toBeNull();
    await shot(merchant, '13-cancelled');
  });
});
