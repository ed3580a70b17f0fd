import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inflateSync } from 'node:zlib';
import { strToU8, unzipSync, zipSync } from 'fflate';
import { describe, expect, it } from 'vitest';
import { checkPackage, defaultPackageLimits, PackageError, type PackageErrorCode } from './package-check.js';
import {
  buildPackage,
  liarZipBomb,
  minimalPackageFiles,
  missingPagePackage,
  noManifestPackage,
  notAZip,
  pathEscapePackage,
  realisticMainPages,
  realisticPackage,
  realisticPackageFiles,
  realisticSubPackages,
  solidPng,
  tooManyEntriesPackage,
  totalTooLargePackage,
  versionMismatchPackage,
  writeSamplePackage,
  zipBombPackage,
} from '../test/fixtures/packages.js';

/** Run checkPackage expecting a rejection; returns the PackageError for further checks. */
async function rejection(p: Promise<unknown>, code: PackageErrorCode): Promise<PackageError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `expected ${code}`).toBeInstanceOf(PackageError);
  const pe = err as PackageError;
  expect(pe.code, pe.message).toBe(code);
  return pe;
}

describe('checkPackage — happy path', () => {
  it.each(['alipay', 'wechat'] as const)('accepts a realistic %s package', async (style) => {
    const zip = realisticPackage({ version: '2.3.1', style });
    const s = await checkPackage(zip, { version: '2.3.1' });

    expect(s.pages).toEqual(realisticMainPages);
    expect(s.pages).toHaveLength(30);
    expect(s.subPackages).toEqual(realisticSubPackages);
    expect(s.subPackages.map((sp) => sp.root)).toEqual(['packageOrder', 'packageUser', 'packageMember']);
    const total = s.pages.length + s.subPackages.reduce((n, sp) => n + sp.pages.length, 0);
    expect(total).toBeGreaterThanOrEqual(40);

    expect(s.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(s.sha256).toBe(createHash('sha256').update(zip).digest('hex'));
    expect(s.size).toBe(zip.length);
    expect(s.manifestVersion).toBe('2.3.1');
    expect(s.appName).toBe('mall-mini-program');
    expect(s.entryCount).toBe(Object.keys(unzipSync(zip)).length);
    expect(s.uncompressedBytes).toBe(Object.values(unzipSync(zip)).reduce((n, f) => n + f.length, 0));
  });

  it('uses the right template flavour per style', () => {
    const alipay = Object.keys(realisticPackageFiles({ style: 'alipay' }));
    const wechat = Object.keys(realisticPackageFiles({ style: 'wechat' }));
    expect(alipay).toContain('pages/index/index.axml');
    expect(alipay).toContain('app.acss');
    expect(alipay.some((f) => f.endsWith('.wxml'))).toBe(false);
    expect(wechat).toContain('packageOrder/pages/refund/refund.wxml');
    expect(wechat).toContain('app.wxss');
    expect(wechat.some((f) => f.endsWith('.axml'))).toBe(false);
  });

  it('ships valid PNG images', () => {
    const files = unzipSync(realisticPackage());
    const pngs = Object.keys(files).filter((f) => f.endsWith('.png'));
    expect(pngs.length).toBeGreaterThanOrEqual(5);
    for (const name of pngs) {
      const png = Buffer.from(files[name]);
      expect(png.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
      // IHDR: 16x16, 8-bit truecolour; IDAT inflates to 16 rows of (1 filter byte + 48 bytes)
      expect(png.readUInt32BE(16)).toBe(16);
      expect(png.readUInt32BE(20)).toBe(16);
      const idatLen = png.readUInt32BE(33);
      expect(png.subarray(37, 41).toString('latin1')).toBe('IDAT');
      expect(inflateSync(png.subarray(41, 41 + idatLen))).toHaveLength(16 * 49);
    }
    expect(solidPng(1, 1, [0, 0, 0]).subarray(-12).toString('hex')).toBe('0000000049454e44ae426082'); // canonical IEND
  });

  it('accepts a package that declares no version', async () => {
    const s = await checkPackage(buildPackage(minimalPackageFiles()), { version: '0.0.1' });
    expect(s.manifestVersion).toBeNull();
    expect(s.appName).toBeNull();
    expect(s.subPackages).toEqual([]);
  });

  it('accepts directory entries, ./ prefixes and the wechat template', async () => {
    const { 'pages/index/index.wxml': tpl, ...rest } = minimalPackageFiles({ style: 'wechat', version: '1.0.0-beta.2' });
    const files = { 'pages/': '', 'pages/index/': '', ...rest, './pages/index/index.wxml': tpl };
    const s = await checkPackage(buildPackage(files), { version: '1.0.0-beta.2' });
    expect(s.entryCount).toBe(6);
    expect(s.manifestVersion).toBe('1.0.0-beta.2');
  });

  it('honours custom limits', async () => {
    const zip = realisticPackage();
    await rejection(checkPackage(zip, { version: '1.0.0', limits: { ...defaultPackageLimits, maxEntries: 10 } }), 'package_too_many_entries');
    await rejection(checkPackage(zip, { version: '1.0.0', limits: { ...defaultPackageLimits, maxEntryBytes: 256 } }), 'package_entry_too_large');
    await rejection(checkPackage(zip, { version: '1.0.0', limits: { ...defaultPackageLimits, maxTotalBytes: 4096 } }), 'package_too_large_uncompressed');
  });

  it('writeSamplePackage writes a valid 1.0.0 package', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mpdp-pkg-'));
    try {
      const path = join(dir, 'nested', 'sample.zip');
      const written = writeSamplePackage(path);
      const onDisk = readFileSync(path);
      expect(onDisk.equals(written)).toBe(true);
      const s = await checkPackage(onDisk, { version: '1.0.0' });
      expect(s.manifestVersion).toBe('1.0.0');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('checkPackage — rejections', () => {
  it('package_version_invalid', async () => {
    const zip = realisticPackage();
    for (const version of ['', '1.0', 'v1.0.0', '01.0.0', '1.0.0.0', 'latest']) {
      const err = await rejection(checkPackage(zip, { version }), 'package_version_invalid');
      expect(err.details).toEqual({ given: version });
    }
  });

  it('package_not_zip', async () => {
    await rejection(checkPackage(notAZip(), { version: '1.0.0' }), 'package_not_zip');
    await rejection(checkPackage(Buffer.alloc(0), { version: '1.0.0' }), 'package_not_zip');
    // truncated archive
    const zip = realisticPackage();
    await rejection(checkPackage(zip.subarray(0, zip.length - 200), { version: '1.0.0' }), 'package_not_zip');
  });

  it('package_not_zip for corrupted entry data (CRC mismatch)', async () => {
    const files = { ...minimalPackageFiles(), 'data.txt': 'x'.repeat(100) };
    const zip = buildPackage(files, 0); // stored: corruption is not caught by inflate
    const at = zip.indexOf('xxxxxxxx');
    zip[at + 10] = 'y'.charCodeAt(0);
    const err = await rejection(checkPackage(zip, { version: '1.0.0' }), 'package_not_zip');
    expect(err.details).toEqual({ entry: 'data.txt' });
  });

  it.each([
    ['../evil.js', 'parent directory segment'],
    ['pages/../../evil.js', 'parent directory segment'],
    ['/etc/passwd', 'absolute path'],
    ['C:/Windows/evil.js', 'drive letter'],
    ['pages\\evil.js', 'backslash in name'],
    ['..\\evil.js', 'backslash in name'],
  ])('package_path_escape for %s', async (name, reason) => {
    const err = await rejection(checkPackage(pathEscapePackage(name), { version: '1.0.0' }), 'package_path_escape');
    expect(err.details).toEqual({ entry: name, reason });
  });

  it('package_path_escape when an Info-ZIP Unicode Path alias escapes', async () => {
    const alias = Buffer.concat([Buffer.from([1, 0, 0, 0, 0]), Buffer.from('../evil.js')]);
    const base = Object.fromEntries(Object.entries(minimalPackageFiles()).map(([k, v]) => [k, strToU8(v as string)]));
    const zip = Buffer.from(zipSync({ ...base, 'harmless.js': [strToU8('x'), { extra: { 0x7075: alias } }] }));
    const err = await rejection(checkPackage(zip, { version: '1.0.0' }), 'package_path_escape');
    expect(err.details).toEqual({ entry: '../evil.js', reason: 'parent directory segment' });
  });

  it('pathEscapePackage really contains a raw ../ entry name', () => {
    expect(pathEscapePackage().includes(Buffer.from('../evil.js'))).toBe(true);
  });

  it('package_too_many_entries', async () => {
    const err = await rejection(checkPackage(tooManyEntriesPackage(), { version: '1.0.0' }), 'package_too_many_entries');
    expect(err.details).toMatchObject({ limit: 2000 });
  });

  it('package_entry_too_large for an honest 64 MiB zip bomb', async () => {
    const zip = zipBombPackage();
    expect(zip.length).toBeLessThan(200 * 1024);
    const err = await rejection(checkPackage(zip, { version: '1.0.0' }), 'package_entry_too_large');
    expect(err.details).toMatchObject({ entry: 'assets/bomb.bin', limit: defaultPackageLimits.maxEntryBytes });
  });

  it('package_entry_too_large for a zip bomb whose headers claim 1 KiB', async () => {
    const zip = liarZipBomb();
    const started = Date.now();
    const err = await rejection(checkPackage(zip, { version: '1.0.0' }), 'package_entry_too_large');
    expect(err.details).toMatchObject({ entry: 'assets/bomb.bin', reason: 'inflated_past_declared_size' });
    expect(Date.now() - started).toBeLessThan(2000); // aborted early, did not inflate 64 MiB
  });

  it('package_too_large_uncompressed when entries are each fine but too big together', async () => {
    const err = await rejection(checkPackage(totalTooLargePackage(), { version: '1.0.0' }), 'package_too_large_uncompressed');
    expect(err.details).toMatchObject({ limit: defaultPackageLimits.maxTotalBytes });
  });

  it('package_manifest_missing (also when wrapped in a top-level folder)', async () => {
    await rejection(checkPackage(noManifestPackage(), { version: '1.0.0' }), 'package_manifest_missing');
    const wrapped = Object.fromEntries(Object.entries(minimalPackageFiles()).map(([k, v]) => [`mall/${k}`, v]));
    await rejection(checkPackage(buildPackage(wrapped), { version: '1.0.0' }), 'package_manifest_missing');
  });

  it.each([
    ['not JSON', '{ pages: [oops'],
    ['a JSON array', '["pages/index/index"]'],
    ['no pages', '{"window":{}}'],
    ['empty pages', '{"pages":[]}'],
    ['non-string page', '{"pages":["pages/index/index", 42]}'],
    ['escaping page path', '{"pages":["../index/index"]}'],
  ])('package_manifest_invalid: %s', async (_label, appJson) => {
    const files = { ...minimalPackageFiles(), 'app.json': appJson };
    await rejection(checkPackage(buildPackage(files), { version: '1.0.0' }), 'package_manifest_invalid');
  });

  it('package_page_missing lists every page missing a .js or template', async () => {
    const err = await rejection(checkPackage(missingPagePackage(), { version: '1.0.0' }), 'package_page_missing');
    expect(err.details).toEqual({ pages: ['pages/help/faq', 'pages/ghost/ghost'] });
  });

  it('package_page_missing for a sub package page (paths relative to root)', async () => {
    const files = realisticPackageFiles();
    delete files['packageUser/pages/coupon/coupon.js'];
    const err = await rejection(checkPackage(buildPackage(files), { version: '1.0.0' }), 'package_page_missing');
    expect(err.details).toEqual({ pages: ['packageUser/pages/coupon/coupon'] });
  });

  it('package_version_mismatch (package.json)', async () => {
    const err = await rejection(checkPackage(versionMismatchPackage('1.2.0'), { version: '1.2.0' }), 'package_version_mismatch');
    expect(err.details).toEqual({ declared: '9.9.9', given: '1.2.0', source: 'package.json' });
  });

  it.each(['app.json', 'project.config.json', 'mini.project.json'])('package_version_mismatch (%s)', async (source) => {
    const files = minimalPackageFiles();
    if (source === 'app.json') files['app.json'] = JSON.stringify({ pages: ['pages/index/index'], version: '3.0.0' });
    else files[source] = JSON.stringify({ version: '3.0.0' });
    const err = await rejection(checkPackage(buildPackage(files), { version: '3.0.1' }), 'package_version_mismatch');
    expect(err.details).toEqual({ declared: '3.0.0', given: '3.0.1', source });
  });

  it.each([
    ['not an array', { root: 'a', pages: [] }],
    ['entry without root', [{ pages: ['pages/a/a'] }]],
    ['entry without pages', [{ root: 'packageA' }]],
    ['pages not strings', [{ root: 'packageA', pages: [1] }]],
    ['root escaping', [{ root: '../outside', pages: ['pages/a/a'] }]],
    ['entry not an object', ['packageA']],
  ])('package_subpackage_invalid: %s', async (_label, subPackages) => {
    const files = { ...minimalPackageFiles(), 'app.json': JSON.stringify({ pages: ['pages/index/index'], subPackages }) };
    await rejection(checkPackage(buildPackage(files), { version: '1.0.0' }), 'package_subpackage_invalid');
  });

  it('normalises sub package roots with a trailing slash', async () => {
    const files = {
      ...minimalPackageFiles(),
      'app.json': JSON.stringify({ pages: ['pages/index/index'], subpackages: [{ root: 'packageA/', pages: ['pages/a/a'] }] }),
      'packageA/pages/a/a.js': 'Page({});',
      'packageA/pages/a/a.axml': '<view/>',
    };
    const s = await checkPackage(buildPackage(files), { version: '1.0.0' });
    expect(s.subPackages).toEqual([{ root: 'packageA', pages: ['pages/a/a'] }]);
  });
});
