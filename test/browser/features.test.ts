import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from '../helpers/browser.js';
import { startStack, testPassword, type Stack } from '../helpers/stack.js';

const shots = fileURLToPath(new URL('../../test-artifacts/screens/', import.meta.url));
let stack: Stack;
let browser: Browser;

async function shot(page: Page, name: string) {
  // Toasts float over the content: dismiss them so the page itself shows.
  for (const close of await page.getByRole('button', { name: 'Dismiss notification' }).all()) await close.click().catch(() => {});
  await expect.poll(() => page.locator('.toast').count()).toBe(0);
  // From the top: a full-page shot taken scrolled down paints the sticky header mid-page.
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: path.join(shots, `features-${name}.png`), fullPage: true });
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

beforeAll(async () => {
  mkdirSync(shots, { recursive: true });
  stack = await startStack({ web: true });
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
  await stack?.stop();
});

describe('features in the console', () => {
  it('JSAPI detail → a Developer adds a feature → a Reviewer approves (revision 1) → an edit → approved (revision 2 with its diff) → a mini program applies', async () => {
    const ws = `${stack.baseUrl}/w/${stack.workspaceId}`;
    const dev = await signedIn(stack.users.developer.email);

    // Start from the JSAPI that needs a feature.
    await dev.goto(`${ws}/jsapis/getLocation`);
    await expect.poll(() => dev.getByRole('heading', { name: /getLocation/ }).first().isVisible()).toBe(true);
    await shot(dev, '01-jsapi-detail');
    await dev.getByRole('link', { name: 'Add a feature with getLocation' }).click();
    await dev.waitForURL(/\/features\/new/);

    // The form: getLocation is picked already; add calculateRoute from the catalog.
    await expect.poll(() => dev.getByTestId('picked').textContent()).toContain('getLocation');
    await dev.locator('#f-name').fill('Location services');
    expect(await dev.locator('#f-key').inputValue()).toBe('location-services');
    await dev.locator('#f-desc').fill('Where the user is and how to get to a store.');
    await dev.locator('#f-filter').fill('route');
    await dev.getByRole('checkbox', { name: /calculateRoute/ }).check();
    await dev.locator('#f-filter').fill('');
    await dev.locator('#f-comment').fill('For the store finder in Harbour Mall');
    await shot(dev, '02-add-form');
    await dev.getByTestId('propose-feature').click();
    await dev.waitForURL(/\/features\/feat_[^/]+$/);
    const featureUrl = dev.url();
    await expect.poll(() => dev.getByTestId('pending-change').textContent()).toContain('Addition waiting for review');
    expect(await dev.getByTestId('withdraw-change').isVisible()).toBe(true);
    expect(await dev.getByTestId('approve-change').count()).toBe(0);
    await shot(dev, '03-proposed');

    // The Reviewer sees the proposal with its diff and approves it: revision 1.
    const rev = await signedIn(stack.users.reviewer.email);
    await rev.goto(`${ws}/features`);
    await expect.poll(() => rev.getByTestId('pending-additions').textContent()).toContain('Location services');
    await shot(rev, '04-list-pending');
    await rev.getByRole('link', { name: 'Location services' }).click();
    await expect.poll(() => rev.getByTestId('pending-change').textContent()).toContain('+ calculateRoute');
    await shot(rev, '05-review');
    await rev.getByTestId('approve-change').click();
    await expect.poll(() => rev.getByTestId('revision-1').textContent()).toContain('approved by Rita Reviewer');
    const r1 = (await rev.getByTestId('revision-1').textContent()) ?? '';
    expect(r1).toContain('Proposed by Dan Developer');
    expect(r1).toContain('+ getLocation');
    expect(r1).toContain('+ calculateRoute');
    expect(await rev.getByTestId('pending-change').count()).toBe(0);
    await shot(rev, '06-revision-1');

    // The Developer edits it: a new name, a restricted API (so activation is needed), one API less.
    await dev.goto(`${featureUrl}/edit`);
    await expect.poll(() => dev.locator('#f-name').inputValue()).toBe('Location services');
    await dev.locator('#f-name').fill('Location & tracking');
    await dev.locator('#f-filter').fill('LocationUpdate');
    await dev.getByRole('checkbox', { name: /^startLocationUpdate\b/ }).check();
    await dev.locator('#f-filter').fill('');
    await dev.getByRole('checkbox', { name: /calculateRoute/ }).uncheck();
    await expect.poll(() => dev.getByRole('alert').first().textContent()).toContain('activation-needed');
    await dev.getByLabel(/Activation needed/).check();
    await shot(dev, '07-edit-form');
    await dev.getByTestId('propose-feature').click();
    await dev.waitForURL((u) => !u.pathname.endsWith('/edit'));
    await expect.poll(() => dev.getByTestId('pending-change').textContent()).toContain('Edit waiting for review');
    await shot(dev, '08-edit-pending');

    await rev.goto(featureUrl);
    await expect.poll(() => rev.getByTestId('pending-change').textContent()).toContain('− calculateRoute');
    await rev.getByTestId('approve-change').click();
    await expect.poll(() => rev.getByTestId('revision-2').textContent()).toContain('approved by Rita Reviewer');
    const r2 = (await rev.getByTestId('revision-2').textContent()) ?? '';
    for (const part of ['Edited', '+ startLocationUpdate', '− calculateRoute', 'Location services', 'Location & tracking', 'Activation needed']) expect(r2).toContain(part);
    expect(await rev.getByTestId('revision-1').isVisible()).toBe(true);
    await shot(rev, '09-revision-2');

    // A mini program applies for it (activation needed: waiting), and the Reviewer approves it there.
    const mp = await (await stack.agent('developer')).post(`/api/v1/workspaces/${stack.workspaceId}/mini-programs`, { name: 'Harbour Mall', category: 'shopping' });
    expect(mp.status).toBe(201);
    await dev.goto(`${ws}/mini-programs/${mp.body.id}`);
    const box = dev.getByTestId('mini-program-features');
    await expect.poll(() => box.isVisible()).toBe(true);
    await box.getByLabel('Apply for a feature').selectOption({ label: 'Location & tracking (Activation needed)' });
    await box.getByLabel('Note for the reviewers').fill('Live delivery tracking');
    await box.getByRole('button', { name: 'Apply' }).click();
    await expect.poll(() => box.getByTestId('holding-location-services').textContent()).toContain('Waiting for review');
    await shot(dev, '10-mini-program-applied');

    await rev.goto(`${ws}/mini-programs/${mp.body.id}`);
    const rbox = rev.getByTestId('mini-program-features');
    await expect.poll(() => rbox.getByTestId('holding-location-services').textContent()).toContain('Waiting for review');
    await rbox.getByRole('button', { name: 'Approve' }).click();
    await expect.poll(() => rbox.getByTestId('holding-location-services').textContent()).toContain('Active');
    await shot(rev, '11-mini-program-active');

    await rev.goto(`${ws}/features`);
    await expect.poll(() => rev.getByTestId('feature-list').textContent()).toContain('Location & tracking');
    await shot(rev, '12-list');
  }, 240_000);
});
