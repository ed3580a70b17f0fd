import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedUsers } from '../../db/seed.js';
import { realisticPackage } from '../fixtures/packages.js';
import { eventually } from '../helpers/eventually.js';
import { startStack, testPassword, type Agent, type Stack } from '../helpers/stack.js';
import { launchChromium } from '../helpers/browser.js';
import { uid } from '../helpers/workflow-env.js';

/**
 * The approvals inbox in the console: a reviewer sees what waits on them with its SLA clock and
 * approves (1 of 2), another reviewer rejects with a reason and a file, and the submitter reads
 * the reason on the version and in "My requests".
 */

const shots = fileURLToPath(new URL('../../test-artifacts/screens/', import.meta.url));
let stack: Stack;
let browser: Browser;
let dev: Agent;
let ferry: { id: string; versionUrl: string; versionId: string };
let lantern: { id: string; versionUrl: string; versionId: string };
let step = 0;

async function shot(page: Page, name: string) {
  await page.screenshot({ path: path.join(shots, `approvals-${String(++step).padStart(2, '0')}-${name}.png`), fullPage: true });
}

async function signedIn(email: string): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  const page = await context.newPage();
  await page.goto(`${stack.baseUrl}/login`);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(testPassword);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL((u) => !u.pathname.startsWith('/login'));
  return page;
}

/** A mini program with one version submitted by the developer, waiting for review. */
async function submitted(name: string, icon: string, version: string) {
  const mp = await dev.post(`/api/v1/workspaces/${stack.workspaceId}/mini-programs`, { name, description: `${name} for the harbour`, category: 'travel', icon });
  const base = `/api/v1/workspaces/${stack.workspaceId}/mini-programs/${mp.body.id}`;
  const up = await dev.upload(`${base}/versions`, realisticPackage({ version }), version, 'Timetables and live departures.');
  const versionUrl = `${base}/versions/${up.body.id}`;
  expect((await dev.post(`${versionUrl}/submit`, {})).status).toBe(200);
  await eventually(async () => (await dev.get(versionUrl)).body.version.status === 'in_review', { what: `${name} in review`, timeoutMs: 20_000 });
  return { id: mp.body.id as string, versionUrl, versionId: up.body.id as string };
}

beforeAll(async () => {
  mkdirSync(shots, { recursive: true });
  stack = await startStack({ web: true, env: { REVIEW_SLA_MS: String(8 * 3600_000) } });
  browser = await launchChromium();
  dev = await stack.agent('developer');
  // Two reviewers must approve; a second Reviewer joins so that is possible.
  await seedUsers(stack.sequelize, {
    workspaceId: stack.workspaceId, workspaceName: 'unused', code: 'UNUSED',
    users: [{ id: uid('usr_r2_'), email: `${uid('ravi-')}@example.test`, name: 'Ravi Second', role: 'reviewer' }], password: testPassword,
  });
  const admin = await stack.agent('admin');
  expect((await admin.request('PUT', `/api/v1/workspaces/${stack.workspaceId}/release-settings`, { requiredApprovals: 2 })).status).toBe(200);
  ferry = await submitted('Harbour Ferry', '⛴', '2.0.0');
  lantern = await submitted('Lantern Market', '🏮', '1.4.0');
}, 180_000);
afterAll(async () => {
  await browser?.close();
  await stack?.stop();
});

describe('the approvals inbox', () => {
  it('a reviewer sees what waits on them with its SLA clock, and approves from the version page', async () => {
    const rev = await signedIn(stack.users.reviewer.email);
    await expect.poll(() => rev.getByTestId('approvals-badge').textContent(), { timeout: 15_000 }).toBe('2');
    await rev.getByRole('link', { name: /Approvals/ }).click();
    await rev.waitForURL(/\/reviews/);
    await expect.poll(() => rev.getByRole('tab', { name: /Waiting on me/ }).getAttribute('aria-selected')).toBe('true');
    await expect.poll(() => rev.locator('[data-pipeline]').count()).toBe(2);
    // Oldest first: the ferry was submitted first.
    expect(await rev.locator('[data-pipeline] .mp').allTextContents()).toEqual(['Harbour Ferry', 'Lantern Market']);
    const clock = rev.locator(`[data-pipeline="release:${ferry.versionId}"]`).getByTestId('sla-clock');
    await expect.poll(() => clock.textContent()).toMatch(/Waiting\s+\d+ s\s+·\s+due in 7 h 59 min|Waiting\s+\d+ (s|min)\s+·\s+due in 7 h/);
    expect(await rev.locator(`[data-pipeline="release:${ferry.versionId}"]`).textContent()).toMatch(/0 of 2 approvals/);
    await shot(rev, 'inbox-waiting');

    // Filters: one mini program's age filter empties the list, clearing brings it back.
    await rev.getByLabel('Age').selectOption({ label: 'Waiting over 1 h' });
    await expect.poll(() => rev.getByText('Nothing matches these filters').isVisible()).toBe(true);
    await shot(rev, 'inbox-filtered-empty');
    await rev.getByRole('button', { name: 'Clear filters' }).first().click();
    await expect.poll(() => rev.locator('[data-pipeline]').count()).toBe(2);

    await rev.getByRole('link', { name: /Harbour Ferry/ }).click();
    await rev.waitForURL(/\/versions\/ver_/);
    await expect.poll(() => rev.getByTestId('approvals').textContent()).toMatch(/0 of 2\s*approvals/);
    await expect.poll(() => rev.getByTestId('waiting-for').textContent()).toMatch(/for 2 approvals from a Reviewer or Admin other than Dan Developer \(the submitter\); due in/);
    await shot(rev, 'version-in-review');
    await rev.getByRole('button', { name: 'Approve' }).click();
    await expect.poll(() => rev.getByTestId('approvals').textContent()).toMatch(/1 of 2\s*approvals/);
    await expect.poll(() => rev.getByTestId('approvals').textContent()).toMatch(/Rita Reviewer\s*approved/);
    expect(await rev.getByRole('button', { name: 'Approve' }).count()).toBe(0);
    await shot(rev, 'version-approved-1-of-2');

    // Decided by me lists it; the badge counts one left.
    await rev.getByRole('link', { name: /Approvals/ }).click();
    await rev.getByRole('tab', { name: /Decided by me/ }).click();
    await expect.poll(() => rev.locator(`[data-pipeline="release:${ferry.versionId}"]`).textContent()).toMatch(/You approved/);
    await expect.poll(() => rev.getByTestId('approvals-badge').textContent()).toBe('1');
    await shot(rev, 'inbox-decided');
  });

  it('another reviewer rejects with a reason, a comment and a screenshot', async () => {
    const zipDir = mkdtempSync(path.join(os.tmpdir(), 'mpdp-shot-'));
    const file = path.join(zipDir, 'stall-map-crash.png');
    writeFileSync(file, Buffer.concat([Buffer.from('89504e470d0a1a0a', 'hex'), Buffer.alloc(2048, 7)]));
    const admin = await signedIn(stack.users.admin.email);
    await admin.goto(`${stack.baseUrl}/reviews`);
    await expect.poll(() => admin.locator('[data-pipeline]').count()).toBe(2);
    await admin.getByRole('link', { name: /Lantern Market/ }).click();
    await admin.waitForURL(/\/versions\/ver_/);
    await admin.getByRole('button', { name: 'Reject…' }).click();
    await expect.poll(() => admin.getByLabel('Reason').locator('option').count()).toBeGreaterThan(3);
    await admin.getByRole('button', { name: 'Confirm rejection' }).click();
    await expect.poll(() => admin.getByText('Choose the reason that fits best.').isVisible()).toBe(true);
    await admin.getByLabel('Reason').selectOption({ label: 'Crashes or functional bug' });
    await admin.getByLabel('Comment for the developer').fill('The stall map crashes on a 320 px wide phone; see the screenshot.');
    await admin.locator('#reject-file').setInputFiles(file);
    await expect.poll(() => admin.getByText('stall-map-crash.png').isVisible()).toBe(true);
    await shot(admin, 'reject-dialog');
    await admin.getByRole('button', { name: 'Confirm rejection' }).click();
    await expect.poll(() => admin.getByTestId('rejection').textContent()).toMatch(/Crashes or functional bug/);
    await shot(admin, 'rejected-admin');
  });

  it('the submitter reads the reason on the version and in My requests', async () => {
    const devPage = await signedIn(stack.users.developer.email);
    await devPage.goto(`${stack.baseUrl}/w/${stack.workspaceId}/mini-programs/${lantern.id}/versions/${lantern.versionId}`);
    const box = devPage.getByTestId('rejection');
    await expect.poll(() => box.textContent()).toMatch(/Rejected by Alice Admin/);
    expect(await box.textContent()).toMatch(/Crashes or functional bug[\s\S]*crash_or_bug[\s\S]*320 px wide phone/);
    const link = box.getByRole('link', { name: /stall-map-crash\.png/ });
    expect(await link.isVisible()).toBe(true);
    const download = await fetch(`${stack.baseUrl}${(await link.getAttribute('href'))!}`, { headers: { cookie: dev.cookie } });
    expect(download.status).toBe(200);
    expect(Number(download.headers.get('content-length') ?? (await download.arrayBuffer()).byteLength)).toBeGreaterThan(2000);
    expect(await box.getByRole('link', { name: /Resubmit/ }).isVisible()).toBe(true);
    await shot(devPage, 'rejected-submitter');

    await devPage.getByRole('link', { name: /Approvals/ }).click();
    await expect.poll(() => devPage.getByRole('tab', { name: /My requests/ }).getAttribute('aria-selected')).toBe('true');
    // A developer has no inbox: only "My requests".
    expect(await devPage.getByRole('tab', { name: /Waiting on me/ }).count()).toBe(0);
    await expect.poll(() => devPage.locator('[data-pipeline]').count()).toBe(2);
    expect(await devPage.locator(`[data-pipeline="release:${lantern.versionId}"]`).textContent()).toMatch(/Rejected by Alice Admin/);
    expect(await devPage.locator(`[data-pipeline="release:${ferry.versionId}"]`).textContent()).toMatch(/1 more approval/);
    await shot(devPage, 'my-requests');
  });

  it('an Admin sets the policy and adds a reject reason', async () => {
    const admin = await signedIn(stack.users.admin.email);
    await admin.goto(`${stack.baseUrl}/w/${stack.workspaceId}/settings/release`);
    await expect.poll(() => admin.getByLabel('Approvals a submission needs').inputValue()).toBe('2');
    await admin.getByRole('button', { name: 'One more' }).click();
    await admin.getByRole('button', { name: 'One more' }).click();
    await expect.poll(() => admin.getByTestId('policy-warnings').textContent()).toMatch(/Only 3 members can approve/);
    await shot(admin, 'settings-warning');
    await admin.getByRole('button', { name: 'Discard' }).click();
    await admin.getByLabel('Label').fill('Accessibility gaps');
    await admin.getByLabel('Code').fill('accessibility');
    await admin.getByRole('button', { name: 'Add reason' }).click();
    await expect.poll(() => admin.locator('[data-reason="accessibility"]').isVisible()).toBe(true);
    await shot(admin, 'settings');
  });
});
