import { describe, expect, it } from 'vitest';
import { decideJsapis, missingMessage, scanManifest, scanPackageFiles, scanScript, type CatalogRule, type JsapiUse } from './jsapi-scan.js';

const apis = (src: string) => scanScript(src).map((h) => h.api);

describe('scanScript', () => {
  it('finds my.* and wx.* calls with 1-based line and column', () => {
    const src = [
      "const app = getApp();",
      "Page({",
      "  onLoad() {",
      "    my.request({ url: app.base + '/goods' });",
      "    wx.showToast({ title: 'ok' });",
      "  },",
      "});",
    ].join('\n');
    expect(scanScript(src)).toEqual([
      { api: 'request', line: 4, column: 5 },
      { api: 'showToast', line: 5, column: 5 },
    ]);
  });

  it('accepts spaces, newlines and optional chaining between the parts', () => {
    expect(apis('my.getLocation ({})')).toEqual(['getLocation']);
    expect(apis('my\n  .chooseImage\n  ({ count: 1 })')).toEqual(['chooseImage']);
    expect(apis('my.tradePay?.({ tradeNO })')).toEqual(['tradePay']);
    expect(apis('my?.scanCode({})')).toEqual(['scanCode']);
    expect(apis('wx.getPhoneNumber!({})')).toEqual(['getPhoneNumber']);
  });

  it('ignores what is not a call of the host object', () => {
    expect(apis('const f = my.request;')).toEqual([]); // referenced, not called
    expect(apis('this.my.request({}); user.wx.login();')).toEqual([]); // members of something else
    expect(apis('enemy.request(); tidy.x(); my_wx.request(); $my.request()')).toEqual([]);
    expect(apis('wx.cloud.callFunction({ name: "f" })')).toEqual([]); // nested namespace
    expect(apis("my['request']({})")).toEqual([]); // computed: a documented limit
    expect(apis('const o = { my: 1 }; o.my.request()')).toEqual([]);
  });

  it('skips line and block comments', () => {
    const src = [
      '// my.getLocation({}) is not called here',
      '/* my.chooseImage({})',
      '   wx.scanCode({}) */',
      'my.showToast({ content: "hi" }); // my.tradePay({})',
      '/** @example wx.getUserInfo() */ wx.vibrateShort();',
    ].join('\n');
    expect(scanScript(src)).toEqual([
      { api: 'showToast', line: 4, column: 1 },
      { api: 'vibrateShort', line: 5, column: 34 },
    ]);
  });

  it('skips string literals, with escapes', () => {
    const src = `const a = 'my.getLocation()'; const b = "wx.scanCode()"; const c = 'it\\'s my.tradePay()'; my.navigateTo({ url: "/pages/a?x=my.request()" });`;
    expect(apis(src)).toEqual(['navigateTo']);
  });

  it('skips template text but reads ${…} expressions, nested ones too', () => {
    const src = [
      'const html = `<p>call my.getLocation() to locate</p>`;',
      'const s = `token: ${my.getStorageSync({ key: "t" }).data} and ${ { a: 1 }.a } ok`;',
      'const t = `outer ${ `inner ${wx.getSystemInfoSync().model} my.fake()` } wx.no()`;',
      'my.showLoading();',
    ].join('\n');
    expect(scanScript(src)).toEqual([
      { api: 'getStorageSync', line: 2, column: 21 },
      { api: 'getSystemInfoSync', line: 3, column: 30 },
      { api: 'showLoading', line: 4, column: 1 },
    ]);
  });

  it('tells regular expressions from divisions', () => {
    // A quote inside a regex must not open a string that would hide the call after it.
    expect(apis(`const s = x.replace(/"/g, '&quot;'); my.request({});`)).toEqual(['request']);
    expect(apis(`if (/'/.test(x)) my.showToast({});`)).toEqual(['showToast']);
    expect(apis(`return /[/'"]/.test(x) && my.alert({});`)).toEqual(['alert']);
    // Divisions are not regexes.
    expect(apis(`const r = a / b; const q = (c) / 2; my.vibrate(); const z = d[1] / e / f;`)).toEqual(['vibrate']);
  });

  it('reads minified one-line code', () => {
    const src =
      '!function(e){var t={};function n(r){if(t[r])return t[r].exports}e.a=function(){my.request({url:"https://x/a?b=my.fake()",success:function(e){my.setStorageSync({key:"k",data:e.data})}}),wx.login({success:function(){}})},e.b=/"my.notcalled()"/g,e.c=1/2,my.hideLoading()}({});';
    const hits = scanScript(src);
    expect(hits.map((h) => h.api)).toEqual(['request', 'setStorageSync', 'login', 'hideLoading']);
    expect(hits.every((h) => h.line === 1)).toBe(true);
    expect(src.slice(hits[0].column - 1).startsWith('my.request(')).toBe(true);
    expect(src.slice(hits[3].column - 1).startsWith('my.hideLoading(')).toBe(true);
  });

  it('counts columns in characters after non-ASCII text and CRLF line ends', () => {
    const src = "// 首页\r\nconst title = '购物车'; my.setNavigationBar({ title });\r\n";
    expect(scanScript(src)).toEqual([{ api: 'setNavigationBar', line: 2, column: 22 }]);
  });

  it('survives unterminated strings, comments and templates', () => {
    expect(apis("const a = 'oops\nmy.request({});")).toEqual(['request']);
    expect(apis('my.a(); /* never closed my.b()')).toEqual(['a']);
    expect(apis('my.a(); `never closed ${my.b()}')).toEqual(['a', 'b']);
  });
});

describe('scanManifest', () => {
  it('reads jsapis and requiredPrivateInfos with their lines', () => {
    const text = JSON.stringify({ pages: ['pages/index/index'], jsapis: ['my.getLocation', 'tradePay', 42, 'bad name'], requiredPrivateInfos: ['chooseAddress'] }, null, 2);
    const uses = scanManifest(text);
    expect(uses.map((u) => [u.api, u.via, u.file])).toEqual([
      ['getLocation', 'manifest', 'app.json'],
      ['tradePay', 'manifest', 'app.json'],
      ['chooseAddress', 'manifest', 'app.json'],
    ]);
    const lines = text.split('\n');
    for (const u of uses) expect(lines[u.line - 1].slice(u.column - 1)).toMatch(new RegExp(`^(my\\.)?${u.api}"`)); // the column of the name
    expect(lines[uses[0].line - 1]).toContain('my.getLocation');
  });

  it('declares nothing when app.json says nothing or is not JSON', () => {
    expect(scanManifest('{"pages":["a"]}')).toEqual([]);
    expect(scanManifest('not json')).toEqual([]);
  });
});

describe('scanPackageFiles', () => {
  it('scans scripts and app.json only, sorted by api then place', () => {
    const uses = scanPackageFiles([
      ['pages/b/b.js', 'my.request({}); my.getLocation({});'],
      ['pages/a/a.axml', '<view onTap="my.getLocation()"/>'],
      ['utils/filter.sjs', 'export default { f: () => my.getLocation() }'],
      ['app.json', Buffer.from('{"pages":["pages/b/b"],"jsapis":["getLocation"]}')],
      ['lib/x.ts', 'wx.request({ url })'],
    ]);
    expect(uses.map((u) => `${u.api} ${u.file}:${u.line}:${u.column} ${u.via}`)).toEqual([
      'getLocation app.json:1:35 manifest',
      'getLocation pages/b/b.js:1:17 call',
      'getLocation utils/filter.sjs:1:27 call',
      'request lib/x.ts:1:1 call',
      'request pages/b/b.js:1:1 call',
    ]);
  });
});

describe('decideJsapis', () => {
  const use = (api: string, file = 'app.js', line = 1): JsapiUse => ({ api, file, line, column: 1, via: 'call' });
  const catalog = new Map<string, CatalogRule>([
    ['request', { permissionLevel: 'open', status: 'active' }],
    ['getLocation', { permissionLevel: 'needs_feature', status: 'active' }],
    ['tradePay', { permissionLevel: 'restricted', status: 'active' }],
    ['oldApi', { permissionLevel: 'open', status: 'deprecated' }],
    ['scanCode', { permissionLevel: 'open', status: 'disabled' }],
  ]);

  it('allows open APIs, deprecated ones too, and granted ones', () => {
    const granted = new Map([['getLocation', [{ featureId: 'fea_1', name: 'Location' }]]]);
    const { verdicts, missing } = decideJsapis([use('request'), use('oldApi'), use('getLocation')], catalog, granted);
    expect(missing).toEqual([]);
    expect(verdicts.map((v) => [v.api, v.allowed])).toEqual([['getLocation', true], ['oldApi', true], ['request', true]]);
    expect(verdicts[0].grantedVia).toEqual([{ featureId: 'fea_1', name: 'Location' }]);
  });

  it('refuses ungranted, disabled and unknown APIs, naming where they are used and what would grant them', () => {
    const offered = new Map([['tradePay', [{ featureId: 'fea_pay', key: 'payments', name: 'Payments', accessMode: 'activation' as const }]]]);
    const { missing } = decideJsapis(
      [use('tradePay', 'pages/pay/pay.js', 12), use('tradePay', 'pages/pay/pay.js', 3), use('scanCode', 'a.js', 7), use('madeUp', 'b.js', 2), use('getLocation', 'c.js', 9), use('request')],
      catalog, new Map(), offered,
    );
    expect(missing.map((m) => [m.api, m.reason, m.callCount])).toEqual([['getLocation', 'not_granted', 1], ['madeUp', 'unknown', 1], ['scanCode', 'disabled', 1], ['tradePay', 'not_granted', 2]]);
    expect(missing[3].calls.map((c) => c.line)).toEqual([3, 12]);
    expect(missing[3].grantedBy).toEqual([{ featureId: 'fea_pay', key: 'payments', name: 'Payments', accessMode: 'activation' }]);
    expect(missing[1].grantedBy).toBeUndefined();
    const message = missingMessage(missing);
    expect(message).toContain('tradePay at pages/pay/pay.js:3 (+1 more): not granted');
    expect(message).toContain('apply for "Payments"');
    expect(message).toContain('madeUp at b.js:2: not in the workspace\'s JSAPI catalog');
    expect(message).toContain('scanCode at a.js:7: disabled');
  });

  it('judges a sync form the catalog does not list as its async API', () => {
    const cat = new Map<string, CatalogRule>([...catalog, ['getStorage', { permissionLevel: 'open', status: 'active' }], ['getSystemInfoSync', { permissionLevel: 'needs_feature', status: 'active' }]]);
    const { verdicts, missing } = decideJsapis([use('getStorageSync'), use('getLocationSync'), use('getSystemInfoSync'), use('nopeSync')], cat, new Map());
    expect(verdicts.find((v) => v.api === 'getStorageSync')).toMatchObject({ allowed: true, permissionLevel: 'open' });
    expect(missing.map((m) => [m.api, m.reason])).toEqual([['getLocationSync', 'not_granted'], ['getSystemInfoSync', 'not_granted'], ['nopeSync', 'unknown']]);
  });

  it('a disabled API stays refused even when a feature lists it', () => {
    const granted = new Map([['scanCode', [{ featureId: 'f', name: 'Scan' }]]]);
    expect(decideJsapis([use('scanCode')], catalog, granted).missing.map((m) => m.reason)).toEqual(['disabled']);
  });
});
