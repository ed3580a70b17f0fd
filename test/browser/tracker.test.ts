import { QueryTypes } from 'sequelize';
import type { Browser, Page, Request } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildPackage, minimalPackageFiles } from '../fixtures/packages.js';
import { ingestKeyOf } from '../helpers/analytics.js';
import { launchChromium } from '../helpers/browser.js';
import { eventually } from '../helpers/eventually.js';
import { startStack, type Agent, type Stack } from '../helpers/stack.js';

/**
 * The JavaScript tracker in real Chromium against the real API and PostgreSQL: a page of another
 * origin (localhost, while the API is 127.0.0.1) loads the tracker from GET /sdk/mpdp-tracker.js,
 * records a launch and page views, throws an uncaught error and leaves a rejection unhandled, and is
 * then left (navigation: the page is hidden). The events must be in analytics_events, counted for
 * the health check, and grouped as crashes and errors.
 */

let stack: Stack;
let browser: Browser;
let dev: Agent;

interface Row { type: string; version_id: string; user_id: string; session_id: string; page: string | null; name: string | null; value: number | null; message: string | null; stack: string | null }

async function createMiniProgram(name: string, version: string) {
  const res = await dev.post(`/api/v1/workspaces/${stack.workspaceId}/mini-programs`, { name, category: 'shopping', icon: '🛒' });
  expect(res.status).toBe(201);
  const up = await dev.upload(`/api/v1/workspaces/${stack.workspaceId}/mini-programs/${res.body.id}/versions`, buildPackage(minimalPackageFiles({ version })), version, 'tracked');
  expect(up.status).toBe(201);
  return { id: res.body.id as string, versionId: up.body.id as string };
}

async function eventsOf(miniProgramId: string) {
  return stack.sequelize.query<Row>('SELECT type, version_id, user_id, session_id, page, name, value, message, stack FROM analytics_events WHERE mini_program_id = :mp ORDER BY at, type', { replacements: { mp: miniProgramId }, type: QueryTypes.SELECT });
}

/** A page of the mini program's web build, on another origin than the API, embedding the tracker. */
function shopPage(o: { api: string; ingestKey: string; miniProgramId: string }) {
  return `<!doctype html><html><head><meta charset="utf-8"><title>Night Market</title></head><body>
<h1>Night Market</h1><p id="state">loading</p>
<script type="module">
  import { createTracker } from '${o.api}/sdk/mpdp-tracker.js';
  // Long interval: nothing leaves by the timer during the test, only by flush() and page hide.
  const tracker = createTracker({ endpoint: '${o.api}', ingestKey: '${o.ingestKey}', miniProgramId: '${o.miniProgramId}', version: '1.0.0', flushIntervalMs: 600000 });
  window.tracker = tracker;
  tracker.launch();
  tracker.pageView('pages/index/index');
  document.getElementById('state').textContent = 'ready';
</script></body></html>`;
}

beforeAll(async () => {
  stack = await startStack();
  browser = await launchChromium();
  dev = await stack.agent('developer');
}, 180_000);
afterAll(async () => {
  await browser?.close();
  await stack?.stop();
});

describe('the JavaScript tracker in a browser', () => {
  it('serves the tracker publicly, cacheable, as JavaScript', async () => {
    const res = await fetch(`${stack.baseUrl}/sdk/mpdp-tracker.js`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(res.headers.get('cache-control')).toMatch(/^public, max-age=/);
    expect(await res.text()).toMatch(/export const createTracker/);
    expect((await fetch(`${stack.baseUrl}/sdk/mpdp-tracker.global.js`)).status).toBe(200);
    expect((await fetch(`${stack.baseUrl}/sdk/unknown.js`)).status).toBe(404);
  });

  it('sends launches, page views, errors and crashes with stacks, and flushes by beacon when the page is left', async () => {
    const mp = await createMiniProgram('Night Market', '1.0.0');
    const ingestKey = await ingestKeyOf(stack, mp.id);
    const port = new URL(stack.baseUrl).port;
    const context = await browser.newContext();
    const page: Page = await context.newPage();
    const collects: { type: string; method: string; url: string }[] = [];
    page.on('request', (r: Request) => {
      if (r.url().includes('/api/v1/collect')) collects.push({ type: r.resourceType(), method: r.method(), url: r.url() });
    });
    const pageErrors: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));

    // Another origin than the API's (localhost vs 127.0.0.1): the module import and collect cross origins.
    await page.goto(`http://localhost:${port}/sdk/mpdp-tracker.d.ts`);
    await page.setContent(shopPage({ api: stack.baseUrl, ingestKey, miniProgramId: mp.id }));
    await expect.poll(() => page.locator('#state').textContent()).toBe('ready');

    // A first batch by fetch (flush), read by the page through CORS.
    await page.evaluate(async () => {
      const t = (window as any).tracker;
      t.pageView('pages/cart/cart', 4200);
      t.track('add_to_cart', { sku: 'LANTERN-1', qty: 2 });
      await t.flush();
    });
    expect(await page.evaluate(() => (window as any).tracker.stats())).toMatchObject({ pending: 0, sent: 4, dropped: 0 });

    // An uncaught exception (a crash) and a rejection nobody handles (an error), thrown by the page's own code.
    await page.evaluate(() => {
      function renderCart(cart: any) {
        return cart.items.length;
      }
      setTimeout(() => renderCart(undefined));
      void Promise.reject(new Error('checkout failed: 502 from /api/pay'));
      (window as any).tracker.perf('checkout_ms', 812);
    });
    await expect.poll(() => page.evaluate(() => (window as any).tracker.stats().pending)).toBe(3);
    expect(pageErrors.join('\n')).toMatch(/items/);
    const userId = await page.evaluate(() => localStorage.getItem('mpdp_uid'));

    // The one request so far: a CORS-simple POST (no preflight) with the key in the URL, as beacons send it.
    expect(collects).toEqual([{ type: 'fetch', method: 'POST', url: `${stack.baseUrl}/api/v1/collect?key=${ingestKey}` }]);

    // The user leaves: the page is hidden, the queue goes by sendBeacon (Playwright does not report
    // beacons; the three queued events arriving with no further fetch shows it).
    await page.goto('about:blank');

    const rows = await eventually(async () => {
      await stack.ingest.flush();
      const found = await eventsOf(mp.id);
      return found.length >= 7 ? found : null;
    }, { what: 'the events in analytics_events', timeoutMs: 20_000 });
    expect(collects).toHaveLength(1);
    expect(rows.map((r) => r.type).sort()).toEqual(['crash', 'custom', 'error', 'launch', 'page_view', 'page_view', 'perf']);
    // The version string resolved to the version; one anonymous user and one session throughout.
    expect(new Set(rows.map((r) => r.version_id))).toEqual(new Set([mp.versionId]));
    expect(new Set(rows.map((r) => r.user_id))).toEqual(new Set([userId]));
    expect(new Set(rows.map((r) => r.session_id)).size).toBe(1);
    expect(rows.find((r) => r.page === 'pages/cart/cart')).toMatchObject({ type: 'page_view', value: 4200 });
    expect(rows.find((r) => r.type === 'perf')).toMatchObject({ name: 'checkout_ms', value: 812 });
    const crash = rows.find((r) => r.type === 'crash')!;
    expect(crash.message).toMatch(/^TypeError: Cannot read properties of undefined \(reading 'items'\)/);
    expect(crash.stack).toMatch(/at renderCart/);
    const error = rows.find((r) => r.type === 'error')!;
    expect(error.message).toBe('checkout failed: 502 from /api/pay');
    expect(error.stack).toMatch(/^Error: checkout failed/);

    // The health check counts them; the crash and the error each make a group.
    const [counts] = await stack.sequelize.query<{ launches: string; crashes: string }>('SELECT sum(launches) AS launches, sum(crashes) AS crashes FROM runtime_counts WHERE mini_program_id = :mp', { replacements: { mp: mp.id }, type: QueryTypes.SELECT });
    expect(counts).toEqual({ launches: '1', crashes: '1' });
    const groups = await eventually(async () => {
      const found = await stack.sequelize.query<{ kind: string; events: string; users: string; title: string }>('SELECT kind, events, users, title FROM crash_groups WHERE mini_program_id = :mp ORDER BY kind', { replacements: { mp: mp.id }, type: QueryTypes.SELECT });
      return found.length >= 2 ? found : null;
    }, { what: 'two crash groups' });
    expect(groups.map((g) => [g.kind, Number(g.events), Number(g.users)])).toEqual([['crash', 1, 1], ['error', 1, 1]]);
    await context.close();
  });

  it('works as a classic script too, and sends its queue when the page turns hidden', async () => {
    const mp = await createMiniProgram('Tea House', '2.3.1');
    const ingestKey = await ingestKeyOf(stack, mp.id);
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${stack.baseUrl}/sdk/mpdp-tracker.d.ts`);
    await page.setContent(`<!doctype html><html><body><p id="state">loading</p>
<script src="${stack.baseUrl}/sdk/mpdp-tracker.global.js"></script>
<script>
  const tracker = mpdpTracker.createTracker({ endpoint: '${stack.baseUrl}/api/v1/collect', ingestKey: '${ingestKey}', version: '2.3.1', flushIntervalMs: 600000 });
  tracker.launch();
  tracker.pageView('pages/menu/menu');
  window.tracker = tracker;
  document.getElementById('state').textContent = 'ready';
</script></body></html>`);
    await expect.poll(() => page.locator('#state').textContent()).toBe('ready');
    expect(await page.evaluate(() => (window as any).tracker.stats().pending)).toBe(2);
    // The tab goes to the background (the page stays open).
    await page.evaluate(() => {
      Object.defineProperty(document, 'visibilityState', { value: 'hidden', configurable: true });
      document.dispatchEvent(new Event('visibilitychange'));
    });
    expect(await page.evaluate(() => (window as any).tracker.stats())).toMatchObject({ pending: 0, beacons: 1 });
    const rows = await eventually(async () => {
      await stack.ingest.flush();
      const found = await eventsOf(mp.id);
      return found.length >= 2 ? found : null;
    }, { what: 'the beaconed events' });
    expect(rows.map((r) => [r.type, r.version_id, r.page])).toEqual([['launch', mp.versionId, null], ['page_view', mp.versionId, 'pages/menu/menu']]);
    await context.close();
  });
});
