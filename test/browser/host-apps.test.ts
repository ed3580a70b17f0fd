import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { deflateSync, crc32 } from 'node:zlib';
import { type Browser, type Page } from 'playwright-core';
import { QueryTypes } from 'sequelize';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalString, fingerprintOf, signCanonical } from '../../lib/host-app-keys.js';
import { launchChromium } from '../helpers/browser.js';
import { startStack, testPassword, type Stack } from '../helpers/stack.js';

const shots = fileURLToPath(new URL('../../test-artifacts/screens/', import.meta.url));
let stack: Stack;
let browser: Browser;

async function shot(page: Page, name: string) {
  for (const close of await page.getByRole('button', { name: 'Dismiss notification' }).all()) await close.click().catch(() => {});
  await expect.poll(() => page.locator('.toast').count()).toBe(0);
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: path.join(shots, `hostapps-${name}.png`), fullPage: true });
}

/** A 96×96 PNG: an indigo tile with a lighter square, made here so the icon is a real image. */
function iconPng(): Buffer {
  const w = 96;
  const chunk = (type: string, data: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(td));
    return Buffer.concat([len, td, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(w, 4);
  ihdr[8] = 8;
  ihdr[9] = 2;
  const rows: number[] = [];
  for (let y = 0; y < w; y++) {
    rows.push(0);
    for (let x = 0; x < w; x++) {
      const inner = x > 28 && x < 68 && y > 28 && y < 68;
      rows.push(inner ? 0xe0 : 0x4f, inner ? 0xe7 : 0x46, inner ? 0xff : 0xe5);
    }
  }
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(Buffer.from(rows))), chunk('IEND', Buffer.alloc(0))]);
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

describe('host apps in the console', () => {
  it('an admin adds an app, uploads its public key, sees the fingerprint, rotates to an issued pair and a platform key', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: stack.baseUrl });
    const page = await context.newPage();
    await page.goto(`${stack.baseUrl}/login`);
    await page.getByLabel('Email').fill(stack.users.admin.email);
    await page.getByLabel('Password').fill(testPassword);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL((u) => !u.pathname.startsWith('/login'));

    // App list (empty) → add app.
    await page.getByRole('link', { name: 'Host apps' }).first().click();
    await page.waitForURL(/\/apps$/);
    await expect.poll(() => page.getByText('No host apps yet').isVisible()).toBe(true);
    await shot(page, '01-empty-list');
    await page.getByRole('link', { name: 'Add host app' }).first().click();
    await page.waitForURL(/\/apps\/new$/);
    await page.getByLabel('Name').fill('ShopNow Super App');
    await page.getByText('iOS', { exact: true }).click();
    await page.getByLabel('Bundle id').fill('com.shopnow.superapp');
    await page.getByLabel(/^Description/).fill('The flagship shopping app that hosts our partners\' mini programs.');
    await page.getByLabel(/^Icon/).setInputFiles({ name: 'icon.png', mimeType: 'image/png', buffer: iconPng() });
    await expect.poll(() => page.getByAltText('Icon preview').isVisible()).toBe(true);
    await shot(page, '02-add-form');
    await page.getByRole('button', { name: 'Add host app' }).click();

    // Detail: no key yet.
    await page.waitForURL(/\/apps\/ha_[^/]+$/);
    const appId = page.url().split('/').pop()!;
    await expect.poll(() => page.getByRole('heading', { name: 'ShopNow Super App' }).isVisible()).toBe(true);
    await expect.poll(() => page.getByText('No active app key').isVisible()).toBe(true);
    expect(await page.locator('img.icon').first().evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth)).toBe(96);
    await shot(page, '03-detail-no-key');

    // Upload a public key generated here.
    const pair = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const fingerprint = fingerprintOf(pair.publicKey);
    await page.getByRole('button', { name: 'Upload public key' }).click();
    await page.getByLabel('Public key (PEM)').fill(pair.publicKey.export({ type: 'spki', format: 'pem' }).toString());
    await shot(page, '04-upload-form');
    await page.getByRole('button', { name: 'Upload key' }).click();
    await expect.poll(() => page.getByTestId('key-app').getByTestId('fingerprint').textContent()).toBe(fingerprint);
    await shot(page, '05-fingerprint');

    // A private key pasted by mistake is refused in place.
    await page.getByTestId('key-app').getByRole('button', { name: 'Rotate' }).click();
    await page.getByLabel('Public key (PEM)').fill(pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
    await page.getByRole('button', { name: 'Rotate', exact: true }).last().click();
    await expect.poll(() => page.getByRole('alert').filter({ hasText: 'This is a private key' }).isVisible()).toBe(true);
    await shot(page, '06-private-key-refused');

    // Rotate to a pair the platform issues: the private part is shown once, with a copy button and a warning.
    await page.getByText('Issue a key pair', { exact: false }).first().click();
    await page.getByLabel('The old key keeps verifying for').selectOption({ label: '1 hour' });
    await page.getByRole('button', { name: 'Rotate', exact: true }).last().click();
    const secret = page.getByTestId('private-key');
    await expect.poll(() => secret.isVisible()).toBe(true);
    await expect.poll(() => secret.getByText('Store it now: this private key is shown only this once.').isVisible()).toBe(true);
    const privatePem = await page.getByRole('textbox', { name: 'Private key' }).inputValue();
    expect(privatePem).toContain('-----BEGIN PRIVATE KEY-----');
    await secret.getByRole('button', { name: 'Copy private key' }).click();
    await expect.poll(() => secret.getByRole('button', { name: 'Copied' }).isVisible()).toBe(true);
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(privatePem);
    await shot(page, '07-private-once');

    // The shown private key signs requests that verify; the uploaded key still verifies during the overlap.
    const check = async (pem: string) => {
      const p = `/api/v1/host-apps/${appId}/signature-check`;
      const ts = String(Date.now());
      const res = await fetch(stack.baseUrl + p, {
        method: 'POST', body: '{}', headers: { 'content-type': 'application/json', 'x-mpdp-timestamp': ts, 'x-mpdp-signature': signCanonical(pem, canonicalString('POST', p, ts, '{}')) },
      });
      return (await res.json()) as { keyStatus?: string };
    };
    expect((await check(privatePem)).keyStatus).toBe('active');
    expect((await check(pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString())).keyStatus).toBe('rotated');

    await secret.getByRole('button', { name: 'I have stored it' }).click();
    await expect.poll(() => secret.count()).toBe(0);
    // After a reload it is gone for good: the page and the API never show it again.
    await page.reload();
    await expect.poll(() => page.getByRole('heading', { name: 'All keys' }).isVisible()).toBe(true);
    expect(await page.content()).not.toContain('PRIVATE KEY-----');
    const [row] = await stack.sequelize.query<{ n: number }>(`SELECT count(*)::int AS n FROM host_app_keys WHERE host_app_id = :appId AND private_sealed IS NOT NULL`, { replacements: { appId }, type: QueryTypes.SELECT });
    expect(row!.n).toBe(0);

    // A platform key: kept sealed by mpdp, never shown; the public part is offered.
    await page.getByRole('button', { name: 'Issue platform key' }).click();
    await page.getByRole('button', { name: 'Issue key pair' }).click();
    await expect.poll(() => page.getByTestId('key-platform').getByTestId('fingerprint').isVisible()).toBe(true);
    expect(await page.getByTestId('private-key').count()).toBe(0);
    await page.getByTestId('key-platform').getByText('Public key (PEM)').click();
    await shot(page, '08-keys');

    // Back in the list: the app, its platform and its key's fingerprint.
    await page.getByRole('navigation', { name: 'Breadcrumb' }).getByRole('link', { name: 'Host apps' }).click();
    await page.waitForURL(/\/apps$/);
    await expect.poll(() => page.getByText('com.shopnow.superapp').isVisible()).toBe(true);
    await shot(page, '09-list');

    // A developer reads but does not manage.
    const dev = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
    await dev.goto(`${stack.baseUrl}/login`);
    await dev.getByLabel('Email').fill(stack.users.developer.email);
    await dev.getByLabel('Password').fill(testPassword);
    await dev.getByRole('button', { name: 'Sign in' }).click();
    await dev.waitForURL((u) => !u.pathname.startsWith('/login'));
    await dev.goto(`${stack.baseUrl}/w/${stack.workspaceId}/apps/${appId}`);
    await expect.poll(() => dev.getByRole('heading', { name: 'ShopNow Super App' }).isVisible()).toBe(true);
    expect(await dev.getByRole('button', { name: 'Rotate' }).count()).toBe(0);
    expect(await dev.getByRole('link', { name: 'Edit info' }).count()).toBe(0);
    await context.close();
  }, 240_000);
});
