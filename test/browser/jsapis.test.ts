import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Browser, type Page } from 'playwright-core';
import { QueryTypes } from 'sequelize';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jsapiCatalog } from '../../lib/jsapi-catalog.js';
import { launchChromium } from '../helpers/browser.js';
import { startStack, testPassword, type Stack } from '../helpers/stack.js';

const shots = fileURLToPath(new URL('../../test-artifacts/screens/', import.meta.url));
let stack: Stack;
let browser: Browser;

async function shot(page: Page, name: string) {
  // Toasts float over the content: dismiss them so the page itself shows.
  for (const close of await page.getByRole('button', { name: 'Dismiss notification' }).all()) await close.click().catch(() => {});
  await expect.poll(() => page.locator('.toast').count()).toBe(0);
  // From the top, so the sticky header sits where it belongs in a full-page shot.
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: path.join(shots, `jsapi-${name}.png`), fullPage: true });
}

async function signedIn(email: string): Promise<Page> {
  const page = await (await browser.newContext({ viewport: { width: 1280, height: 860 } })).newPage();
  await page.goto(`${stack.baseUrl}/login`);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(testPassword);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL((u) => !u.pathname.startsWith('/login'));
  return page;
}

const rowNames = (page: Page) => page.getByTestId('jsapi-list').locator('tbody tr .name').allInnerTexts();

beforeAll(async () => {
  mkdirSync(shots, { recursive: true });
  stack = await startStack({ web: true });
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
  await stack?.stop();
});

describe('the JSAPI catalog in the console', () => {
  it('list → search → filter → detail → an Admin edits description and permission level → the history shows who and when', async () => {
    const page = await signedIn(stack.users.admin.email);
    await page.getByRole('link', { name: 'Capabilities' }).click();
    await page.waitForURL(/\/jsapis$/);
    await expect.poll(() => page.getByTestId('jsapi-count').innerText()).toBe(`Showing 50 of ${jsapiCatalog.length} APIs`);
    await expect.poll(() => page.getByRole('navigation', { name: 'Capabilities' }).getByRole('link', { name: 'JSAPIs' }).getAttribute('aria-current')).toBe('page');
    await expect.poll(async () => (await page.getByRole('button', { name: /^Payment \d+$/ }).innerText()).replace(/\s+/g, ' ')).toBe(`Payment ${jsapiCatalog.filter((j) => j.category === 'payment').length}`);
    await shot(page, '01-list');

    // Search: names with the word first.
    await page.getByLabel('Search JSAPIs').fill('location');
    await expect.poll(() => rowNames(page)).toEqual(['my.chooseLocation', 'my.getLocation', 'my.openLocation', 'my.startLocationUpdate', 'my.startLocationUpdateBackground']);
    expect(page.url()).toContain('q=location');
    await shot(page, '02-search');

    // Filter by permission level, then by category chip.
    await page.getByLabel('Permission').selectOption('needs_feature');
    await expect.poll(() => rowNames(page)).toEqual(['my.getLocation']);
    await page.getByLabel('Search JSAPIs').fill('');
    await page.getByRole('button', { name: /^Location \d+$/ }).click();
    const expected = jsapiCatalog.filter((j) => j.category === 'location' && j.permissionLevel === 'needs_feature').map((j) => `my.${j.name}`).sort();
    await expect.poll(() => rowNames(page)).toEqual(expected);
    await expect.poll(() => page.getByRole('button', { name: /^Location \d+$/ }).getAttribute('aria-pressed')).toBe('true');
    await shot(page, '03-filter');

    // Detail: schemas as tables, features granting it, no history yet.
    await page.getByRole('link', { name: 'my.getLocation' }).click();
    await page.waitForURL(/\/jsapis\/getLocation$/);
    await expect.poll(() => page.getByRole('heading', { level: 1 }).innerText()).toBe('my.getLocation');
    const params = page.getByRole('table', { name: 'Parameters' });
    await expect.poll(() => params.locator('tbody tr').count()).toBe(2);
    expect(await params.innerText()).toContain('cacheTimeout');
    const result = page.getByRole('table', { name: 'Result' });
    expect(await result.innerText()).toMatch(/latitude[\s\S]*required/);
    expect(await page.getByTestId('jsapi-history').innerText()).toContain('as shipped');
    await shot(page, '04-detail');

    // An Admin edits inline.
    await page.getByRole('button', { name: 'Edit API' }).click();
    const form = page.getByTestId('jsapi-edit');
    await form.getByLabel('Description').fill('Answers the device\'s current position after the user allows location access; cached fixes up to cacheTimeout seconds old.');
    await form.getByRole('radio', { name: /^Restricted/ }).check();
    await form.getByLabel(/^Why/).fill('Location is personal data: activation review only');
    await shot(page, '05-edit-form');
    await form.getByRole('button', { name: 'Save changes' }).click();
    await expect.poll(() => page.getByTestId('jsapi-edit').count()).toBe(0);
    await expect.poll(() => page.getByTestId('api-level').innerText()).toContain('Restricted');
    expect(await page.getByTestId('api-description').innerText()).toContain('cacheTimeout seconds old');
    const history = page.getByTestId('jsapi-history');
    await expect.poll(() => history.innerText()).toContain('Alice Admin');
    const text = await history.innerText();
    expect(text).toContain('revision 2');
    expect(text).toMatch(/Permission level\s*Needs feature\s*→\s*Restricted/);
    expect(text).toContain('Location is personal data');
    await shot(page, '06-history');

    // Saved for real, with who and when.
    const [edit] = await stack.sequelize.query<{ edited_by: string; changes: Record<string, unknown>; age: number }>(
      `SELECT edited_by, changes, extract(epoch from now() - edited_at) AS age FROM jsapi_edits WHERE workspace_id = :ws AND name = 'getLocation'`, { replacements: { ws: stack.workspaceId }, type: QueryTypes.SELECT },
    );
    expect(edit!.edited_by).toBe(stack.users.admin.id);
    expect(Object.keys(edit!.changes).sort()).toEqual(['description', 'permissionLevel']);
    expect(Number(edit!.age)).toBeLessThan(120);

    // A bad schema is refused in place, saying where.
    await page.getByRole('button', { name: 'Edit API' }).click();
    await form.getByLabel(/^Parameters/).fill('{ "type": "object", "properties": { "type": { "type": "text" } } }');
    await form.getByRole('button', { name: 'Save changes' }).click();
    await expect.poll(() => form.getByRole('alert').first().innerText()).toContain('params.properties.type.type: unknown type "text"');
    await shot(page, '07-schema-error');
    await form.getByRole('button', { name: 'Cancel' }).click();
  }, 180_000);

  it('a Developer reads the same API and its history, without an edit button', async () => {
    const page = await signedIn(stack.users.developer.email);
    await page.goto(`${stack.baseUrl}/w/${stack.workspaceId}/jsapis/getLocation`);
    await expect.poll(() => page.getByTestId('jsapi-history').innerText()).toContain('Alice Admin');
    expect(await page.getByRole('button', { name: 'Edit API' }).count()).toBe(0);
    await shot(page, '08-developer-view');
  });
});
