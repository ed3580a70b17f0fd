import { mkdirSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyWebhookSignature } from '../../lib/webhook-signature.js';
import { launchChromium } from '../helpers/browser.js';
import { startStack, testPassword, type Stack } from '../helpers/stack.js';

const shots = fileURLToPath(new URL('../../test-artifacts/screens/', import.meta.url));
let stack: Stack;
let browser: Browser;
let receiver: Server;
let receiverUrl: string;
const received: { path: string; headers: IncomingHttpHeaders; body: string }[] = [];

async function shot(page: Page, name: string) {
  // Toasts float over the content: dismiss them so the page itself shows.
  for (const close of await page.getByRole('button', { name: 'Dismiss notification' }).all()) await close.click().catch(() => {});
  await expect.poll(() => page.locator('.toast').count()).toBe(0);
  await page.screenshot({ path: path.join(shots, `webhooks-${name}.png`), fullPage: true });
}

async function newContext(): Promise<BrowserContext> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: stack.baseUrl });
  return context;
}

async function signIn(page: Page, email: string) {
  await page.goto(`${stack.baseUrl}/login`);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(testPassword);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL((u) => !u.pathname.startsWith('/login'));
}

beforeAll(async () => {
  mkdirSync(shots, { recursive: true });
  // The receiving end: /down always answers 503, anything else 200.
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ path: req.url ?? '/', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      if (req.url === '/down') return void res.writeHead(503, { 'content-type': 'text/plain' }).end('Service unavailable: deploy in progress');
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"received":true}');
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', () => r()));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as { port: number }).port}`;
  stack = await startStack({ web: true });
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
  await stack?.stop();
  await new Promise((r) => receiver?.close(r));
});

describe('webhooks in the console', () => {
  it('an admin adds an endpoint, sees its secret once, pings it and reads the delivery log', async () => {
    const page = await (await newContext()).newPage();
    await signIn(page, stack.users.admin.email);
    // Webhooks live under the workspace's settings.
    await page.getByRole('link', { name: 'Settings' }).click();
    await page.getByRole('navigation', { name: 'Workspace settings' }).getByRole('link', { name: 'Webhooks' }).click();
    await page.waitForURL(/\/settings\/webhooks$/);
    await expect.poll(() => page.getByText('No webhooks yet').isVisible()).toBe(true);
    await shot(page, '01-empty');

    // Add an endpoint for two release events.
    await page.getByLabel('Endpoint URL').fill(`${receiverUrl}/hooks/mpdp`);
    await page.getByLabel(/^Description/).fill('Release bot for the #releases channel');
    await page.getByLabel('Only the events I choose').check();
    await page.getByRole('checkbox', { name: /^release\.released/ }).check();
    await page.getByRole('checkbox', { name: /^release\.halted/ }).check();
    await shot(page, '02-add-form');
    await page.getByRole('button', { name: 'Add endpoint' }).click();

    // The secret, once, with a copy button.
    const secretBox = page.getByTestId('webhook-secret');
    await expect.poll(() => secretBox.isVisible()).toBe(true);
    expect(await secretBox.textContent()).toContain('you will not see it again');
    const secret = await page.getByRole('textbox', { name: 'Signing secret' }).inputValue();
    expect(secret).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);
    await page.getByRole('button', { name: 'Copy', exact: true }).click();
    await expect.poll(() => page.getByRole('button', { name: 'Copied' }).isVisible()).toBe(true);
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(secret);
    await shot(page, '03-secret-once');
    await page.getByRole('button', { name: 'I have stored it' }).click();
    await expect.poll(() => secretBox.count()).toBe(0);

    // After a reload the secret is nowhere on the page.
    await page.reload();
    await expect.poll(() => page.getByTestId('webhook-count').textContent()).toBe('1 endpoint');
    expect(await page.content()).not.toContain(secret);
    const endpoints = page.getByTestId('webhook-list');
    expect(await endpoints.getByRole('row', { name: /hooks\/mpdp/ }).textContent()).toContain('2 events');

    // Ping: the receiver gets a signed request; the log shows it with its payload.
    await page.getByRole('button', { name: 'Send test ping' }).click();
    await expect.poll(() => page.getByText('Ping delivered').isVisible()).toBe(true);
    const log = page.getByTestId('delivery-log');
    await expect.poll(() => log.locator('tbody tr').first().textContent()).toMatch(/ping.*Delivered.*200/);
    const req = received.find((r) => r.path === '/hooks/mpdp')!;
    expect(req.headers['x-mpdp-event']).toBe('ping');
    expect(verifyWebhookSignature(secret, req.headers['x-mpdp-signature'] as string, req.body)).toMatchObject({ ok: true });
    const viewer = page.getByTestId('delivery-viewer');
    await expect.poll(() => viewer.isVisible()).toBe(true);
    expect(await viewer.getByLabel('Payload').textContent()).toContain('"message": "mpdp can reach this endpoint."');
    expect(await viewer.textContent()).toContain(req.headers['x-mpdp-delivery'] as string);
    expect(await viewer.textContent()).toContain('{"received":true}');
    expect(await endpoints.getByRole('row', { name: /hooks\/mpdp/ }).textContent()).toContain('Delivered');
    await shot(page, '04-ping-delivered');

    // A second endpoint that is down: the failure, its code and answer are in its log.
    await page.getByRole('button', { name: 'Add endpoint' }).click();
    await page.getByLabel('Endpoint URL').fill(`${receiverUrl}/down`);
    await page.getByRole('button', { name: 'Add endpoint' }).last().click();
    await expect.poll(() => page.getByTestId('webhook-secret').isVisible()).toBe(true);
    await page.getByRole('button', { name: 'I have stored it' }).click();
    await page.getByRole('button', { name: 'Send test ping' }).click();
    await expect.poll(() => page.getByText('Ping failed').isVisible()).toBe(true);
    await expect.poll(() => log.locator('tbody tr').first().textContent()).toMatch(/ping.*Failed.*503/);
    expect(await page.getByTestId('delivery-viewer').textContent()).toContain('Service unavailable: deploy in progress');
    await shot(page, '05-ping-failed');

    // Disable, then delete it (with a confirmation).
    await page.getByRole('button', { name: 'Disable' }).click();
    await expect.poll(() => endpoints.getByRole('row', { name: /\/down/ }).textContent()).toContain('Disabled');
    page.once('dialog', (d) => void d.accept());
    await page.getByRole('button', { name: 'Delete' }).click();
    await expect.poll(() => page.getByTestId('webhook-count').textContent()).toBe('1 endpoint');
    expect(await endpoints.getByRole('row', { name: /\/down/ }).count()).toBe(0);
    await shot(page, '06-after-delete');

    // A developer has no webhooks tab in the settings.
    const devPage = await (await newContext()).newPage();
    await signIn(devPage, stack.users.developer.email);
    await devPage.getByRole('link', { name: 'Settings' }).click();
    await expect.poll(() => devPage.getByRole('navigation', { name: 'Workspace settings' }).getByRole('link', { name: 'Release' }).isVisible()).toBe(true);
    expect(await devPage.getByRole('link', { name: 'Webhooks' }).count()).toBe(0);
  });
});
