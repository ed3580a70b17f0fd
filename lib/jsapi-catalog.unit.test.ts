import { describe, expect, it } from 'vitest';
import { checkJsonSchema, hostVersionPattern, jsapiCatalog, jsapiCategories, jsapiNamePattern, jsapiStatuses, permissionLevels, type JsonSchema } from './jsapi-catalog.js';

describe('the built-in JSAPI catalog', () => {
  it('has at least 60 APIs with unique, callable names', () => {
    expect(jsapiCatalog.length).toBeGreaterThanOrEqual(60);
    const names = jsapiCatalog.map((j) => j.name);
    expect(new Set(names).size).toBe(names.length);
    for (const n of names) expect(n, n).toMatch(jsapiNamePattern);
    // The ones the design names (and that scans of real packages find) are there.
    for (const n of ['request', 'uploadFile', 'downloadFile', 'connectSocket', 'setStorage', 'getStorage', 'removeStorage', 'clearStorage', 'chooseImage', 'previewImage',
      'saveImageToPhotosAlbum', 'getLocation', 'openLocation', 'chooseLocation', 'getSystemInfo', 'scanCode', 'vibrateShort', 'makePhoneCall', 'setClipboardData', 'showToast',
      'showModal', 'showLoading', 'navigateTo', 'redirectTo', 'navigateBack', 'switchTab', 'reLaunch', 'tradePay', 'requestPayment', 'getAuthCode', 'getOpenUserInfo', 'getPhoneNumber']) {
      expect(names, n).toContain(n);
    }
  });

  it('covers every category, with several APIs each, and each permission level and status', () => {
    for (const c of jsapiCategories) expect(jsapiCatalog.filter((j) => j.category === c).length, c).toBeGreaterThanOrEqual(5);
    for (const l of permissionLevels) expect(jsapiCatalog.some((j) => j.permissionLevel === l), l).toBe(true);
    for (const s of jsapiStatuses) expect(jsapiCatalog.some((j) => j.status === s), s).toBe(true);
    // Money and identity are never open.
    for (const j of jsapiCatalog.filter((x) => x.category === 'payment')) expect(j.permissionLevel, j.name).toBe('restricted');
    expect(jsapiCatalog.find((j) => j.name === 'getPhoneNumber')?.permissionLevel).toBe('restricted');
  });

  it('gives every API a description, a host version and params / result as valid object schemas', () => {
    for (const j of jsapiCatalog) {
      expect(j.description.length, j.name).toBeGreaterThan(10);
      expect(j.description.length, j.name).toBeLessThanOrEqual(2000);
      expect(j.minHostVersion, j.name).toMatch(hostVersionPattern);
      expect(checkJsonSchema(j.params), `${j.name} params`).toBeNull();
      expect(checkJsonSchema(j.result), `${j.name} result`).toBeNull();
      expect(j.params.type).toBe('object');
      // Every property says what it is for.
      for (const [k, p] of Object.entries({ ...j.params.properties, ...j.result.properties })) expect(p.description, `${j.name}.${k}`).toBeTruthy();
    }
  });
});

describe('checkJsonSchema', () => {
  const ok: JsonSchema = { type: 'object', properties: { url: { type: 'string', description: 'where' }, tags: { type: 'array', items: { type: 'string' } } }, required: ['url'] };

  it('accepts an object schema with nested properties, arrays, enums and maps', () => {
    expect(checkJsonSchema(ok)).toBeNull();
    expect(checkJsonSchema({ type: 'object', properties: {} })).toBeNull();
    expect(checkJsonSchema({ type: 'object', properties: { h: { type: 'object', additionalProperties: { type: 'string' } }, m: { type: ['string', 'null'], enum: ['a', null] } } })).toBeNull();
  });

  it('refuses anything else, saying where', () => {
    const cases: [unknown, string][] = [
      [null, ''],
      [[], ''],
      ['{"type":"object"}', ''],
      [{ type: 'string' }, 'type'],
      [{ type: 'object' }, 'properties'],
      [{ type: 'object', properties: [] }, 'properties'],
      [{ type: 'object', properties: { a: { type: 'text' } } }, 'properties.a.type'],
      [{ type: 'object', properties: { a: 'string' } }, 'properties.a'],
      [{ type: 'object', properties: { a: { type: 'string', $ref: 'http://evil.example/s.json' } } }, 'properties.a.$ref'],
      [{ type: 'object', properties: { a: { type: 'string' } }, required: ['b'] }, 'required'],
      [{ type: 'object', properties: { a: { type: 'string', enum: [] } } }, 'properties.a.enum'],
      [{ type: 'object', properties: { a: { type: 'string', pattern: '([' } } }, 'properties.a.pattern'],
      [{ type: 'object', properties: { a: { type: 'string', items: { type: 'string' } } } }, 'properties.a.items'],
      [{ type: 'object', properties: { a: { type: 'string', minLength: -1 } } }, 'properties.a.minLength'],
      [{ type: 'object', properties: { a: { type: 'string', description: 'x'.repeat(20_001) } } }, ''],
    ];
    for (const [value, path] of cases) {
      const err = checkJsonSchema(value);
      expect(err, JSON.stringify(value).slice(0, 80)).not.toBeNull();
      expect(err!.path, JSON.stringify(value).slice(0, 80)).toBe(path);
    }
    // Too deep.
    let deep: JsonSchema = { type: 'string' };
    for (let i = 0; i < 12; i++) deep = { type: 'object', properties: { x: deep } };
    expect(checkJsonSchema(deep)?.message).toMatch(/deeper/);
  });
});
