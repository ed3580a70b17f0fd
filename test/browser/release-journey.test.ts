import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { realisticPackage } from '../fixtures/packages.js';
import { startStack, testPassword, type Stack } from '../helpers/stack.js';
import { launchChromium } from '../helpers/browser.js';

const shots = fileURLToPath(new URL('../../test-artifacts/screens/', import.meta.url));
let stack: Stack;
let browser: Browser;
let step = 0;

async function shot(page: Page, name: string) {
  await page.screenshot({ path: path.join(shots, `journey-${String(++step).padStart(2, '0')}-${name}.png`), fullPage: true });
}

async function signIn(page: Page, email: string) {
  await page.goto(`${stack.baseUrl}/login`);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(testPassword);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(/\/w\/.+\/mini-programs/);
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

describe('a person releases a mini program in the console', () => {
  it('developer uploads and submits, reviewer approves, developer releases', async () => {
    const zipPath = path.join(mkdtempSync(path.join(os.tmpdir(), 'mpdp-zip-')), 'shop-1.0.0.zip');
    writeFileSync(zipPath, realisticPackage({ version: '1.0.0' }));

    // The developer creates a mini program, uploads the package and submits it.
    const devContext = await browser.newContext({ viewport: { width: 1280, height: 860 } });
    const dev = await devContext.newPage();
    await signIn(dev, stack.users.developer.email);
    await expect.poll(() => dev.getByText('Create your first mini program').isVisible()).toBe(true);
    await shot(dev, 'empty-list');
    await dev.getByRole('link', { name: 'New mini program' }).first().click();
    await dev.getByLabel('Name').fill('Lantern Market');
    await dev.getByLabel('Description').fill('Night market stalls, pre-orders and pickup codes.');
    await dev.getByLabel('Category').selectOption('food');
    await shot(dev, 'create-form');
    await dev.getByRole('button', { name: 'Create mini program' }).click();
    await dev.waitForURL(/\/mini-programs\/mp_/);
    await expect.poll(() => dev.getByRole('heading', { name: 'Lantern Market' }).isVisible()).toBe(true);
    await dev.getByLabel('Package (.zip)').setInputFiles(zipPath);
    await dev.getByLabel('Version').fill('1.0.0');
    await dev.getByLabel('Release notes').fill('First release: catalogue, cart and pickup.');
    await shot(dev, 'upload-form');
    await dev.getByRole('button', { name: 'Upload' }).click();
    await dev.waitForURL(/\/versions\/ver_/);
    const versionUrl = dev.url();
    await expect.poll(() => dev.getByRole('button', { name: 'Submit for review' }).isVisible()).toBe(true);
    await shot(dev, 'uploaded');
    await dev.getByRole('button', { name: 'Submit for review' }).click();
    await expect.poll(() => dev.getByTestId('waiting-for').textContent(), { timeout: 20_000 }).toMatch(/reviewer/i);
    // A developer may not decide: no approve button for them.
    expect(await dev.getByRole('button', { name: 'Approve' }).count()).toBe(0);
    await shot(dev, 'in-review-developer');

    // The reviewer gets the mail and approves in the console.
    await stack.waitForMail({ to: stack.users.reviewer.email, subject: 'Lantern Market' });
    const revContext = await browser.newContext({ viewport: { width: 1280, height: 860 } });
    const rev = await revContext.newPage();
    await signIn(rev, stack.users.reviewer.email);
    await rev.goto(versionUrl);
    await expect.poll(() => rev.getByRole('button', { name: 'Approve' }).isVisible()).toBe(true);
    await shot(rev, 'in-review-reviewer');
    await rev.getByRole('button', { name: 'Approve' }).click();
    await expect.poll(() => rev.getByTestId('waiting-for').textContent()).toMatch(/^Approved by Rita Reviewer; waiting for .* to start the rollout/);
    // A reviewer does not roll out.
    expect(await rev.getByRole('button', { name: /Start rollout/ }).count()).toBe(0);
    await shot(rev, 'approved-reviewer');

    // The developer's page follows live (server-sent events) and offers the rollout; they release to everyone at once.
    await expect.poll(() => dev.getByRole('button', { name: 'Start rollout…' }).isVisible(), { timeout: 20_000 }).toBe(true);
    await dev.getByRole('button', { name: 'Start rollout…' }).click();
    await dev.getByRole('radio', { name: /Release to everyone now/ }).check();
    await shot(dev, 'rollout-plan');
    await dev.getByRole('button', { name: 'Release to everyone' }).click();
    await expect.poll(() => dev.getByTestId('waiting-for').textContent(), { timeout: 20_000 }).toMatch(/live for everyone/i);
    await shot(dev, 'released');
    for (const action of ['Submitted', 'Approved', 'Released']) {
      await expect.poll(() => dev.getByText(action, { exact: false }).first().isVisible()).toBe(true);
    }

    // The list shows it released with its live version.
    await dev.getByRole('link', { name: 'Mini programs' }).first().click();
    await expect.poll(() => dev.getByRole('link', { name: 'Lantern Market' }).isVisible()).toBe(true);
    await expect.poll(async () => (await dev.locator('main').textContent()) ?? '').toMatch(/1\.0\.0/);
    await shot(dev, 'list-released');

    // A wrong password shows the server's message.
    const anon = await (await browser.newContext()).newPage();
    await anon.goto(`${stack.baseUrl}/login`);
    await anon.getByLabel('Email').fill(stack.users.developer.email);
    await anon.getByLabel('Password').fill('wrong password');
    await anon.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => anon.getByRole('alert').textContent()).toMatch(/Wrong email or password/);
    await shot(anon, 'login-error');
  });
});
