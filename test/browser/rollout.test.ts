import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureOperator } from '../../db/seed.js';
import { PackageStore } from '../../lib/storage.js';
import { buildPackage, minimalPackageFiles } from '../fixtures/packages.js';
import { launchChromium } from '../helpers/browser.js';
import { reportHealth } from '../helpers/analytics.js';
import { eventually } from '../helpers/eventually.js';
import { startStack, testPassword, type Agent, type Stack } from '../helpers/stack.js';
import { uid } from '../helpers/workflow-env.js';

/**
 * A release manager in the console: starts a staged rollout with an edited plan, pauses, resumes,
 * advances and aborts it; sees a halted rollout's numbers; rolls the mini program back and takes
 * it offline. An operator retries and aborts stuck pipelines. Screenshots at each step.
 */

const shots = fileURLToPath(new URL('../../test-artifacts/screens/', import.meta.url));
let stack: Stack;
let browser: Browser;
let dev: Agent;
let rev: Agent;
let ws: string;
let step = 0;
let operatorEmail: string;

async function shot(page: Page, name: string) {
  await page.screenshot({ path: path.join(shots, `rollout-${String(++step).padStart(2, '0')}-${name}.png`), fullPage: true });
}

async function signIn(email: string): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  await page.goto(`${stack.baseUrl}/login`);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password', { exact: true }).fill(testPassword);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL((u) => !u.pathname.startsWith('/login'));
  return page;
}

const enc = encodeURIComponent;
const pipelineUrl = (id: string) => `/api/v1/workspaces/${stack.workspaceId}/pipelines/${enc(id)}`;

const names = new Map<string, string>();
async function createMiniProgram(name: string) {
  const res = await dev.post(`/api/v1/workspaces/${stack.workspaceId}/mini-programs`, { name, category: 'shopping', icon: '🏮' });
  expect(res.status).toBe(201);
  names.set(res.body.id, name);
  return res.body.id as string;
}
async function upload(mp: string, version: string) {
  const res = await dev.upload(`/api/v1/workspaces/${stack.workspaceId}/mini-programs/${mp}/versions`, buildPackage(minimalPackageFiles({ version })), version, `Version ${version}`);
  expect(res.status).toBe(201);
  return { id: res.body.id as string, sha: res.body.packageSha256 as string };
}
async function status(id: string) {
  return (await dev.get(pipelineUrl(id))).body?.pipeline?.status as string | undefined;
}
async function approved(mp: string, version: string) {
  const v = await upload(mp, version);
  const submitted = await dev.post(`/api/v1/workspaces/${stack.workspaceId}/mini-programs/${mp}/versions/${v.id}/submit`, {});
  expect(submitted.status, JSON.stringify(submitted.body)).toBe(200);
  const id = `release:${v.id}`;
  let seen: string | undefined;
  await eventually(async () => (seen = await status(id)) === 'in_review', { what: `${version} in review`, timeoutMs: 30_000 }).catch((err: Error) => {
    throw new Error(`${err.message} (last seen: ${seen})`);
  });
  expect((await rev.post(`${pipelineUrl(id)}/approve`, {})).status).toBe(200);
  // The pipeline mails the decision before it turns to the rollout: start it after that.
  await stack.waitForMail({ to: stack.users.developer.email, subject: `${names.get(mp)} ${version} was approved` });
  return { ...v, pipelineId: id };
}
async function live(mp: string, version: string) {
  const v = await approved(mp, version);
  expect((await dev.post(`${pipelineUrl(v.pipelineId)}/release`, { plan: [{ kind: 'percent', percent: 100, soakMs: 0 }] })).status).toBe(200);
  await eventually(async () => (await status(v.pipelineId)) === 'released', { what: `${version} released`, timeoutMs: 30_000 });
  return v;
}

beforeAll(async () => {
  mkdirSync(shots, { recursive: true });
  // This file's screenshots of an earlier run go: the numbering restarts.
  for (const f of readdirSync(shots)) if (f.startsWith('rollout-')) rmSync(path.join(shots, f));
  stack = await startStack({ web: true, env: { STEP_ATTEMPTS: '3', HEALTH_CHECK_INTERVAL_MS: '300', ROLLOUT_SOAK_MS: String(2 * 3600_000) } });
  ws = `/w/${stack.workspaceId}`;
  browser = await launchChromium();
  [dev, rev] = await Promise.all([stack.agent('developer'), stack.agent('reviewer')]);
  operatorEmail = `operator-${uid()}@example.test`;
  await ensureOperator(stack.sequelize, { email: operatorEmail, password: testPassword, name: 'Olga Operator' });
}, 180_000);
afterAll(async () => {
  await browser?.close();
  await stack?.stop();
});

describe('rollout controls in the console', () => {
  it('starts an edited ladder, pauses, resumes, advances and aborts', async () => {
    const mp = await createMiniProgram('Lantern Market');
    await live(mp, '1.0.0');
    const v = await approved(mp, '1.1.0');
    const page = await signIn(stack.users.developer.email);
    await page.goto(`${stack.baseUrl}${ws}/mini-programs/${mp}/versions/${v.id}`);
    const panel = page.locator('section.rollout');
    await expect.poll(() => panel.getByRole('button', { name: 'Start rollout…' }).isVisible()).toBe(true);
    await shot(page, 'approved');

    await panel.getByRole('button', { name: 'Start rollout…' }).click();
    // The default ladder 1 → 5 → 20 → 50 → 100, with the server's soak (2 hours).
    await expect.poll(() => panel.getByLabel('Stage 5 percent').inputValue()).toBe('100');
    expect(await panel.getByLabel('Stage 1 soak unit').inputValue()).toBe('h');
    await shot(page, 'plan-default');
    // Edit: 1% becomes 2%, the 50% stage goes, and stage 2 soaks 30 minutes.
    await panel.getByLabel('Stage 1 percent').fill('2');
    await panel.getByRole('button', { name: 'Remove stage 4' }).click();
    await panel.getByLabel('Stage 2 soak', { exact: true }).fill('30');
    await panel.getByLabel('Stage 2 soak unit').selectOption('min');
    // A falling ladder is refused before it is sent.
    await panel.getByLabel('Stage 3 percent').fill('1');
    await expect.poll(() => panel.getByRole('alert').textContent()).toMatch(/must rise/);
    expect(await panel.getByRole('button', { name: 'Start rollout' }).isDisabled()).toBe(true);
    await shot(page, 'plan-invalid');
    await panel.getByLabel('Stage 3 percent').fill('20');
    await shot(page, 'plan-edited');
    await panel.getByRole('button', { name: 'Start rollout', exact: true }).click();

    await expect.poll(() => panel.getByTestId('served-now').textContent()).toBe('2%');
    await expect.poll(() => panel.getByTestId('soak-left').textContent()).toMatch(/^1h 5\dm \d\ds left in the soak/);
    const rungs = panel.getByRole('list', { name: 'Rollout plan' }).getByRole('listitem');
    expect(await rungs.count()).toBe(4);
    expect(await rungs.nth(0).getAttribute('aria-current')).toBe('step');
    await shot(page, 'rolling-out');
    // The countdown is live.
    const before = await panel.getByTestId('soak-left').textContent();
    await expect.poll(() => panel.getByTestId('soak-left').textContent(), { timeout: 5000 }).not.toBe(before);

    await panel.getByRole('button', { name: 'Pause' }).click();
    await expect.poll(() => panel.getByTestId('soak-left').textContent()).toMatch(/clock stopped/);
    expect(await panel.getByRole('button', { name: 'Resume' }).isVisible()).toBe(true);
    await shot(page, 'paused');
    await panel.getByRole('button', { name: 'Resume' }).click();
    await expect.poll(() => panel.getByRole('button', { name: 'Pause' }).isVisible()).toBe(true);

    await panel.getByRole('button', { name: 'Advance now' }).click();
    await expect.poll(() => panel.getByTestId('served-now').textContent()).toBe('5%');
    await expect.poll(() => rungs.nth(1).getAttribute('aria-current')).toBe('step');
    await expect.poll(() => panel.getByTestId('soak-left').textContent()).toMatch(/^(29|30)m/);
    await shot(page, 'advanced');

    await panel.getByRole('button', { name: 'Abort…' }).click();
    await panel.getByLabel(/Abort the rollout\?/).fill('Support tickets doubled');
    await shot(page, 'abort-confirm');
    await panel.getByRole('button', { name: 'Abort rollout' }).click();
    await expect.poll(() => panel.getByTestId('served-now').textContent()).toBe('0%');
    await expect.poll(() => panel.textContent()).toMatch(/Stopped at stage 2 of 4/);
    expect(await panel.getByRole('button', { name: 'Pause' }).count()).toBe(0);
    await shot(page, 'aborted');
    await page.context().close();
  });

  it('shows a halted rollout with the numbers that tripped it', async () => {
    const mp = await createMiniProgram('Harbour Tickets');
    const base = await live(mp, '2.0.0');
    const v = await approved(mp, '2.1.0');
    // What the host apps' runtimes send: launch and crash events through POST /api/v1/collect (wait=true).
    const report = (versionId: string, launches: number, crashes: number) => reportHealth(stack, { miniProgramId: mp, versionId, launches, crashes });
    await report(base.id, 8000, 24);
    expect((await dev.post(`${pipelineUrl(v.pipelineId)}/release`, { plan: [{ kind: 'percent', percent: 5, soakMs: 600_000 }, { kind: 'percent', percent: 100, soakMs: 0 }] })).status).toBe(200);
    await report(v.id, 1200, 66);
    await eventually(async () => (await status(v.pipelineId)) === 'halted', { what: 'halted', timeoutMs: 30_000 });
    const page = await signIn(stack.users.developer.email);
    await page.goto(`${stack.baseUrl}${ws}/mini-programs/${mp}/versions/${v.id}`);
    const alert = page.locator('section.rollout .halted');
    await expect.poll(() => alert.isVisible()).toBe(true);
    expect(await alert.textContent()).toMatch(/5\.5%/);
    expect(await alert.textContent()).toMatch(/66 \/ 1,200/);
    await shot(page, 'halted');
    await page.context().close();
  });

  it('rolls back from the mini program page, and takes it offline from the danger zone', async () => {
    const mp = await createMiniProgram('Night Bazaar');
    await live(mp, '1.0.0');
    await live(mp, '1.1.0');
    const admin = await signIn(stack.users.admin.email);
    await admin.goto(`${stack.baseUrl}${ws}/mini-programs/${mp}`);
    const versions = admin.getByRole('table').first();
    const row = versions.getByRole('row', { name: /^1\.0\.0/ });
    await expect.poll(() => row.getByRole('button', { name: 'Roll back to this version' }).isVisible()).toBe(true);
    expect(await versions.getByRole('row', { name: /^1\.1\.0/ }).getByRole('button', { name: 'Roll back to this version' }).count()).toBe(0);
    await expect.poll(() => admin.getByRole('heading', { name: 'Pipelines' }).isVisible()).toBe(true);
    await shot(admin, 'mini-program-history');
    await row.getByRole('button', { name: 'Roll back to this version' }).click();
    const dialog = admin.getByRole('dialog');
    await dialog.getByRole('button', { name: 'Roll back to 1.0.0' }).click();
    await expect.poll(() => dialog.getByRole('alert').textContent()).toMatch(/at least 3 characters/);
    await dialog.getByLabel('Reason').fill('Checkout fails on older phones since 1.1.0');
    await shot(admin, 'rollback-dialog');
    await dialog.getByRole('button', { name: 'Roll back to 1.0.0' }).click();
    await admin.waitForURL(/\/pipelines\/rollback%3A|\/pipelines\/rollback:/);
    await expect.poll(() => admin.getByTestId('waiting-words').textContent(), { timeout: 20_000 }).toMatch(/Rolled back/);
    await expect.poll(() => admin.getByText('Rolled back', { exact: true }).isVisible()).toBe(true);
    await shot(admin, 'rollback-pipeline');

    await admin.goto(`${stack.baseUrl}${ws}/mini-programs/${mp}`);
    await expect.poll(async () => (await admin.locator('.stats').textContent()) ?? '').toMatch(/v1\.0\.0/);
    await admin.getByRole('button', { name: 'Take offline…' }).click();
    await admin.getByLabel('Reason').fill('The merchant closed the shop');
    await shot(admin, 'offline-form');
    await admin.getByRole('button', { name: 'Take offline', exact: true }).click();
    await admin.waitForURL(/\/pipelines\/offline/);
    await expect.poll(() => admin.getByTestId('waiting-words').textContent()).toMatch(/approval/);
    expect(await admin.getByRole('button', { name: 'Approve' }).count()).toBe(0);
    await shot(admin, 'offline-waiting-review');
    await admin.context().close();
  });
});

describe('operators and stuck releases', () => {
  it('lists stuck pipelines across workspaces, retries one and aborts another in bulk', async () => {
    const store = new PackageStore(stack.dataDir);
    // Each with a package of its own (the same bytes would share one stored file).
    const stuck = async (name: string, version: string) => {
      const mp = await createMiniProgram(name);
      const v = await upload(mp, version);
      const file = store.pathOf(v.sha);
      const bytes = readFileSync(file);
      rmSync(file);
      mkdirSync(file);
      await dev.post(`/api/v1/workspaces/${stack.workspaceId}/mini-programs/${mp}/versions/${v.id}/submit`, {});
      const id = `release:${v.id}`;
      await eventually(async () => (await status(id)) === 'stuck', { what: `${name} stuck`, timeoutMs: 30_000 });
      return { id, repair: () => (rmSync(file, { recursive: true, force: true }), writeFileSync(file, bytes)) };
    };
    const a = await stuck('Tea Garden', '5.0.1');
    const b = await stuck('Ferry Pass', '5.0.2');

    const op = await signIn(operatorEmail);
    await op.getByRole('link', { name: 'Stuck releases' }).click();
    await op.waitForURL(/\/operator\/releases/);
    const rowA = op.locator(`tr[data-pipeline="${a.id}"]`);
    const rowB = op.locator(`tr[data-pipeline="${b.id}"]`);
    await expect.poll(() => rowA.isVisible()).toBe(true);
    await expect.poll(() => rowB.isVisible()).toBe(true);
    expect(await rowA.textContent()).toMatch(/check the package/);
    expect(await rowA.getByRole('link', { name: 'Temporal ↗' }).getAttribute('href')).toMatch(new RegExp(`/workflows/${enc(a.id)}$`));
    // The operator is not a member of the workspace: its version page would answer "not found", so no link to it.
    expect(await rowA.getByRole('link', { name: 'Version' }).count()).toBe(0);
    await shot(op, 'stuck-list');

    a.repair();
    await rowA.getByRole('checkbox').check();
    await shot(op, 'stuck-selected');
    await op.getByRole('button', { name: 'Retry step' }).click();
    await expect.poll(() => rowA.count()).toBe(0);
    await eventually(async () => (await status(a.id)) === 'in_review', { what: 'retried into review', timeoutMs: 30_000 });

    await rowB.getByRole('checkbox').check();
    await op.getByRole('button', { name: 'Abort…' }).click();
    await op.getByLabel('Abort comment').fill('Package lost; the developer re-uploads');
    await shot(op, 'stuck-abort');
    await op.getByRole('button', { name: /^Abort 1$/ }).click();
    await expect.poll(() => rowB.count()).toBe(0);
    await eventually(async () => (await status(b.id)) === 'aborted', { what: 'aborted', timeoutMs: 30_000 });
    await shot(op, 'stuck-empty');
    b.repair();
    await op.context().close();
  });
});
