import { randomUUID } from 'node:crypto';
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Browser, type Page } from 'playwright-core';
import { QueryTypes } from 'sequelize';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { refreshDailyRollups } from '../../lib/analytics/daily-rollups.js';
import { generateEvents } from '../../lib/analytics/generate.js';
import type { AnalyticsEvent } from '../../lib/analytics/types.js';
import { buildPackage, minimalPackageFiles } from '../fixtures/packages.js';
import { launchChromium } from '../helpers/browser.js';
import { eventually } from '../helpers/eventually.js';
import { startStack, testPassword, type Agent, type Stack } from '../helpers/stack.js';

/**
 * Both analytics dashboards in the console over the real stack: realistic events posted to
 * /api/v1/collect with the mini program's public ingest key (wait=true: written when answered),
 * then the Behaviour page (charts with their tables, filters in the URL, a CSV that downloads),
 * the empty state of a mini program without events (its ingest key and the tracker snippet), the
 * crash rate per version with the rolling-out version's health check, the crash groups, and a
 * group resolved with a comment. Screenshots at each step.
 */

const shots = fileURLToPath(new URL('../../test-artifacts/screens/', import.meta.url));
let stack: Stack;
let browser: Browser;
let dev: Agent;
let rev: Agent;
let ws: string;
let step = 0;

async function shot(page: Page, name: string) {
  for (const close of await page.getByRole('button', { name: 'Dismiss notification' }).all()) await close.click().catch(() => {});
  await expect.poll(() => page.locator('.toast').count()).toBe(0);
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: path.join(shots, `analytics-${String(++step).padStart(2, '0')}-${name}.png`), fullPage: true });
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

const pipelineUrl = (id: string) => `/api/v1/workspaces/${stack.workspaceId}/pipelines/${encodeURIComponent(id)}`;
const names = new Map<string, string>();
async function createMiniProgram(name: string) {
  const res = await dev.post(`/api/v1/workspaces/${stack.workspaceId}/mini-programs`, { name, category: 'shopping', icon: '🏮' });
  expect(res.status).toBe(201);
  names.set(res.body.id, name);
  return res.body.id as string;
}
async function status(id: string) {
  return (await dev.get(pipelineUrl(id))).body?.pipeline?.status as string | undefined;
}
async function approved(mp: string, version: string) {
  const res = await dev.upload(`/api/v1/workspaces/${stack.workspaceId}/mini-programs/${mp}/versions`, buildPackage(minimalPackageFiles({ version })), version, `Version ${version}`);
  expect(res.status).toBe(201);
  const id = res.body.id as string;
  expect((await dev.post(`/api/v1/workspaces/${stack.workspaceId}/mini-programs/${mp}/versions/${id}/submit`, {})).status).toBe(200);
  const pipelineId = `release:${id}`;
  await eventually(async () => (await status(pipelineId)) === 'in_review', { what: `${version} in review`, timeoutMs: 30_000 });
  expect((await rev.post(`${pipelineUrl(pipelineId)}/approve`, {})).status).toBe(200);
  await stack.waitForMail({ to: stack.users.developer.email, subject: `${names.get(mp)} ${version} was approved` });
  return { id, pipelineId };
}

/** The wire shape of an event (camelCase, nulls left out, properties as an object). */
function wire(e: AnalyticsEvent): Record<string, unknown> {
  const out: Record<string, unknown> = { id: e.id, type: e.type, at: e.at, miniProgramId: e.miniProgramId, versionId: e.versionId, userId: e.userId, sessionId: e.sessionId };
  for (const k of ['hostAppId', 'page', 'name', 'value', 'message', 'stack'] as const) if (e[k] !== null) out[k] = e[k];
  if (e.props) out.properties = JSON.parse(e.props);
  return out;
}

/** Posts events to collect with the ingest key, 500 a batch, and waits until they are written. */
async function collect(key: string, events: Record<string, unknown>[]) {
  for (let i = 0; i < events.length; i += 500) {
    const res = await fetch(`${stack.baseUrl}/api/v1/collect?wait=true`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-mpdp-ingest-key': key },
      body: JSON.stringify({ events: events.slice(i, i + 500) }),
    });
    const body = (await res.json()) as { accepted: number; rejected: unknown[]; durable: boolean };
    expect(res.status, JSON.stringify(body)).toBe(202);
    expect(body.rejected).toEqual([]);
    expect(body.durable).toBe(true);
  }
}

/** Launches (and some crashes) now, for the health check of the stage that just began. */
function launchesNow(mp: string, versionId: string, launches: number, crashes: number) {
  const out: Record<string, unknown>[] = [];
  const at = Date.now() - 1000;
  for (let i = 0; i < launches; i++) {
    const userId = `now-${versionId.slice(-6)}-${i}`;
    out.push({ id: randomUUID(), type: 'launch', at, miniProgramId: mp, versionId, userId, sessionId: `s-${userId}` });
    if (i < crashes) {
      out.push({
        id: randomUUID(), type: 'crash', at, miniProgramId: mp, versionId, userId, sessionId: `s-${userId}`, page: 'pages/checkout/checkout',
        message: `TypeError: Cannot read properties of null (reading 'total')`,
        stack: `TypeError: Cannot read properties of null (reading 'total')\n    at computeTotal (pages/checkout/checkout.js:88:21)\n    at Page.onShow (pages/checkout/checkout.js:41:9)\n    at callHook (framework/app-service.js:1201:17)`,
      });
    }
  }
  return out;
}

let mp: string;
let emptyMp: string;
let live: string;
let next: string;
let generated: AnalyticsEvent[] = [];
/** Lantern Market's ingest key. */
let key: string;

beforeAll(async () => {
  mkdirSync(shots, { recursive: true });
  for (const f of readdirSync(shots)) if (f.startsWith('analytics-')) rmSync(path.join(shots, f));
  stack = await startStack({ web: true, env: { HEALTH_CHECK_INTERVAL_MS: '500', ROLLOUT_SOAK_MS: String(2 * 3600_000) } });
  ws = `/w/${stack.workspaceId}`;
  browser = await launchChromium();
  [dev, rev] = await Promise.all([stack.agent('developer'), stack.agent('reviewer')]);

  // Lantern Market: 1.0.0 live, 1.1.0 rolling out to 5% (a long soak keeps it there).
  mp = await createMiniProgram('Lantern Market');
  const v1 = await approved(mp, '1.0.0');
  expect((await dev.post(`${pipelineUrl(v1.pipelineId)}/release`, { plan: [{ kind: 'percent', percent: 100, soakMs: 0 }] })).status).toBe(200);
  await eventually(async () => (await status(v1.pipelineId)) === 'released', { what: '1.0.0 released', timeoutMs: 30_000 });
  const v2 = await approved(mp, '1.1.0');
  expect((await dev.post(`${pipelineUrl(v2.pipelineId)}/release`, { plan: [{ kind: 'percent', percent: 5, soakMs: 7_200_000 }, { kind: 'percent', percent: 100, soakMs: 0 }] })).status).toBe(200);
  await eventually(async () => (await status(v2.pipelineId)) === 'rolling_out', { what: '1.1.0 rolling out', timeoutMs: 30_000 });
  live = v1.id;
  next = v2.id;
  emptyMp = await createMiniProgram('Harbour Tickets');

  // Six days of a shop's users on both versions, then launches since the stage began.
  [{ ingest_key: key }] = await stack.sequelize.query<{ ingest_key: string }>('SELECT ingest_key FROM mini_programs WHERE id = :mp', { replacements: { mp }, type: QueryTypes.SELECT });
  for (const chunk of generateEvents({ seed: 7, workspaceId: stack.workspaceId, miniProgramId: mp, versions: [live, next], users: 260, days: 6, end: Date.now() - 60_000, chunkSize: 2000 })) {
    generated.push(...chunk);
    await collect(key, chunk.map(wire));
  }
  await collect(key, [...launchesNow(mp, live, 400, 3), ...launchesNow(mp, next, 300, 2)]);
  // The API refreshes the dashboards' daily rollups a few seconds after flushes; do it now.
  await refreshDailyRollups(stack.pool);
}, 300_000);
afterAll(async () => {
  await browser?.close();
  await stack?.stop();
});

describe('analytics in the console', () => {
  it('Behaviour: charts with their numbers, filters in the URL, CSV export, and the empty state with the ingest key', async () => {
    const page = await signIn(stack.users.developer.email);
    await page.getByRole('link', { name: 'Analytics' }).click();
    await page.waitForURL(/\/analytics$/);
    expect(await page.getByRole('navigation', { name: 'Analytics' }).getByRole('link', { name: 'Behaviour' }).getAttribute('aria-current')).toBe('page');

    // The daily table adds up to the launches posted (the generated ones and the ones of now).
    const launchesPosted = generated.filter((e) => e.type === 'launch').length + 700;
    const daily = page.getByTestId('daily-table');
    await expect.poll(() => daily.locator('tbody tr').count()).toBe(30);
    const sumColumn = async (col: number) => (await daily.locator(`tbody tr td:nth-child(${col})`).allInnerTexts()).reduce((a, t) => a + Number(t.replace(/,/g, '')), 0);
    expect(await sumColumn(2)).toBe(launchesPosted);
    // The top page is the most viewed one of the events.
    const views = new Map<string, number>();
    for (const e of generated) if (e.type === 'page_view') views.set(e.page!, (views.get(e.page!) ?? 0) + 1);
    const top = [...views.entries()].sort((a, b) => b[1] - a[1])[0]!;
    const firstPage = page.getByTestId('pages-table').locator('tbody tr').first();
    await expect.poll(() => firstPage.locator('td').first().innerText()).toBe(top[0]);
    expect(await firstPage.locator('td').nth(1).innerText()).toBe(top[1].toLocaleString('en'));
    await expect.poll(() => page.getByTestId('retention-table').locator('tbody tr').count()).toBeGreaterThan(0);
    expect(await page.locator('.chart canvas').count()).toBeGreaterThanOrEqual(4);
    await shot(page, 'behaviour');

    // Filters: the last 7 days, one mini program, one version — all in the URL.
    await page.getByRole('button', { name: '7 days' }).click();
    await expect.poll(() => daily.locator('tbody tr').count()).toBe(7);
    await page.getByLabel('Mini program', { exact: true }).selectOption(mp);
    await expect.poll(() => page.locator('#an-version option').count()).toBe(3);
    await page.getByLabel('Version', { exact: true }).selectOption(next);
    await expect.poll(() => new URL(page.url()).searchParams.get('versionId')).toBe(next);
    expect(new URL(page.url()).searchParams.get('miniProgramId')).toBe(mp);
    expect(new URL(page.url()).searchParams.get('from')).not.toBeNull();
    const nextLaunches = generated.filter((e) => e.type === 'launch' && e.versionId === next).length + 300;
    await expect.poll(() => sumColumn(2)).toBe(nextLaunches);
    await page.getByRole('button', { name: 'Host app', exact: true }).click();
    await expect.poll(() => new URL(page.url()).searchParams.get('split')).toBe('host_app');
    await shot(page, 'behaviour-filtered');

    // The CSV link carries the filters and downloads the daily numbers.
    const href = await page.getByTestId('csv-daily').getAttribute('href');
    expect(href).toContain(`versionId=${next}`);
    expect(href).toContain('report=daily');
    const csv = await page.request.get(`${stack.baseUrl}${href}`);
    expect(csv.status()).toBe(200);
    expect(csv.headers()['content-type']).toMatch(/text\/csv/);
    expect(csv.headers()['content-disposition']).toMatch(/attachment/);
    const lines = (await csv.text()).trim().split(/\r?\n/);
    expect(lines).toHaveLength(1 + 7);
    expect(lines[0]).toMatch(/day/i);

    // A reload keeps the view.
    await page.reload();
    await expect.poll(() => page.locator('#an-version').inputValue()).toBe(next);
    await expect.poll(() => daily.locator('tbody tr').count()).toBe(7);

    // A mini program without events: how to embed the tracker, with its ingest key.
    await page.getByLabel('Mini program', { exact: true }).selectOption(emptyMp);
    const setup = page.getByTestId('tracker-setup');
    await expect.poll(() => setup.isVisible()).toBe(true);
    const [{ ingest_key: emptyKey }] = await stack.sequelize.query<{ ingest_key: string }>('SELECT ingest_key FROM mini_programs WHERE id = :mp', { replacements: { mp: emptyMp }, type: QueryTypes.SELECT });
    await expect.poll(() => setup.getByTestId('ingest-key').innerText()).toBe(emptyKey);
    expect(await setup.locator('pre').innerText()).toContain(`miniProgramId: '${emptyMp}'`);
    await shot(page, 'empty-state');
    await page.context().close();
  }, 180_000);

  it('Crashes: rate per version with the health check, groups, a group resolved with a comment', async () => {
    const page = await signIn(stack.users.developer.email);
    await page.goto(`${stack.baseUrl}${ws}/mini-programs/${mp}`);
    await expect.poll(() => page.getByTestId('mp-analytics').isVisible()).toBe(true);
    await shot(page, 'mini-program-link');
    await page.getByTestId('mp-analytics').click();
    await page.waitForURL(/\/analytics\?miniProgramId=/);
    await page.getByRole('navigation', { name: 'Analytics' }).getByRole('link', { name: 'Crashes' }).click();
    await page.waitForURL((u) => u.pathname.endsWith('/analytics/crashes') && u.searchParams.get('miniProgramId') === mp);

    // The rolling-out version's health check: the numbers of the stage that began just now.
    const rates = page.getByTestId('crash-rates');
    const check = rates.getByTestId('health-check');
    await expect.poll(() => check.isVisible()).toBe(true);
    await expect.poll(() => check.innerText()).toMatch(/2 crashes \/ 300 launches/);
    expect(await check.innerText()).toMatch(/3 crashes \/ 400 launches/);
    expect(await check.getByTestId('health-verdict').innerText()).toBe('Healthy');

    const list = page.getByTestId('crash-groups');
    await expect.poll(() => list.locator('tbody tr').count()).toBeGreaterThan(0);
    const [{ n: openGroups }] = await stack.sequelize.query<{ n: number }>(`SELECT count(*)::int AS n FROM crash_groups WHERE mini_program_id = :mp AND status = 'open'`, { replacements: { mp }, type: QueryTypes.SELECT });
    expect(await list.locator('tbody tr').count()).toBe(Math.min(openGroups!, 25));
    expect(await list.locator('svg.spark').count()).toBe(await list.locator('tbody tr').count());
    await shot(page, 'crashes');

    // The checkout crash of now: open it, resolve it with a comment.
    await page.getByLabel('Search crash groups').fill('total');
    await expect.poll(() => list.locator('tbody tr').count()).toBe(1);
    await list.locator('tbody tr a.title').first().click();
    await page.waitForURL(/\/analytics\/crashes\/[^/?]+$/);
    await expect.poll(() => page.getByTestId('group-status').innerText()).toBe('Open');
    expect(await page.getByTestId('stack-sample').innerText()).toContain('at computeTotal (pages/checkout/checkout.js:88:21)');
    expect(await page.getByTestId('group-versions').innerText()).toContain('v1.1.0');
    await shot(page, 'crash-group');

    await page.getByRole('button', { name: 'Resolve…' }).click();
    await page.getByLabel(/Resolve this group/).fill('Null check on the cart total in 1.1.1');
    await shot(page, 'resolve-form');
    await page.getByRole('button', { name: 'Mark resolved' }).click();
    await expect.poll(() => page.getByTestId('group-status').innerText()).toBe('Resolved');
    const history = page.getByTestId('group-history');
    await expect.poll(() => history.innerText()).toContain('Null check on the cart total in 1.1.1');
    expect(await history.innerText()).toContain(`by ${stack.users.developer.name}`);
    expect(await page.getByRole('button', { name: 'Reopen…' }).isVisible()).toBe(true);
    const groupId = decodeURIComponent(new URL(page.url()).pathname.split('/').pop()!);
    const [row] = await stack.sequelize.query<{ status: string }>('SELECT status FROM crash_groups WHERE id = :id', { replacements: { id: groupId }, type: QueryTypes.SELECT });
    expect(row!.status).toBe('resolved');
    await shot(page, 'crash-group-resolved');

    // Back in the list: not among the open ones, there under Resolved.
    await page.getByRole('link', { name: 'Crashes', exact: true }).first().click();
    await page.waitForURL(/\/analytics\/crashes/);
    await page.getByLabel('Search crash groups').fill('total');
    await expect.poll(() => page.getByText('No matching groups').isVisible()).toBe(true);
    await page.getByRole('button', { name: 'Resolved', exact: true }).click();
    await expect.poll(() => list.locator('tbody tr').count()).toBe(1);
    expect(await list.locator('tbody tr .st').innerText()).toBe('Resolved');

    // The same crash again in 1.1.0 (the version it was resolved in): it stays resolved.
    const [again] = launchesNow(mp, next, 1, 1).filter((e) => e.type === 'crash');
    await collect(key, [again!]);
    const statusOf = async () => (await stack.sequelize.query<{ status: string }>('SELECT status FROM crash_groups WHERE id = :id', { replacements: { id: groupId }, type: QueryTypes.SELECT }))[0]!.status;
    expect(await statusOf()).toBe('resolved');
    // And in a newer version, 1.2.0: it reopens, and its history says why.
    const upload = await dev.upload(`/api/v1/workspaces/${stack.workspaceId}/mini-programs/${mp}/versions`, buildPackage(minimalPackageFiles({ version: '1.2.0' })), '1.2.0', 'Version 1.2.0');
    expect(upload.status).toBe(201);
    const [comeback] = launchesNow(mp, upload.body.id as string, 1, 1).filter((e) => e.type === 'crash');
    await collect(key, [comeback!]);
    expect(await statusOf()).toBe('open');
    await page.goto(`${stack.baseUrl}${ws}/analytics/crashes/${encodeURIComponent(groupId)}`);
    await expect.poll(() => page.getByTestId('group-status').innerText()).toBe('Open');
    await expect.poll(() => history.innerText()).toContain('Seen again in version 1.2.0 (resolved in 1.1.0)');
    expect(await page.getByTestId('group-versions').innerText()).toContain('v1.2.0');
    expect(await page.getByRole('button', { name: 'Resolve…' }).isVisible()).toBe(true);
    await shot(page, 'crash-group-reopened');
    await page.context().close();
  }, 180_000);

  it('a Reviewer reads the crash group without the resolve button', async () => {
    const [{ id }] = await stack.sequelize.query<{ id: string }>(`SELECT id FROM crash_groups WHERE mini_program_id = :mp AND status = 'open' LIMIT 1`, { replacements: { mp }, type: QueryTypes.SELECT });
    const page = await signIn(stack.users.reviewer.email);
    await page.goto(`${stack.baseUrl}${ws}/analytics/crashes/${encodeURIComponent(id!)}`);
    await expect.poll(() => page.getByTestId('group-status').innerText()).toBe('Open');
    expect(await page.getByRole('button', { name: 'Resolve…' }).count()).toBe(0);
    await page.context().close();
  });
});
