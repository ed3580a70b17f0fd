import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { solidPng } from '../fixtures/packages.js';
import { launchChromium } from '../helpers/browser.js';
import { startStack, testPassword, type Stack } from '../helpers/stack.js';

const shots = fileURLToPath(new URL('../../test-artifacts/screens/', import.meta.url));
let stack: Stack;
let browser: Browser;

/** A brand logo as an SVG (a rounded badge and a word), as a designer would hand it over. */
const logoSvg = `<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="168" height="40" viewBox="0 0 168 40">
  <defs><linearGradient id="g" x1="0" y1="0" x2="1" y2="1"><stop offset="0" stop-color="#f97316"/><stop offset="1" stop-color="#db2777"/></linearGradient></defs>
  <rect x="0" y="2" width="36" height="36" rx="9" fill="url(#g)"/>
  <path d="M10 28 L18 10 L26 28 Z" fill="#fff"/>
  <text x="46" y="28" font-family="Helvetica, Arial, sans-serif" font-size="22" font-weight="700" fill="#1f2937">Sunmart</text>
</svg>`;
const scriptSvg = '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><script>alert(document.cookie)</script></svg>';

async function shot(page: Page, name: string) {
  for (const close of await page.getByRole('button', { name: 'Dismiss notification' }).all()) await close.click().catch(() => {});
  await expect.poll(() => page.locator('.toast').count()).toBe(0);
  await page.screenshot({ path: path.join(shots, `branding-${name}.png`), fullPage: true });
}

async function signIn(page: Page, email: string) {
  await page.goto(`${stack.baseUrl}/login`);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(testPassword);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL((u) => !u.pathname.startsWith('/login'));
}

const headerLogo = (page: Page) => page.locator('header.topnav img[data-testid="brand-logo"]');
const brandIcon = (page: Page) => page.locator('head link[rel="icon"][data-brand]');

beforeAll(async () => {
  mkdirSync(shots, { recursive: true });
  stack = await startStack({ web: true });
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
  await stack?.stop();
});

describe('branding in the console', () => {
  it('an Admin uploads a logo and a favicon and sets About Us: the header, the tab and the footer show them', async () => {
    const page = await (await browser.newContext({ viewport: { width: 1280, height: 860 } })).newPage();
    await signIn(page, stack.users.admin.email);
    expect(await headerLogo(page).count()).toBe(0);
    await page.getByRole('link', { name: 'Settings' }).click();
    await page.getByRole('navigation', { name: 'Workspace settings' }).getByRole('link', { name: 'Logo & About' }).click();
    await page.waitForURL(/\/settings\/branding$/);
    await expect.poll(() => page.getByText('Default: mpdp’s mark').isVisible()).toBe(true);
    await shot(page, '01-default');

    // An SVG with a script is refused, with the server's reason next to the file.
    await page.getByTestId('logo-file').setInputFiles({ name: 'logo.svg', mimeType: 'image/svg+xml', buffer: Buffer.from(scriptSvg) });
    await page.locator('[data-slot="logo"]').getByRole('button', { name: 'Upload' }).click();
    await expect.poll(() => page.getByTestId('logo-error').textContent()).toMatch(/script/i);
    expect(await headerLogo(page).count()).toBe(0);
    await shot(page, '02-svg-script-refused');

    // A clean SVG logo: the header shows it at once and it loads.
    await page.getByTestId('logo-file').setInputFiles({ name: 'sunmart.svg', mimeType: 'image/svg+xml', buffer: Buffer.from(logoSvg) });
    await page.locator('[data-slot="logo"]').getByRole('button', { name: 'Upload' }).click();
    await expect.poll(() => headerLogo(page).count()).toBe(1);
    const logoSrc = await headerLogo(page).getAttribute('src');
    expect(logoSrc).toMatch(new RegExp(`^/api/v1/workspaces/${stack.workspaceId}/branding/logo/[0-9a-f]{64}$`));
    await expect.poll(() => headerLogo(page).evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth)).toBeGreaterThan(0);
    expect(await page.getByTestId('logo-error').count()).toBe(0);

    // A PNG favicon: the tab's icon link points at it.
    await page.getByTestId('favicon-file').setInputFiles({ name: 'favicon.png', mimeType: 'image/png', buffer: solidPng(32, 32, [0xdb, 0x27, 0x77]) });
    await page.locator('[data-slot="favicon"]').getByRole('button', { name: 'Upload' }).click();
    await expect.poll(() => brandIcon(page).count()).toBe(1);
    const iconHref = await brandIcon(page).getAttribute('href');
    expect(iconHref).toMatch(/\/branding\/favicon\/[0-9a-f]{64}$/);
    // The workspace's icon is the last one declared, the one the browser uses.
    expect(await page.locator('head link[rel="icon"]').last().getAttribute('href')).toBe(iconHref);
    const icon = await page.request.get(stack.baseUrl + iconHref!);
    expect([icon.status(), icon.headers()['content-type']]).toEqual([200, 'image/png']);

    // About Us: a bad address is refused in place; a good one appears in the footer.
    await page.getByLabel('About Us URL').fill('javascript:alert(1)');
    await page.getByRole('button', { name: 'Save' }).click();
    await expect.poll(() => page.getByRole('alert').filter({ hasText: 'About Us URL' }).isVisible()).toBe(true);
    expect(await page.getByTestId('about-us').count()).toBe(0);
    await page.getByLabel('About Us URL').fill('https://www.sunmart.example.com/about');
    await page.getByRole('button', { name: 'Save' }).click();
    await expect.poll(() => page.getByTestId('about-us').getAttribute('href')).toBe('https://www.sunmart.example.com/about');
    expect(await page.getByTestId('about-us').textContent()).toBe('About Us');
    await shot(page, '03-logo-favicon-about');

    // After a reload (and on another page) the console still carries the brand.
    await page.goto(`${stack.baseUrl}/w/${stack.workspaceId}/mini-programs`);
    await expect.poll(() => headerLogo(page).getAttribute('src')).toBe(logoSrc);
    await expect.poll(() => headerLogo(page).evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth)).toBeGreaterThan(0);
    await expect.poll(() => brandIcon(page).getAttribute('href')).toBe(iconHref);
    await expect.poll(() => page.getByTestId('about-us').isVisible()).toBe(true);
    await shot(page, '04-header-with-logo');

    // A developer sees the brand too, and the settings read-only.
    const devPage = await (await browser.newContext({ viewport: { width: 1280, height: 860 } })).newPage();
    await signIn(devPage, stack.users.developer.email);
    await expect.poll(() => headerLogo(devPage).getAttribute('src')).toBe(logoSrc);
    await devPage.goto(`${stack.baseUrl}/w/${stack.workspaceId}/settings/branding`);
    await expect.poll(() => devPage.getByText('Only Admins change the branding.').isVisible()).toBe(true);
    expect(await devPage.getByTestId('logo-file').count()).toBe(0);

    // Removing the logo brings mpdp's mark back.
    await page.goto(`${stack.baseUrl}/w/${stack.workspaceId}/settings/branding`);
    await page.locator('[data-slot="logo"]').getByRole('button', { name: 'Remove' }).click();
    await expect.poll(() => headerLogo(page).count()).toBe(0);
    await expect.poll(() => page.getByText('Default: mpdp’s mark').isVisible()).toBe(true);
    // Put it back for the screenshots of the domains page.
    await page.getByTestId('logo-file').setInputFiles({ name: 'sunmart.svg', mimeType: 'image/svg+xml', buffer: Buffer.from(logoSvg) });
    await page.locator('[data-slot="logo"]').getByRole('button', { name: 'Upload' }).click();
    await expect.poll(() => headerLogo(page).count()).toBe(1);
    await page.context().close();
    await devPage.context().close();
  });

  it('an Admin adds and removes domains; a bad one is named with its reason', async () => {
    const page = await (await browser.newContext({ viewport: { width: 1280, height: 860 } })).newPage();
    await signIn(page, stack.users.admin.email);
    await page.getByRole('link', { name: 'Settings' }).click();
    await page.getByRole('navigation', { name: 'Workspace settings' }).getByRole('link', { name: 'Domains' }).click();
    await page.waitForURL(/\/settings\/domains$/);
    await expect.poll(() => page.getByText('No server domains yet').isVisible()).toBe(true);
    await shot(page, '05-domains-empty');

    const server = page.locator('[data-list="server"]');
    const webview = page.locator('[data-list="webview"]');
    await page.getByTestId('server-input').fill('https://API.Sunmart.example.com/, wss://push.sunmart.example.com https://*.cdn.sunmart.example.com');
    await server.getByRole('button', { name: 'Add' }).click();
    await expect.poll(() => page.getByTestId('server-count').textContent()).toBe('3 / 50');
    expect(await server.locator('li[data-domain]').evaluateAll((els) => els.map((e) => e.getAttribute('data-domain')))).toEqual([
      'https://api.sunmart.example.com', 'wss://push.sunmart.example.com', 'https://*.cdn.sunmart.example.com',
    ]);
    await page.getByTestId('webview-input').fill('https://m.sunmart.example.com');
    await webview.getByRole('button', { name: 'Add' }).click();
    await expect.poll(() => page.getByTestId('webview-count').textContent()).toBe('1 / 50');

    // Bad entries: each named with its reason, nothing added.
    await page.getByTestId('server-input').fill('http://10.0.0.1/api https://localhost');
    await server.getByRole('button', { name: 'Add' }).click();
    const err = page.getByTestId('server-error');
    await expect.poll(() => err.isVisible()).toBe(true);
    expect(await err.textContent()).toContain('http://10.0.0.1/api');
    expect(await err.textContent()).toContain('https://localhost');
    expect(await err.textContent()).toMatch(/localhost is not a public domain/);
    expect(await page.getByTestId('server-count').textContent()).toBe('3 / 50');
    await page.getByTestId('webview-input').fill('wss://m.sunmart.example.com');
    await webview.getByRole('button', { name: 'Add' }).click();
    await expect.poll(() => page.getByTestId('webview-error').textContent()).toMatch(/wss:\/\/ is not allowed here/);
    await shot(page, '06-domains-invalid');

    // Remove one.
    await server.getByRole('button', { name: 'Remove wss://push.sunmart.example.com' }).click();
    await expect.poll(() => page.getByTestId('server-count').textContent()).toBe('2 / 50');
    expect(await server.locator('li[data-domain="wss://push.sunmart.example.com"]').count()).toBe(0);
    await page.reload();
    await expect.poll(() => page.getByTestId('server-count').textContent()).toBe('2 / 50');
    await shot(page, '07-domains-saved');
    await page.context().close();
  });
});
